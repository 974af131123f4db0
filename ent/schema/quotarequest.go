package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// QuotaRequest is a user's request for more tokens per budget period. An admin
// approves it (granting tokens, which become the user's budget override) or
// denies it.
type QuotaRequest struct {
	ent.Schema
}

// Annotations name the table quota_requests.
func (QuotaRequest) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "quota_requests"}}
}

// Mixin adds the timestamps.
func (QuotaRequest) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of QuotaRequest.
func (QuotaRequest) Fields() []ent.Field {
	return []ent.Field{
		field.Int("user_id"),
		// Tokens per budget period the user asks for.
		field.Int64("requested_tokens").Positive(),
		field.String("justification").MaxLen(2000).NotEmpty(),
		field.Enum("status").Values("pending", "approved", "denied").Default("pending"),
		// The reviewing admin's user id; no foreign key, so that the record
		// outlives the reviewer's account.
		field.Int("reviewer_id").Optional().Nillable(),
		field.String("review_notes").MaxLen(2000).Default(""),
		// Tokens per budget period granted on approval.
		field.Int64("granted_tokens").Optional().Nillable().NonNegative(),
		optionalTime("reviewed_at"),
	}
}

// Edges of QuotaRequest.
func (QuotaRequest) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("quota_requests").Field("user_id").Unique().Required(),
	}
}

// Indexes of QuotaRequest.
func (QuotaRequest) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("status"),
		index.Fields("user_id"),
	}
}
