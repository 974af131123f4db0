package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AuditRecord is one inference request as a data plane answered it: who asked,
// on which surface, for which model, where it ran, how it ended, what it cost
// and how long it took, and (unless the group's settings or retention removed
// it) what was asked and answered. request_id is unique, so that a replayed
// record is never stored twice. The content columns are NULL once purged;
// full-text search runs over prompt_text and response_text (a FULLTEXT index on
// MariaDB, an FTS5 table on SQLite, both created by the store after migration).
type AuditRecord struct {
	ent.Schema
}

// Fields of AuditRecord.
func (AuditRecord) Fields() []ent.Field {
	return []ent.Field{
		field.String("request_id").MaxLen(128).NotEmpty().Unique().Immutable(),
		// When the data plane received the request.
		field.Time("created_at").SchemaType(timeType).Immutable(),
		field.Int64("user_id").Default(0),
		field.String("username").MaxLen(150).Default(""),
		field.Int64("api_key_id").Default(0),
		field.String("group_name").MaxLen(50).Default(""),
		// openai, ollama or anthropic.
		field.String("surface").MaxLen(32).Default(""),
		field.String("endpoint").MaxLen(128).Default(""),
		field.String("model").MaxLen(255).Default(""),
		// The backend that answered last (0: none), and every backend tried in order.
		field.Int64("backend_id").Default(0),
		field.JSON("backend_ids", []int64{}).Optional(),
		// completed, failed or cancelled; status_code is the HTTP status answered.
		field.String("status").MaxLen(16).Default(""),
		field.Int("status_code").Default(0),
		field.Text("error").Default(""),
		field.Bool("streaming").Default(false),
		field.Text("request_json").Optional().Nillable(),
		field.Text("prompt_text").Optional().Nillable(),
		field.Text("response_text").Optional().Nillable(),
		field.Text("reasoning").Optional().Nillable(),
		field.Text("tool_calls_json").Optional().Nillable(),
		field.String("finish_reason").MaxLen(32).Default(""),
		field.Bool("structured_output_valid").Optional().Nillable(),
		field.JSON("artifact_hashes", []string{}).Optional(),
		// True when no content was recorded (group settings) or it was purged.
		field.Bool("content_omitted").Default(false),
		field.Time("content_purged_at").Optional().Nillable().SchemaType(timeType),
		field.Int64("prompt_tokens").Default(0),
		field.Int64("completion_tokens").Default(0),
		field.Bool("tokens_estimated").Default(false),
		field.Int64("queue_wait_ms").Default(0),
		field.Int64("ttft_ms").Default(0),
		field.Int64("total_ms").Default(0),
		field.String("client_ip").MaxLen(64).Default(""),
		field.String("user_agent").MaxLen(512).Default(""),
		field.String("replica_id").MaxLen(128).Default(""),
		// When the control plane stored it.
		field.Time("stored_at").SchemaType(timeType).Immutable(),
	}
}

// Indexes of AuditRecord: the search filters, each with the time range.
func (AuditRecord) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("created_at"),
		index.Fields("user_id", "created_at"),
		index.Fields("model", "created_at"),
		index.Fields("group_name", "created_at"),
		index.Fields("backend_id", "created_at"),
		index.Fields("status", "created_at"),
	}
}

// AuditArtifact is a binary part of a request (an image), stored once by its
// SHA-256 whatever the number of requests that carried it. data is NULL when the
// part was larger than the control plane's cap (truncated) or was purged.
type AuditArtifact struct {
	ent.Schema
}

// Fields of AuditArtifact.
func (AuditArtifact) Fields() []ent.Field {
	return []ent.Field{
		field.String("sha256").MaxLen(64).NotEmpty().Unique().Immutable(),
		field.String("content_type").MaxLen(128).Default(""),
		field.Int64("size_bytes").Default(0),
		field.Bytes("data").Optional().Nillable().SchemaType(map[string]string{dialect.MySQL: "longblob"}),
		field.Bool("truncated").Default(false),
		field.Time("created_at").SchemaType(timeType).Immutable(),
		// Last time a stored record referred to it: content retention purges by it.
		field.Time("last_seen_at").SchemaType(timeType),
	}
}

// Indexes of AuditArtifact.
func (AuditArtifact) Indexes() []ent.Index {
	return []ent.Index{index.Fields("last_seen_at")}
}

// AdminAction is one change made through the admin API (gRPC, REST or the
// CLI), written in the same transaction as the change: who, what, when, from
// where, and the values before and after. Reads of audit content are recorded
// here too. Rows are never updated or deleted.
type AdminAction struct {
	ent.Schema
}

// Fields of AdminAction.
func (AdminAction) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").SchemaType(timeType).Immutable(),
		field.Int64("actor_user_id").Default(0),
		field.String("actor").MaxLen(150).Default(""),
		field.String("action").MaxLen(64).NotEmpty(),
		field.String("entity_type").MaxLen(32).Default(""),
		field.String("entity_id").MaxLen(128).Default(""),
		field.Text("before_json").Optional().Nillable(),
		field.Text("after_json").Optional().Nillable(),
		field.String("client_ip").MaxLen(64).Default(""),
		field.Text("detail").Default(""),
	}
}

// Indexes of AdminAction.
func (AdminAction) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("created_at"),
		index.Fields("actor_user_id", "created_at"),
		index.Fields("action", "created_at"),
	}
}
