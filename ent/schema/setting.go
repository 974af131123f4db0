package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// Setting is one control-plane setting that administrators change at run time
// and every control plane (a new leader included) must find again: the system
// on/off switch ("system.status") for now. The value is JSON owned by the
// package that reads the key.
type Setting struct {
	ent.Schema
}

// Annotations name the table settings.
func (Setting) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "settings"}}
}

// Mixin adds the timestamps.
func (Setting) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Setting.
func (Setting) Fields() []ent.Field {
	return []ent.Field{
		field.String("key").MaxLen(64).NotEmpty().Unique(),
		field.Text("value"),
	}
}
