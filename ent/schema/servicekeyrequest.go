package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// ServiceKeyRequest is a user's request about a service key, decided by an
// admin. Kind "issue" asks for a new one: a key named for a system, owned by
// the user, that never expires; once approved, the requester collects the key
// (minted then, its secret shown to the requester once), so no secret is ever
// stored. Kind "revocation" asks for the revocation of the service key named
// by api_key_id; approval revokes it in the same transaction.
type ServiceKeyRequest struct {
	ent.Schema
}

// Annotations name the table service_key_requests.
func (ServiceKeyRequest) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "service_key_requests"}}
}

// Mixin adds the timestamps.
func (ServiceKeyRequest) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of ServiceKeyRequest.
func (ServiceKeyRequest) Fields() []ent.Field {
	return []ent.Field{
		field.Int("user_id"),
		field.Enum("kind").Values("issue", "revocation").Default("issue"),
		field.String("service_name").MaxLen(100).NotEmpty(),
		field.String("justification").MaxLen(2000).NotEmpty(),
		field.Enum("status").Values("pending", "approved", "denied").Default("pending"),
		field.Int("reviewer_id").Optional().Nillable(),
		field.String("review_notes").MaxLen(2000).Default(""),
		optionalTime("reviewed_at"),
		// Issue: the key minted when the requester collected it. Revocation:
		// the key to revoke. A plain id (no foreign key), so that deleting the
		// key keeps the request's history.
		field.Int("api_key_id").Optional().Nillable(),
		optionalTime("collected_at"),
		// The compliance answers of an issue request (the reference's form):
		// people to reach besides the owner, the data's risk level, the rules
		// that apply to it, and free text when "other" is among them.
		field.Strings("alternative_contacts").Optional(),
		field.String("data_risk_level").MaxLen(16).Default(""),
		field.Strings("compliance_tags").Optional(),
		field.String("compliance_other").MaxLen(500).Default(""),
	}
}

// Edges of ServiceKeyRequest.
func (ServiceKeyRequest) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("service_key_requests").Field("user_id").Unique().Required(),
	}
}

// Indexes of ServiceKeyRequest.
func (ServiceKeyRequest) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("status"),
		index.Fields("user_id"),
		index.Fields("api_key_id"),
	}
}
