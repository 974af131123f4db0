package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// APIKey is a credential of a user. The secret itself is never stored: key_sha256 is
// the lookup digest and key_hash an Argon2id hash of the key.
type APIKey struct {
	ent.Schema
}

// Annotations name the table api_keys.
func (APIKey) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "api_keys"}}
}

// Mixin adds the timestamps.
func (APIKey) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of APIKey.
func (APIKey) Fields() []ent.Field {
	return []ent.Field{
		field.Int("user_id"),
		field.String("name").MaxLen(100).Default(""),
		// "mr2_" and the first 8 characters of the secret part; shown to people.
		field.String("key_prefix").MaxLen(16).NotEmpty(),
		// Hex SHA-256 of the full key: the unique lookup column.
		field.String("key_sha256").MaxLen(64).NotEmpty().Unique().Sensitive(),
		// Argon2id PHC string of the full key.
		field.String("key_hash").MaxLen(255).NotEmpty().Sensitive(),
		field.Enum("status").Values("active", "revoked", "expired").Default("active"),
		// inference and/or admin; empty means inference only.
		field.Strings("scopes").Optional(),
		optionalTime("expires_at"),
		optionalTime("last_used_at"),
		field.Int64("usage_count").Default(0).NonNegative(),
		// Overrides the user's and group's requests per minute when set.
		field.Int("rpm_limit").Optional().Nillable().NonNegative(),
		// A service key belongs to a system, not to a person's session: it is
		// named after the service and never expires.
		field.Bool("is_service").Default(false),
		field.String("service_name").MaxLen(100).Default(""),
	}
}

// Edges of APIKey.
func (APIKey) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("api_keys").Field("user_id").Unique().Required(),
	}
}

// Indexes of APIKey.
func (APIKey) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("key_prefix"),
		index.Fields("user_id", "status"),
	}
}
