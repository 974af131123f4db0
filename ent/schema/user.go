package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// User is a person or service account that owns API keys.
type User struct {
	ent.Schema
}

// Mixin adds the timestamps.
func (User) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("username").MaxLen(64).NotEmpty().Unique(),
		field.String("email").MaxLen(255).NotEmpty().Unique(),
		// Argon2id PHC string; absent for accounts without a local password.
		field.String("password_hash").MaxLen(255).Optional().Sensitive(),
		field.String("full_name").MaxLen(255).Default(""),
		// Profile fields of the reference's user record: where the person works
		// and what they mean to use the service for.
		field.String("college").MaxLen(255).Default(""),
		field.String("department").MaxLen(255).Default(""),
		field.String("intended_use").MaxLen(2000).Default(""),
		field.Bool("is_active").Default(true),
		field.Int("group_id"),
		// Overrides the group's requests per minute when set.
		field.Int("rpm_limit").Optional().Nillable().NonNegative(),
		// Overrides the group's token budget per period when set; 0 means unlimited.
		field.Int64("token_budget").Optional().Nillable().NonNegative(),
		// Overrides the group's scheduler weight when set.
		field.Int("weight_override").Optional().Nillable().Positive(),
		// Soft deletion: a deleted user's keys stop working.
		optionalTime("deleted_at"),
		// The OpenID Connect identity a single-sign-on account is matched by:
		// the issuer and its subject, never the e-mail address.
		field.String("oidc_issuer").MaxLen(255).Optional().Nillable(),
		field.String("oidc_subject").MaxLen(255).Optional().Nillable(),
	}
}

// Edges of User.
func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("group", Group.Type).Ref("users").Field("group_id").Unique().Required(),
		edge.To("api_keys", APIKey.Type),
		edge.To("quota", Quota.Type).Unique().Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("quota_requests", QuotaRequest.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("sessions", Session.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("service_key_requests", ServiceKeyRequest.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("conversations", Conversation.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("stored_responses", StoredResponse.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

// Indexes of User.
func (User) Indexes() []ent.Index {
	return []ent.Index{
		// (group_id, deleted_at): counting a group's live members (ListGroups,
		// the console's group pages) reads the index alone.
		index.Fields("group_id", "deleted_at"),
		index.Fields("oidc_issuer", "oidc_subject").Unique(),
	}
}
