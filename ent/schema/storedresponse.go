package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// StoredResponse is one response of the OpenAI Responses API kept for its
// user (store=true), so that any data-plane replica can continue the
// conversation (previous_response_id) or answer GET /v1/responses/{id}. The
// documents are the data plane's JSON, opaque here. Rows older than the
// retention are purged in batches.
type StoredResponse struct {
	ent.Schema
}

// Annotations name the table stored_responses.
func (StoredResponse) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "stored_responses"}}
}

// Mixin adds the timestamps.
func (StoredResponse) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of StoredResponse.
func (StoredResponse) Fields() []ent.Field {
	return []ent.Field{
		// The public id, resp_<32 hex>.
		field.String("response_id").MaxLen(64).NotEmpty().Unique().Immutable(),
		field.Int("user_id"),
		field.String("previous_response_id").MaxLen(64).Default(""),
		field.String("model").MaxLen(255).Default(""),
		field.Text("response_json").MaxLen(8 << 20).SchemaType(longText),
		field.Text("input_items_json").MaxLen(8 << 20).SchemaType(longText),
		field.Text("history_json").MaxLen(8 << 20).SchemaType(longText),
	}
}

// Edges of StoredResponse.
func (StoredResponse) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("stored_responses").Field("user_id").Unique().Required(),
	}
}

// Indexes of StoredResponse.
func (StoredResponse) Indexes() []ent.Index {
	return []ent.Index{index.Fields("created_at"), index.Fields("user_id", "created_at")}
}
