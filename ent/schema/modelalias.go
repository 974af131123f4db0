package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// ModelAlias is a stable public model name that stands for one or more real
// models: a request for the alias may be served by any backend serving one of
// its targets.
type ModelAlias struct {
	ent.Schema
}

// Mixin adds the timestamps.
func (ModelAlias) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of ModelAlias.
func (ModelAlias) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").MaxLen(255).NotEmpty().Unique(),
		// Real model names, in the administrator's order.
		field.Strings("targets"),
		field.String("description").MaxLen(2000).Default(""),
	}
}
