package cpclient

import (
	"context"
	"time"

	"google.golang.org/grpc"

	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
)

// SessionCredential is the credential the web chat puts in Admit for a
// browser session: "session:<session token>:<CSRF token>". The control plane
// resolves it to the session's user (checking the CSRF token in constant
// time), so a chat message is admitted, charged and audited as that user's
// request, like one made with their API key.
func SessionCredential(c Caller) string { return "session:" + c.Session + ":" + c.CSRF }

// Conversation is one of the caller's chats.
type Conversation struct {
	ID                   int64
	Title, Model         string
	MessageCount         int
	CreatedAt, UpdatedAt time.Time
}

// ChatMessage is one turn of a conversation.
type ChatMessage struct {
	ID                             int64
	Role, Content, Reasoning       string
	Model, Status, RequestID       string
	PromptTokens, CompletionTokens int64
	// Images are the images attached to a user's turn.
	Images    []ChatImage
	CreatedAt time.Time
}

// ChatImage is an image attached to a message: the file's name, its media
// type, its bytes and (as kept) their hex SHA-256.
type ChatImage struct {
	Name, MediaType, SHA256 string
	Data                    []byte
}

// maxConversationResponse bounds a conversation read: its messages and its
// images (ConversationService keeps at most 20 MiB of images a conversation).
const maxConversationResponse = 32 << 20

// Export is a conversation rendered for download.
type Export struct{ ContentType, Filename, Content string }

func conversation(c *accountv1.Conversation) Conversation {
	return Conversation{ID: c.GetId(), Title: c.GetTitle(), Model: c.GetModel(), MessageCount: int(c.GetMessageCount()),
		CreatedAt: ts(c.GetCreatedAt()), UpdatedAt: ts(c.GetUpdatedAt())}
}

func chatMessage(m *accountv1.ChatMessage) ChatMessage {
	out := ChatMessage{ID: m.GetId(), Role: m.GetRole(), Content: m.GetContent(), Reasoning: m.GetReasoning(), Model: m.GetModel(),
		Status: m.GetStatus(), RequestID: m.GetRequestId(), PromptTokens: m.GetPromptTokens(), CompletionTokens: m.GetCompletionTokens(),
		CreatedAt: ts(m.GetCreatedAt())}
	for _, im := range m.GetImages() {
		out.Images = append(out.Images, ChatImage{Name: im.GetName(), MediaType: im.GetMediaType(), SHA256: im.GetSha256(), Data: im.GetData()})
	}
	return out
}

// ListConversations lists the caller's conversations, most recent first.
func (w *Web) ListConversations(ctx context.Context, c Caller) ([]Conversation, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.conv.ListConversations(ctx, &accountv1.ListConversationsRequest{})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]Conversation, len(r.GetConversations()))
	for i, x := range r.GetConversations() {
		out[i] = conversation(x)
	}
	return out, nil
}

// GetConversation returns one of the caller's conversations and its messages.
func (w *Web) GetConversation(ctx context.Context, c Caller, id int64) (Conversation, []ChatMessage, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.conv.GetConversation(ctx, &accountv1.GetConversationRequest{Id: id}, grpc.MaxCallRecvMsgSize(maxConversationResponse))
	if err != nil {
		return Conversation{}, nil, webError(err)
	}
	ms := make([]ChatMessage, len(r.GetMessages()))
	for i, m := range r.GetMessages() {
		ms[i] = chatMessage(m)
	}
	return conversation(r.GetConversation()), ms, nil
}

// CreateConversation starts a conversation.
func (w *Web) CreateConversation(ctx context.Context, c Caller, title, model string) (Conversation, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.conv.CreateConversation(ctx, &accountv1.CreateConversationRequest{Title: title, Model: model})
	if err != nil {
		return Conversation{}, webError(err)
	}
	return conversation(r.GetConversation()), nil
}

// RenameConversation changes a conversation's title.
func (w *Web) RenameConversation(ctx context.Context, c Caller, id int64, title string) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.conv.RenameConversation(ctx, &accountv1.RenameConversationRequest{Id: id, Title: title})
	return webError(err)
}

// DeleteConversation deletes a conversation.
func (w *Web) DeleteConversation(ctx context.Context, c Caller, id int64) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.conv.DeleteConversation(ctx, &accountv1.DeleteConversationRequest{Id: id})
	return webError(err)
}

// AppendChatMessage adds m to conversation id.
func (w *Web) AppendChatMessage(ctx context.Context, c Caller, id int64, m ChatMessage) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	msg := &accountv1.ChatMessage{Role: m.Role, Content: m.Content, Reasoning: m.Reasoning, Model: m.Model, Status: m.Status,
		RequestId: m.RequestID, PromptTokens: m.PromptTokens, CompletionTokens: m.CompletionTokens}
	for _, im := range m.Images {
		msg.Images = append(msg.Images, &accountv1.ChatImage{Name: im.Name, MediaType: im.MediaType, Data: im.Data})
	}
	_, err := w.conv.AppendChatMessage(ctx, &accountv1.AppendChatMessageRequest{ConversationId: id, Message: msg})
	return webError(err)
}

// ExportConversation renders a conversation as "json" or "markdown".
func (w *Web) ExportConversation(ctx context.Context, c Caller, id int64, format string) (Export, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.conv.ExportConversation(ctx, &accountv1.ExportConversationRequest{Id: id, Format: format}, grpc.MaxCallRecvMsgSize(2*maxConversationResponse))
	if err != nil {
		return Export{}, webError(err)
	}
	return Export{ContentType: r.GetContentType(), Filename: r.GetFilename(), Content: r.GetContent()}, nil
}
