package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Backend is one inference endpoint: an Ollama or vLLM server.
type Backend struct {
	ent.Schema
}

// Mixin adds the timestamps.
func (Backend) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Backend.
func (Backend) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").MaxLen(100).NotEmpty().Unique(),
		field.String("url").MaxLen(255).NotEmpty().Unique(),
		field.Enum("engine").Values("ollama", "vllm", "tts", "stt"),
		field.Enum("status").Values("healthy", "unhealthy", "disabled", "draining", "unknown").Default("unknown"),
		field.Int("max_concurrent").Default(4).Positive(),
		field.Int("priority").Default(0),
		field.Float("gpu_memory_gb").Default(0),
		field.String("gpu_type").MaxLen(100).Default(""),
		// Indices of the node's GPUs this backend uses.
		field.Ints("gpu_indices").Optional(),
		field.Int("node_id").Optional().Nillable(),
		field.String("version").MaxLen(100).Default(""),
		// True when the backend is the project's engine simulator.
		field.Bool("simulated").Default(false),
		field.Int("consecutive_failures").Default(0).NonNegative(),
		optionalTime("last_health_check"),
		optionalTime("last_success"),
		field.String("last_error").MaxLen(1024).Default(""),
	}
}

// Edges of Backend.
func (Backend) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("node", Node.Type).Ref("backends").Field("node_id").Unique(),
		edge.To("models", Model.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}
