package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// MetricPoint is one point of a telemetry time series: a raw sample (step_seconds 0,
// count 1) or a downsampled bucket (step_seconds 60 or 3600: the bucket's start, and
// the count, sum, minimum and maximum of the points folded into it). Series are
// keyed by scope (gpu, node, backend), the entity's ids and the metric's name; they
// carry no foreign keys, so that history outlives a deleted node or backend.
type MetricPoint struct {
	ent.Schema
}

// Annotations name the table metric_points.
func (MetricPoint) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "metric_points"}}
}

// Fields of MetricPoint.
func (MetricPoint) Fields() []ent.Field {
	return []ent.Field{
		field.Int("step_seconds").NonNegative(),
		field.Enum("scope").Values("gpu", "node", "backend"),
		field.Int("node_id").Default(0),
		field.Int("gpu_index").Default(0),
		field.Int("backend_id").Default(0),
		field.String("metric").MaxLen(48).NotEmpty(),
		field.Time("at").SchemaType(timeType),
		field.Int64("count").Default(1).Positive(),
		field.Float("sum"),
		field.Float("min"),
		field.Float("max"),
	}
}

// Indexes of MetricPoint: one point per series, tier and time (downsampling upserts
// on it), and range scans by series.
func (MetricPoint) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("scope", "metric", "node_id", "gpu_index", "backend_id", "step_seconds", "at").Unique(),
		index.Fields("step_seconds", "at"),
	}
}
