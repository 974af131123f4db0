package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Model is one model as served by one backend.
type Model struct {
	ent.Schema
}

// Mixin adds the timestamps.
func (Model) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Model.
func (Model) Fields() []ent.Field {
	return []ent.Field{
		field.Int("backend_id"),
		field.String("name").MaxLen(255).NotEmpty(),
		field.String("family").MaxLen(100).Default(""),
		// Context window the model itself supports (its maximum); 0 when unknown.
		field.Int64("context_length").Default(0).NonNegative(),
		// chat, completion, embedding, vision, tools, thinking, ...
		field.Strings("capabilities").Optional(),
		field.Bool("loaded").Default(false),
		field.String("parameter_size").MaxLen(50).Default(""),
		field.String("quantization").MaxLen(50).Default(""),
		field.Int64("size_bytes").Default(0).NonNegative(),
		field.Int64("embedding_length").Default(0).NonNegative(),
	}
}

// Edges of Model.
func (Model) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("backend", Backend.Type).Ref("models").Field("backend_id").Unique().Required(),
	}
}

// Indexes of Model: a backend serves each model name once.
func (Model) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("backend_id", "name").Unique(),
		index.Fields("name"),
	}
}
