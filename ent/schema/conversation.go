package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Conversation is one chat of a user in the web chat: a title, the model last
// used and its messages. Only its owner reads or changes it.
type Conversation struct {
	ent.Schema
}

// Annotations name the table conversations.
func (Conversation) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "conversations"}}
}

// Mixin adds the timestamps (updated_at moves with every new message).
func (Conversation) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of Conversation.
func (Conversation) Fields() []ent.Field {
	return []ent.Field{
		field.Int("user_id"),
		field.String("title").MaxLen(200).NotEmpty(),
		field.String("model").MaxLen(255).Default(""),
	}
}

// Edges of Conversation.
func (Conversation) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("user", User.Type).Ref("conversations").Field("user_id").Unique().Required(),
		edge.To("messages", ChatMessage.Type).Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

// Indexes of Conversation.
func (Conversation) Indexes() []ent.Index {
	return []ent.Index{index.Fields("user_id", "updated_at")}
}

// ChatMessage is one turn of a conversation: the user's prompt or the model's
// reply (with its reasoning kept apart, and how it ended).
type ChatMessage struct {
	ent.Schema
}

// Annotations name the table chat_messages.
func (ChatMessage) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "chat_messages"}}
}

// Mixin adds the timestamps.
func (ChatMessage) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// longText holds up to 16 MiB on MariaDB (TEXT stops at 64 KiB).
var longText = map[string]string{dialect.MySQL: "mediumtext"}

// Fields of ChatMessage.
func (ChatMessage) Fields() []ent.Field {
	return []ent.Field{
		field.Int("conversation_id"),
		field.Enum("role").Values("user", "assistant"),
		field.Text("content").MaxLen(1 << 20).SchemaType(longText),
		// The model's thinking, shown folded.
		field.Text("reasoning").MaxLen(1 << 20).Default("").SchemaType(longText),
		// The model that answered (assistant turns).
		field.String("model").MaxLen(255).Default(""),
		// complete, stopped (the user stopped it) or failed.
		field.Enum("status").Values("complete", "stopped", "failed").Default("complete"),
		field.Int64("prompt_tokens").NonNegative().Default(0),
		field.Int64("completion_tokens").NonNegative().Default(0),
		// The request id of the inference request that produced the reply: the
		// key of its audit record.
		field.String("request_id").MaxLen(64).Default(""),
		// The images attached to a user's turn (JSON: name, media type,
		// base64 bytes, SHA-256), bounded by ConversationService.
		field.JSON("images", []ChatImage{}).Optional(),
	}
}

// ChatImage is an image attached to a chat message.
type ChatImage struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	SHA256    string `json:"sha256"`
	Data      []byte `json:"data"`
}

// Edges of ChatMessage.
func (ChatMessage) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("conversation", Conversation.Type).Ref("messages").Field("conversation_id").Unique().Required(),
	}
}

// Indexes of ChatMessage.
func (ChatMessage) Indexes() []ent.Index {
	return []ent.Index{index.Fields("conversation_id")}
}
