package conversation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
)

// Limits of what a conversation holds.
const (
	MaxTitle   = 200
	MaxContent = 1 << 20
	// MaxMessages bounds one conversation; the chat starts a new one past it.
	MaxMessages = 2000
	// MaxImages, MaxImageBytes and MaxMessageImageBytes bound the images of
	// one message (each, and together: a message stays under gRPC's 4 MiB);
	// MaxConversationImageBytes those of a conversation, so that a
	// conversation is read in one response (the data plane reads up to 32 MiB).
	MaxImages                 = 4
	MaxImageBytes             = 2 << 20
	MaxMessageImageBytes      = 3 << 20
	MaxConversationImageBytes = 20 << 20
)

// ImageTypes are the image types a chat message may carry.
var ImageTypes = []string{"image/png", "image/jpeg", "image/webp", "image/gif"}

// checkImages validates a message's images and returns them with their
// hashes: allowed types that match the bytes (sniffed), the size limits,
// names of at most 255 bytes of UTF-8; user turns only.
func checkImages(role string, in []*accountv1.ChatImage) ([]store.ChatImage, int, error) {
	if len(in) == 0 {
		return nil, 0, nil
	}
	if role != store.ChatRoleUser {
		return nil, 0, invalid("only the user's turns carry images")
	}
	if len(in) > MaxImages {
		return nil, 0, invalid("a message carries at most %d images", MaxImages)
	}
	out := make([]store.ChatImage, len(in))
	total := 0
	for i, im := range in {
		d := im.GetData()
		switch {
		case len(d) == 0:
			return nil, 0, invalid("image %d is empty", i+1)
		case len(d) > MaxImageBytes:
			return nil, 0, invalid("image %d is larger than %d MiB", i+1, MaxImageBytes>>20)
		case len(im.GetName()) > 255 || !utf8.ValidString(im.GetName()):
			return nil, 0, invalid("image %d's name needs at most 255 bytes of UTF-8", i+1)
		}
		mt := SniffImage(d)
		if mt == "" || mt != im.GetMediaType() {
			return nil, 0, invalid("image %d must be PNG, JPEG, WebP or GIF, and its media type must match its bytes", i+1)
		}
		total += len(d)
		sum := sha256.Sum256(d)
		out[i] = store.ChatImage{Name: im.GetName(), MediaType: mt, Data: d, SHA256: hex.EncodeToString(sum[:])}
	}
	if total > MaxMessageImageBytes {
		return nil, 0, invalid("a message's images hold at most %d MiB together", MaxMessageImageBytes>>20)
	}
	return out, total, nil
}

// SniffImage returns the media type of an image of an allowed type, or "".
func SniffImage(b []byte) string {
	mt := http.DetectContentType(b)
	for _, t := range ImageTypes {
		if mt == t {
			return mt
		}
	}
	return ""
}

// imageBytes sums the images of messages.
func imageBytes(ms []store.ChatMessage) int {
	n := 0
	for _, m := range ms {
		for _, im := range m.Images {
			n += len(im.Data)
		}
	}
	return n
}

// Store is the part of the store the service uses.
type Store interface {
	CreateConversation(ctx context.Context, userID int64, title, model string) (store.Conversation, error)
	ListConversations(ctx context.Context, userID int64) ([]store.Conversation, error)
	GetConversation(ctx context.Context, userID, id int64) (store.Conversation, []store.ChatMessage, error)
	RenameConversation(ctx context.Context, userID, id int64, title string) (store.Conversation, error)
	DeleteConversation(ctx context.Context, userID, id int64) error
	AppendChatMessage(ctx context.Context, userID int64, m store.ChatMessage) (store.ChatMessage, error)
}

// Server is the ConversationService.
type Server struct {
	accountv1.UnimplementedConversationServiceServer
	st Store
}

// NewServer returns the service over st.
func NewServer(st Store) *Server { return &Server{st: st} }

// caller is the authorized user (the server's interceptor put it there).
func caller(ctx context.Context) (int64, error) {
	p, ok := identity.FromContext(ctx)
	if !ok || p.UserID == 0 {
		return 0, status.Error(codes.Unauthenticated, "sign in first")
	}
	return p.UserID, nil
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// title validates a title (trimmed); empty becomes def.
func title(t, def string) (string, error) {
	t = strings.TrimSpace(t)
	if t == "" {
		t = def
	}
	if t == "" {
		return "", invalid("a title needs 1 to %d characters", MaxTitle)
	}
	if !utf8.ValidString(t) || utf8.RuneCountInString(t) > MaxTitle {
		return "", invalid("a title needs 1 to %d characters of UTF-8", MaxTitle)
	}
	return t, nil
}

// ListConversations lists the caller's conversations.
func (s *Server) ListConversations(ctx context.Context, _ *accountv1.ListConversationsRequest) (*accountv1.ListConversationsResponse, error) {
	uid, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := s.st.ListConversations(ctx, uid)
	if err != nil {
		return nil, err
	}
	out := &accountv1.ListConversationsResponse{Conversations: make([]*accountv1.Conversation, len(cs))}
	for i := range cs {
		out.Conversations[i] = toProto(cs[i])
	}
	return out, nil
}

// GetConversation returns one of the caller's conversations with its messages.
func (s *Server) GetConversation(ctx context.Context, req *accountv1.GetConversationRequest) (*accountv1.GetConversationResponse, error) {
	uid, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	c, ms, err := s.st.GetConversation(ctx, uid, req.GetId())
	if err != nil {
		return nil, err
	}
	out := &accountv1.GetConversationResponse{Conversation: toProto(c), Messages: make([]*accountv1.ChatMessage, len(ms))}
	for i := range ms {
		out.Messages[i] = messageToProto(ms[i])
	}
	return out, nil
}

// CreateConversation starts a conversation.
func (s *Server) CreateConversation(ctx context.Context, req *accountv1.CreateConversationRequest) (*accountv1.CreateConversationResponse, error) {
	uid, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	t, err := title(req.GetTitle(), "")
	if err != nil {
		return nil, err
	}
	if len(req.GetModel()) > 255 {
		return nil, invalid("a model name has at most 255 bytes")
	}
	c, err := s.st.CreateConversation(ctx, uid, t, req.GetModel())
	if err != nil {
		return nil, err
	}
	return &accountv1.CreateConversationResponse{Conversation: toProto(c)}, nil
}

// RenameConversation changes a conversation's title.
func (s *Server) RenameConversation(ctx context.Context, req *accountv1.RenameConversationRequest) (*accountv1.RenameConversationResponse, error) {
	uid, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	t, err := title(req.GetTitle(), "")
	if err != nil {
		return nil, err
	}
	c, err := s.st.RenameConversation(ctx, uid, req.GetId(), t)
	if err != nil {
		return nil, err
	}
	return &accountv1.RenameConversationResponse{Conversation: toProto(c)}, nil
}

// DeleteConversation deletes a conversation.
func (s *Server) DeleteConversation(ctx context.Context, req *accountv1.DeleteConversationRequest) (*accountv1.DeleteConversationResponse, error) {
	uid, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.st.DeleteConversation(ctx, uid, req.GetId()); err != nil {
		return nil, err
	}
	return &accountv1.DeleteConversationResponse{}, nil
}

// AppendChatMessage adds a message to a conversation.
func (s *Server) AppendChatMessage(ctx context.Context, req *accountv1.AppendChatMessageRequest) (*accountv1.AppendChatMessageResponse, error) {
	uid, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.GetMessage()
	switch {
	case m == nil:
		return nil, invalid("a message is required")
	case m.GetRole() != store.ChatRoleUser && m.GetRole() != store.ChatRoleAssistant:
		return nil, invalid("role must be user or assistant")
	case len(m.GetContent())+len(m.GetReasoning()) > MaxContent:
		return nil, invalid("a message holds at most %d bytes", MaxContent)
	case !utf8.ValidString(m.GetContent()) || !utf8.ValidString(m.GetReasoning()):
		return nil, invalid("a message must be UTF-8")
	case m.GetPromptTokens() < 0 || m.GetCompletionTokens() < 0:
		return nil, invalid("token counts cannot be negative")
	case len(m.GetModel()) > 255 || len(m.GetRequestId()) > 64:
		return nil, invalid("the model name or request id is too long")
	}
	switch m.GetStatus() {
	case "", store.ChatStatusComplete, store.ChatStatusStopped, store.ChatStatusFailed:
	default:
		return nil, invalid("status must be complete, stopped or failed")
	}
	images, size, err := checkImages(m.GetRole(), m.GetImages())
	if err != nil {
		return nil, err
	}
	_, existing, err := s.st.GetConversation(ctx, uid, req.GetConversationId())
	if err != nil {
		return nil, err
	}
	if len(existing) >= MaxMessages {
		return nil, status.Errorf(codes.FailedPrecondition, "the conversation is full (%d messages): start a new one", MaxMessages)
	}
	if size > 0 && imageBytes(existing)+size > MaxConversationImageBytes {
		return nil, status.Errorf(codes.FailedPrecondition, "the conversation holds at most %d MiB of images: start a new one", MaxConversationImageBytes>>20)
	}
	got, err := s.st.AppendChatMessage(ctx, uid, store.ChatMessage{
		ConversationID: req.GetConversationId(), Role: m.GetRole(), Content: m.GetContent(), Reasoning: m.GetReasoning(),
		Model: m.GetModel(), Status: m.GetStatus(), PromptTokens: m.GetPromptTokens(), CompletionTokens: m.GetCompletionTokens(),
		RequestID: m.GetRequestId(), Images: images,
	})
	if err != nil {
		return nil, err
	}
	return &accountv1.AppendChatMessageResponse{Message: messageToProto(got)}, nil
}

// ExportConversation renders a conversation as JSON or Markdown.
func (s *Server) ExportConversation(ctx context.Context, req *accountv1.ExportConversationRequest) (*accountv1.ExportConversationResponse, error) {
	uid, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	c, ms, err := s.st.GetConversation(ctx, uid, req.GetId())
	if err != nil {
		return nil, err
	}
	switch req.GetFormat() {
	case "", "json":
		b, err := ExportJSON(c, ms)
		if err != nil {
			return nil, err
		}
		return &accountv1.ExportConversationResponse{ContentType: "application/json", Filename: fmt.Sprintf("conversation-%d.json", c.ID), Content: string(b)}, nil
	case "markdown", "md":
		return &accountv1.ExportConversationResponse{ContentType: "text/markdown; charset=utf-8", Filename: fmt.Sprintf("conversation-%d.md", c.ID), Content: ExportMarkdown(c, ms)}, nil
	}
	return nil, invalid("format must be json or markdown")
}

type exportMessage struct {
	Role             string `json:"role"`
	Content          string `json:"content"`
	Reasoning        string `json:"reasoning,omitempty"`
	Model            string `json:"model,omitempty"`
	Status           string `json:"status"`
	PromptTokens     int64  `json:"prompt_tokens,omitempty"`
	CompletionTokens int64  `json:"completion_tokens,omitempty"`
	RequestID        string `json:"request_id,omitempty"`
	// Images are the attached images as data URLs, so that the export is
	// complete on its own.
	Images    []exportImage `json:"images,omitempty"`
	CreatedAt string        `json:"created_at"`
}

type exportImage struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	SHA256    string `json:"sha256"`
	URL       string `json:"url"`
}

type exportDoc struct {
	ID        int64           `json:"id"`
	Title     string          `json:"title"`
	Model     string          `json:"model"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
	Messages  []exportMessage `json:"messages"`
}

const stamp = "2006-01-02T15:04:05Z07:00"

// ExportJSON renders a conversation as one JSON document (messages in an
// OpenAI-like shape, so that they can be replayed; images as data URLs with
// their name and SHA-256).
func ExportJSON(c store.Conversation, ms []store.ChatMessage) ([]byte, error) {
	d := exportDoc{ID: c.ID, Title: c.Title, Model: c.Model, CreatedAt: c.CreatedAt.UTC().Format(stamp),
		UpdatedAt: c.UpdatedAt.UTC().Format(stamp), Messages: make([]exportMessage, len(ms))}
	for i, m := range ms {
		d.Messages[i] = exportMessage{Role: m.Role, Content: m.Content, Reasoning: m.Reasoning, Model: m.Model, Status: m.Status,
			PromptTokens: m.PromptTokens, CompletionTokens: m.CompletionTokens, RequestID: m.RequestID, CreatedAt: m.CreatedAt.UTC().Format(stamp)}
		for _, im := range m.Images {
			d.Messages[i].Images = append(d.Messages[i].Images, exportImage{Name: im.Name, MediaType: im.MediaType, SHA256: im.SHA256,
				URL: "data:" + im.MediaType + ";base64," + base64.StdEncoding.EncodeToString(im.Data)})
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("export conversation %d: %w", c.ID, err)
	}
	return buf.Bytes(), nil
}

// ExportMarkdown renders a conversation as Markdown: a heading per turn, the
// model's thinking in a folded block, its text as written, each attached
// image as a line naming it (file name, type, size, SHA-256; the bytes are in
// the JSON export).
func ExportMarkdown(c store.Conversation, ms []store.ChatMessage) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", oneLine(c.Title))
	fmt.Fprintf(&b, "Exported from MindRouter. Started %s.\n", c.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"))
	for _, m := range ms {
		who := "You"
		if m.Role == store.ChatRoleAssistant {
			who = "Assistant"
			if m.Model != "" {
				who += " (" + oneLine(m.Model) + ")"
			}
		}
		fmt.Fprintf(&b, "\n## %s\n\n", who)
		if m.Reasoning != "" {
			b.WriteString("<details><summary>Thinking</summary>\n\n")
			b.WriteString(m.Reasoning)
			b.WriteString("\n\n</details>\n\n")
		}
		b.WriteString(m.Content)
		b.WriteString("\n")
		for _, im := range m.Images {
			fmt.Fprintf(&b, "\n*[image: %s, %s, %d bytes, sha256 %s]*\n", mdText(im.Name), im.MediaType, len(im.Data), im.SHA256)
		}
		if m.Status == store.ChatStatusStopped {
			b.WriteString("\n*(stopped)*\n")
		}
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// mdEscaper escapes Markdown's punctuation.
var mdEscaper = strings.NewReplacer("\\", "\\\\", "*", "\\*", "_", "\\_", "[", "\\[", "]", "\\]", "<", "\\<", ">", "\\>", "`", "\\`", "!", "\\!")

// mdText is a file name fit for one line of Markdown: no line breaks,
// Markdown's punctuation escaped.
func mdText(s string) string { return mdEscaper.Replace(oneLine(s)) }

func toProto(c store.Conversation) *accountv1.Conversation {
	return &accountv1.Conversation{Id: c.ID, Title: c.Title, Model: c.Model, MessageCount: int32(min(c.MessageCount, 1<<30)), //nolint:gosec // bounded
		CreatedAt: timestamppb.New(c.CreatedAt), UpdatedAt: timestamppb.New(c.UpdatedAt)}
}

func messageToProto(m store.ChatMessage) *accountv1.ChatMessage {
	out := &accountv1.ChatMessage{Id: m.ID, Role: m.Role, Content: m.Content, Reasoning: m.Reasoning, Model: m.Model, Status: m.Status,
		PromptTokens: m.PromptTokens, CompletionTokens: m.CompletionTokens, RequestId: m.RequestID, CreatedAt: timestamppb.New(m.CreatedAt)}
	for _, im := range m.Images {
		out.Images = append(out.Images, &accountv1.ChatImage{Name: im.Name, MediaType: im.MediaType, Data: im.Data, Sha256: im.SHA256})
	}
	return out
}
