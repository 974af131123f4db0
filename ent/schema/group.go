package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Group is a role with its defaults: token budget, rate limit, scheduler weight and
// privileges. Every user belongs to exactly one group.
type Group struct {
	ent.Schema
}

// Mixin adds the timestamps.
func (Group) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Group.
func (Group) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").MaxLen(50).NotEmpty().Unique(),
		field.String("display_name").MaxLen(100).Default(""),
		field.String("description").MaxLen(1000).Default(""),
		// Tokens per budget period; 0 means unlimited.
		field.Int64("token_budget").Default(100000).NonNegative(),
		// Requests per minute; 0 means unlimited.
		field.Int("rpm_limit").Default(30).NonNegative(),
		field.Int("scheduler_weight").Default(1).Positive(),
		field.Bool("is_admin").Default(false),
		field.Bool("is_auditor").Default(false),
		// Default lifetime of new API keys; 0 means keys do not expire.
		field.Int("api_key_expiry_days").Default(45).NonNegative(),
		// Most active API keys a member may hold; 0 means no limit.
		field.Int("max_api_keys").Default(16).NonNegative(),
		// What the audit trail keeps of members' requests: metadata always; the
		// prompt (request content) and the response unless switched off here.
		field.Bool("audit_prompts").Default(true),
		field.Bool("audit_responses").Default(true),
	}
}

// Edges of Group.
func (Group) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("users", User.Type),
	}
}
