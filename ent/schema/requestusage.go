package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// RequestUsage is one settled lease: which backend served which model for whom, when
// it was admitted, when its first token came and when it ended, and the tokens it
// processed. The energy attribution fills energy_joules once the GPU power around it
// is known. Like MetricPoint it has no foreign keys.
type RequestUsage struct {
	ent.Schema
}

// Annotations name the table request_usages.
func (RequestUsage) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "request_usages"}}
}

// Fields of RequestUsage.
func (RequestUsage) Fields() []ent.Field {
	return []ent.Field{
		field.String("request_id").MaxLen(128).NotEmpty(),
		field.Int("backend_id"),
		field.String("model").MaxLen(255).Default(""),
		field.Int64("user_id").Default(0),
		field.String("username").MaxLen(100).Default(""),
		field.String("group_name").MaxLen(100).Default(""),
		field.String("outcome").MaxLen(32).Default(""),
		field.Time("started_at").SchemaType(timeType),
		field.Time("first_token_at").SchemaType(timeType),
		field.Time("ended_at").SchemaType(timeType),
		field.Int64("queue_wait_ms").Default(0).NonNegative(),
		field.Int64("prompt_tokens").Default(0).NonNegative(),
		field.Int64("completion_tokens").Default(0).NonNegative(),
		field.Float("energy_joules").Optional().Nillable(),
	}
}

// Indexes of RequestUsage.
func (RequestUsage) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("backend_id", "ended_at"),
		index.Fields("ended_at"),
		index.Fields("request_id"),
	}
}
