package store

import (
	"context"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/chatmessage"
	"github.com/mindrouter/mindrouter/ent/conversation"
	"github.com/mindrouter/mindrouter/ent/schema"
)

// Conversation is one web chat of a user.
type Conversation struct {
	ID           int64
	UserID       int64
	Title        string
	Model        string
	MessageCount int
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ChatMessage is one turn of a conversation.
type ChatMessage struct {
	ID               int64
	ConversationID   int64
	Role             string
	Content          string
	Reasoning        string
	Model            string
	Status           string
	PromptTokens     int64
	CompletionTokens int64
	RequestID        string
	// Images are the images attached to a user's turn.
	Images    []ChatImage
	CreatedAt time.Time
}

// ChatImage is an image attached to a chat message: its file name, media
// type, bytes and their hex SHA-256.
type ChatImage = schema.ChatImage

// Roles and statuses of chat messages.
const (
	ChatRoleUser       = "user"
	ChatRoleAssistant  = "assistant"
	ChatStatusComplete = "complete"
	ChatStatusStopped  = "stopped"
	ChatStatusFailed   = "failed"
)

// CreateConversation starts an empty conversation owned by userID.
func (s *Store) CreateConversation(ctx context.Context, userID int64, title, model string) (Conversation, error) {
	op := fmt.Sprintf("create conversation of user %d", userID)
	c, err := s.c(ctx).Conversation.Create().SetUserID(int(userID)).SetTitle(title).SetModel(model).Save(ctx)
	if err != nil {
		return Conversation{}, dbErr(op, err)
	}
	return toConversation(c, 0), nil
}

// ownedConversation is the conversation id of userID, or ErrNotFound (also
// when it belongs to someone else: its existence is not revealed).
func (s *Store) ownedConversation(ctx context.Context, op string, userID, id int64) (*ent.Conversation, error) {
	c, err := s.c(ctx).Conversation.Query().
		Where(conversation.ID(int(id)), conversation.UserID(int(userID))).
		Only(ctx)
	if err != nil {
		return nil, dbErr(op, err)
	}
	return c, nil
}

// ListConversations returns userID's conversations, most recently changed first.
func (s *Store) ListConversations(ctx context.Context, userID int64) ([]Conversation, error) {
	op := fmt.Sprintf("list conversations of user %d", userID)
	cs, err := s.c(ctx).Conversation.Query().
		Where(conversation.UserID(int(userID))).
		Order(ent.Desc(conversation.FieldUpdatedAt), ent.Desc(conversation.FieldID)).
		WithMessages(func(q *ent.ChatMessageQuery) { q.Select(chatmessage.FieldConversationID) }).
		All(ctx)
	if err != nil {
		return nil, dbErr(op, err)
	}
	out := make([]Conversation, len(cs))
	for i, c := range cs {
		out[i] = toConversation(c, len(c.Edges.Messages))
	}
	return out, nil
}

// GetConversation returns userID's conversation id with its messages, oldest
// first; another user's conversation is ErrNotFound.
func (s *Store) GetConversation(ctx context.Context, userID, id int64) (Conversation, []ChatMessage, error) {
	op := fmt.Sprintf("get conversation %d", id)
	c, err := s.ownedConversation(ctx, op, userID, id)
	if err != nil {
		return Conversation{}, nil, err
	}
	ms, err := c.QueryMessages().Order(ent.Asc(chatmessage.FieldID)).All(ctx)
	if err != nil {
		return Conversation{}, nil, dbErr(op, err)
	}
	out := make([]ChatMessage, len(ms))
	for i, m := range ms {
		out[i] = toChatMessage(m)
	}
	return toConversation(c, len(ms)), out, nil
}

// RenameConversation sets the title of userID's conversation id.
func (s *Store) RenameConversation(ctx context.Context, userID, id int64, title string) (Conversation, error) {
	op := fmt.Sprintf("rename conversation %d", id)
	c, err := s.ownedConversation(ctx, op, userID, id)
	if err != nil {
		return Conversation{}, err
	}
	c, err = c.Update().SetTitle(title).Save(ctx)
	if err != nil {
		return Conversation{}, dbErr(op, err)
	}
	n, err := c.QueryMessages().Count(ctx)
	if err != nil {
		return Conversation{}, dbErr(op, err)
	}
	return toConversation(c, n), nil
}

// DeleteConversation deletes userID's conversation id and its messages.
func (s *Store) DeleteConversation(ctx context.Context, userID, id int64) error {
	op := fmt.Sprintf("delete conversation %d", id)
	return s.withTx(ctx, func(tx *ent.Tx) error {
		n, err := tx.Conversation.Delete().Where(conversation.ID(int(id)), conversation.UserID(int(userID))).Exec(ctx)
		if err != nil {
			return dbErr(op, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: %w", op, ErrNotFound)
		}
		return nil
	})
}

// AppendChatMessage adds m at the end of userID's conversation and moves the
// conversation's updated_at (and, for a reply, its model) along.
func (s *Store) AppendChatMessage(ctx context.Context, userID int64, m ChatMessage) (ChatMessage, error) {
	op := fmt.Sprintf("append to conversation %d", m.ConversationID)
	var out ChatMessage
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		n, err := tx.Conversation.Update().
			Where(conversation.ID(int(m.ConversationID)), conversation.UserID(int(userID))).
			SetUpdatedAt(time.Now()).Save(ctx)
		if err != nil {
			return dbErr(op, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: %w", op, ErrNotFound)
		}
		if m.Model != "" {
			if err := tx.Conversation.UpdateOneID(int(m.ConversationID)).SetModel(m.Model).Exec(ctx); err != nil {
				return dbErr(op, err)
			}
		}
		status := m.Status
		if status == "" {
			status = ChatStatusComplete
		}
		row, err := tx.ChatMessage.Create().
			SetConversationID(int(m.ConversationID)).
			SetRole(chatmessage.Role(m.Role)).
			SetContent(m.Content).
			SetReasoning(m.Reasoning).
			SetModel(m.Model).
			SetStatus(chatmessage.Status(status)).
			SetPromptTokens(m.PromptTokens).
			SetCompletionTokens(m.CompletionTokens).
			SetRequestID(m.RequestID).
			SetImages(m.Images).
			Save(ctx)
		if err != nil {
			return dbErr(op, err)
		}
		out = toChatMessage(row)
		return nil
	})
	return out, err
}

func toConversation(c *ent.Conversation, messages int) Conversation {
	return Conversation{
		ID: int64(c.ID), UserID: int64(c.UserID), Title: c.Title, Model: c.Model, MessageCount: messages,
		CreatedAt: utc(c.CreatedAt), UpdatedAt: utc(c.UpdatedAt),
	}
}

func toChatMessage(m *ent.ChatMessage) ChatMessage {
	return ChatMessage{
		ID: int64(m.ID), ConversationID: int64(m.ConversationID), Role: string(m.Role), Content: m.Content,
		Reasoning: m.Reasoning, Model: m.Model, Status: string(m.Status), PromptTokens: m.PromptTokens,
		CompletionTokens: m.CompletionTokens, RequestID: m.RequestID, Images: m.Images, CreatedAt: utc(m.CreatedAt),
	}
}
