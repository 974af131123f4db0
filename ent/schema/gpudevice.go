package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// GPUDevice is the static inventory of one GPU on one node, as its node agent reports it.
type GPUDevice struct {
	ent.Schema
}

// Annotations name the table gpu_devices.
func (GPUDevice) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "gpu_devices"}}
}

// Mixin adds the timestamps.
func (GPUDevice) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of GPUDevice.
func (GPUDevice) Fields() []ent.Field {
	return []ent.Field{
		field.Int("node_id"),
		field.Int("gpu_index").NonNegative(),
		field.String("uuid").MaxLen(100).Default(""),
		field.String("name").MaxLen(255).Default(""),
		field.String("pci_bus_id").MaxLen(64).Default(""),
		field.String("compute_capability").MaxLen(16).Default(""),
		field.Int64("memory_total_bytes").Default(0).NonNegative(),
		field.Int64("power_limit_milliwatts").Default(0).NonNegative(),
	}
}

// Edges of GPUDevice.
func (GPUDevice) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("node", Node.Type).Ref("gpu_devices").Field("node_id").Unique().Required(),
	}
}

// Indexes of GPUDevice: a node reports each GPU index once.
func (GPUDevice) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("node_id", "gpu_index").Unique(),
	}
}
