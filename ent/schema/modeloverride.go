package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// ModelOverride is an administrator's correction of what discovery says about
// a model name, on every backend serving it: capabilities (a nil flag keeps
// the discovered value), the context window and display metadata. vLLM
// reports no capabilities, so this is how a guess is fixed.
type ModelOverride struct {
	ent.Schema
}

// Mixin adds the timestamps.
func (ModelOverride) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of ModelOverride.
func (ModelOverride) Fields() []ent.Field {
	return []ent.Field{
		// The model name as backends report it (without ":latest").
		field.String("model").MaxLen(255).NotEmpty().Unique(),
		field.Bool("vision").Optional().Nillable(),
		field.Bool("tools").Optional().Nillable(),
		field.Bool("thinking").Optional().Nillable(),
		field.Bool("embeddings").Optional().Nillable(),
		field.Bool("structured_output").Optional().Nillable(),
		// Context window in tokens; 0 keeps the discovered one.
		field.Int64("context_length").Default(0).NonNegative(),
		field.String("display_name").MaxLen(255).Default(""),
		field.String("description").MaxLen(2000).Default(""),
	}
}
