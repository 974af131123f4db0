package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Node is a GPU server hosting backends, optionally running a node agent.
type Node struct {
	ent.Schema
}

// Mixin adds the timestamps.
func (Node) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Node.
func (Node) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").MaxLen(100).NotEmpty().Unique(),
		field.String("hostname").MaxLen(255).Default(""),
		// Hex SHA-256 of the secret the node agent presents; empty when none is set.
		field.String("agent_secret_sha256").MaxLen(64).Optional().Sensitive(),
		field.Enum("status").Values("online", "offline", "unknown").Default("unknown"),
		field.Int("gpu_count").Default(0).NonNegative(),
		field.String("driver_version").MaxLen(64).Default(""),
		field.String("cuda_version").MaxLen(64).Default(""),
		field.String("agent_version").MaxLen(64).Default(""),
		optionalTime("last_seen"),
	}
}

// Edges of Node.
func (Node) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("backends", Backend.Type),
		edge.To("gpu_devices", GPUDevice.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}
