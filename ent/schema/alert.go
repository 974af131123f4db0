package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Alert is one raised condition of the fleet: a backend unhealthy, a node offline
// or silent, a circuit open, a GPU too hot, an audit spool filling. The control
// plane's evaluator raises it (first_seen), keeps it fresh while the condition
// holds (last_seen) and clears it (cleared_at) when it ends; a later recurrence is
// a new row. Like MetricPoint it carries no foreign keys, so that an alert outlives
// the node or backend it was about.
type Alert struct {
	ent.Schema
}

// Annotations name the table alerts.
func (Alert) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "alerts"}}
}

// Fields of Alert.
func (Alert) Fields() []ent.Field {
	return []ent.Field{
		field.String("kind").MaxLen(48).NotEmpty(),
		// subject names what the alert is about: "backend/<name>", "node/<name>",
		// "gpu/<node>/<index>", "replica/<id>".
		field.String("subject").MaxLen(255).NotEmpty(),
		field.Enum("severity").Values("warning", "critical"),
		field.String("message").MaxLen(1024).Default(""),
		field.Time("first_seen").SchemaType(timeType),
		field.Time("last_seen").SchemaType(timeType),
		optionalTime("cleared_at"),
	}
}

// Indexes of Alert: the active alert of a kind and subject is looked up on every
// evaluation; listings go newest first.
func (Alert) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("kind", "subject", "cleared_at"),
		index.Fields("first_seen"),
	}
}
