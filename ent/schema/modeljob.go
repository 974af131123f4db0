package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// ModelJob is one pull of a model onto an Ollama backend, or one deletion from
// it. The admin API queues it; the leading control plane runs it and writes its
// progress (throttled), so that any page or client can follow it by id and a
// new leader can resume what its predecessor left running. Like Alert it
// carries no foreign key: the record outlives the backend.
type ModelJob struct {
	ent.Schema
}

// Annotations name the table model_jobs.
func (ModelJob) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "model_jobs"}}
}

// Mixin adds created_at and updated_at.
func (ModelJob) Mixin() []ent.Mixin {
	return []ent.Mixin{TimeMixin{}}
}

// Fields of ModelJob.
func (ModelJob) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("kind").Values("pull", "delete"),
		field.Int64("backend_id"),
		field.String("backend_name").MaxLen(255),
		field.String("model").MaxLen(255).NotEmpty(),
		field.Bool("insecure").Default(false),
		field.Enum("state").Values("queued", "running", "succeeded", "failed", "cancelled").Default("queued"),
		// status is Ollama's last status line, or the runner's own word.
		field.String("status").MaxLen(255).Default(""),
		field.String("digest").MaxLen(128).Default(""),
		field.Int64("completed_bytes").Default(0),
		field.Int64("total_bytes").Default(0),
		field.Int("attempts").Default(0),
		field.Int("max_attempts").Default(1),
		field.String("error").MaxLen(1024).Default(""),
		field.Int64("created_by_user_id").Optional().Nillable(),
		field.String("created_by").MaxLen(255).Default(""),
		optionalTime("started_at"),
		optionalTime("finished_at"),
	}
}

// Indexes of ModelJob: the runner looks for queued and running jobs; listings
// filter by state and backend.
func (ModelJob) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("state"),
		index.Fields("backend_id"),
	}
}
