package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Quota is a user's token usage in the current budget period (the quotas table).
// The control plane's quota manager keeps it in memory and writes it here in
// batches; the budget itself comes from the user's override or the group.
type Quota struct {
	ent.Schema
}

// Annotations name the table.
func (Quota) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "quotas"}}
}

// Mixin adds the timestamps.
func (Quota) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Quota.
func (Quota) Fields() []ent.Field {
	return []ent.Field{
		field.Int("user_id").Unique(),
		// Tokens charged in the current period.
		field.Int64("tokens_used").Default(0).NonNegative(),
		// Every token ever charged.
		field.Int64("lifetime_tokens_used").Default(0).NonNegative(),
		field.Time("budget_period_start").SchemaType(timeType),
		// Length of the period in days; 0 means the control plane's default.
		field.Int("budget_period_days").Default(0).NonNegative(),
	}
}

// Edges of Quota.
func (Quota) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("quota").Field("user_id").Unique().Required(),
	}
}
