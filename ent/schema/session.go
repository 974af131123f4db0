package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Session is a signed-in browser. The cookie holds an opaque random token; only
// its SHA-256 digest is stored, so a copy of the database opens no session.
type Session struct {
	ent.Schema
}

// Annotations name the table browser_sessions.
func (Session) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "browser_sessions"}}
}

// Mixin adds the timestamps.
func (Session) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Session.
func (Session) Fields() []ent.Field {
	return []ent.Field{
		field.Int("user_id"),
		// Hex SHA-256 of the session token: the unique lookup column.
		field.String("token_sha256").MaxLen(64).NotEmpty().Unique().Sensitive(),
		// The token forms and cookie-authenticated API calls must echo; useless
		// without the session token itself.
		field.String("csrf_token").MaxLen(64).NotEmpty().Sensitive(),
		// How the user signed in: "password" or "oidc:<provider>".
		field.String("method").MaxLen(100).NotEmpty(),
		field.String("client_ip").MaxLen(64).Default(""),
		field.String("user_agent").MaxLen(255).Default(""),
		// Refreshed as the session is used; the idle timeout counts from it.
		field.Time("last_seen_at").SchemaType(timeType),
		// The absolute end of the session, whatever its use.
		field.Time("expires_at").SchemaType(timeType),
	}
}

// Edges of Session.
func (Session) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("sessions").Field("user_id").Unique().Required(),
	}
}

// Indexes of Session.
func (Session) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("user_id"),
		index.Fields("expires_at"),
	}
}
