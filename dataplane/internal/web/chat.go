package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/tokens"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// Conversations is what the chat needs from the control plane (cpclient.Web).
type Conversations interface {
	ListConversations(ctx context.Context, c cpclient.Caller) ([]cpclient.Conversation, error)
	GetConversation(ctx context.Context, c cpclient.Caller, id int64) (cpclient.Conversation, []cpclient.ChatMessage, error)
	CreateConversation(ctx context.Context, c cpclient.Caller, title, model string) (cpclient.Conversation, error)
	RenameConversation(ctx context.Context, c cpclient.Caller, id int64, title string) error
	DeleteConversation(ctx context.Context, c cpclient.Caller, id int64) error
	AppendChatMessage(ctx context.Context, c cpclient.Caller, id int64, m cpclient.ChatMessage) error
	ExportConversation(ctx context.Context, c cpclient.Caller, id int64, format string) (cpclient.Export, error)
}

// ChatRelay runs the chat's inference requests (relay.Relay): the same relay,
// admission, quota and audit path as the API's.
type ChatRelay interface {
	ChatStream(ctx context.Context, call relay.Call, sink relay.Sink) (*relay.Result, error)
}

// Chat enables the chat page (Config.Chat).
type Chat struct {
	Conversations Conversations
	Relay         ChatRelay
}

// ChatEndpoint is the chat's inference route; ChatSurface names it in the
// audit trail.
const (
	ChatEndpoint = "/chat/send"
	ChatSurface  = "web-chat"
	// maxChatBody bounds a chat message's request body (its images as data
	// URLs included); maxChatText its text.
	maxChatBody = 6 << 20
	maxChatText = 64 << 10
	// maxChatImages, maxChatImageBytes and maxChatImagesBytes bound a
	// message's images (decoded): ConversationService's limits, checked here
	// first so that nothing is created or sent for a message it would refuse.
	maxChatImages      = 4
	maxChatImageBytes  = 2 << 20
	maxChatImagesBytes = 3 << 20
	// CSRFHeader carries the session's CSRF token on the chat's fetches.
	CSRFHeader = "X-CSRF-Token"
)

func (h *Handler) routeChat() {
	if h.cfg.Chat == nil {
		return
	}
	h.mux.HandleFunc("GET /chat", h.chatPage)
	h.mux.HandleFunc("GET /chat/{id}", h.chatPage)
	h.mux.HandleFunc("POST "+ChatEndpoint, h.chatSend)
	h.mux.HandleFunc("POST /chat/{id}/rename", h.chatRename)
	h.mux.HandleFunc("POST /chat/{id}/delete", h.chatDelete)
	h.mux.HandleFunc("GET /chat/{id}/export", h.chatExport)
}

// chatModel is a model of the picker.
type chatModel struct {
	Name          string
	Capabilities  string
	ContextLength int64
	Vision, Think bool
	Selected      bool
}

// shownMessage is a message as the page shows it.
type shownMessage struct {
	cpclient.ChatMessage
	HTML, ReasoningHTML template.HTML
	Thumbs              []shownImage
}

// shownImage is an attached image: a data URL of an allowed image type
// (checked again here, so the URL is safe to trust) and its file name.
type shownImage struct {
	Name string
	URL  template.URL
}

func shownImages(ims []cpclient.ChatImage) []shownImage {
	var out []shownImage
	for _, im := range ims {
		if sniffImage(im.Data) != im.MediaType || im.MediaType == "" {
			continue
		}
		out = append(out, shownImage{Name: im.Name, URL: template.URL(dataURL(im))}) //nolint:gosec // an allowed image type, base64
	}
	return out
}

func dataURL(im cpclient.ChatImage) string {
	return "data:" + im.MediaType + ";base64," + base64.StdEncoding.EncodeToString(im.Data)
}

// chatImageTypes are the image types a chat message may carry.
var chatImageTypes = []string{"image/png", "image/jpeg", "image/webp", "image/gif"}

// sniffImage is the media type of an image of an allowed type, or "".
func sniffImage(b []byte) string {
	mt := http.DetectContentType(b)
	if slices.Contains(chatImageTypes, mt) {
		return mt
	}
	return ""
}

type chatData struct {
	Conversations []cpclient.Conversation
	Current       *cpclient.Conversation
	Messages      []shownMessage
	Models        []chatModel
}

// chatModels lists the models that can chat now (a healthy backend, not an
// embedding model), the conversation's own first.
func (h *Handler) chatModels(ctx context.Context, current string) []chatModel {
	s, err := h.cp.Status(ctx)
	if err != nil {
		return nil
	}
	var out []chatModel
	for _, m := range s.Models {
		if m.HealthyBackends == 0 || slices.Contains(m.Capabilities, "embedding") || slices.Contains(m.Capabilities, "rerank") {
			continue
		}
		out = append(out, chatModel{Name: m.Name, Capabilities: strings.Join(m.Capabilities, ", "), ContextLength: m.ContextLength,
			Vision: slices.Contains(m.Capabilities, "vision"), Think: slices.Contains(m.Capabilities, "thinking"), Selected: m.Name == current})
	}
	return out
}

func (h *Handler) chatPage(w http.ResponseWriter, r *http.Request) {
	c, me, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	var d chatData
	var err error
	if d.Conversations, err = h.cfg.Chat.Conversations.ListConversations(ctx, c); err != nil {
		h.fail(w, r, me, err)
		return
	}
	model := ""
	if raw := r.PathValue("id"); raw != "" {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			h.fail(w, r, me, &cpclient.WebError{Status: http.StatusNotFound, Message: "no such conversation"})
			return
		}
		conv, ms, err := h.cfg.Chat.Conversations.GetConversation(ctx, c, id)
		if err != nil {
			h.fail(w, r, me, err)
			return
		}
		d.Current, model = &conv, conv.Model
		for _, m := range ms {
			sm := shownMessage{ChatMessage: m, Thumbs: shownImages(m.Images)}
			if m.Role == "assistant" {
				sm.HTML = renderMarkdown(m.Content)
				if m.Reasoning != "" {
					sm.ReasoningHTML = renderMarkdown(m.Reasoning)
				}
			}
			d.Messages = append(d.Messages, sm)
		}
	}
	d.Models = h.chatModels(ctx, model)
	title := "Chat"
	if d.Current != nil {
		title = d.Current.Title + " — Chat"
	}
	h.render(w, r, http.StatusOK, "chat", page{Title: title, Nav: "chat", Me: me, Data: d, Notice: notices[r.URL.Query().Get("done")]})
}

// chatConversationID reads the {id} of a chat route.
func chatConversationID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "no such conversation", http.StatusNotFound)
		return 0, false
	}
	return id, true
}

func (h *Handler) chatRename(w http.ResponseWriter, r *http.Request) {
	h.chatChange(w, r, func(ctx context.Context, c cpclient.Caller, id int64) (string, error) {
		return fmt.Sprintf("/chat/%d?done=renamed", id), h.cfg.Chat.Conversations.RenameConversation(ctx, c, id, r.PostForm.Get("title"))
	})
}

func (h *Handler) chatDelete(w http.ResponseWriter, r *http.Request) {
	h.chatChange(w, r, func(ctx context.Context, c cpclient.Caller, id int64) (string, error) {
		return "/chat?done=conversation-deleted", h.cfg.Chat.Conversations.DeleteConversation(ctx, c, id)
	})
}

// chatChange runs change, a form post, on the signed-in user's conversation
// named in the path, then sends the browser where change says; a failure is
// shown as a page.
func (h *Handler) chatChange(w http.ResponseWriter, r *http.Request, change func(ctx context.Context, c cpclient.Caller, id int64) (redirect string, err error)) {
	c, me, ok := h.changing(w, r)
	if !ok {
		return
	}
	id, ok := chatConversationID(w, r)
	if !ok {
		return
	}
	to, err := change(r.Context(), c, id)
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (h *Handler) chatExport(w http.ResponseWriter, r *http.Request) {
	c, me, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	id, ok := chatConversationID(w, r)
	if !ok {
		return
	}
	e, err := h.cfg.Chat.Conversations.ExportConversation(r.Context(), c, id, r.URL.Query().Get("format"))
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	w.Header().Set("Content-Type", e.ContentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+strings.Map(safeFilename, e.Filename)+`"`)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, e.Content)
}

func safeFilename(r rune) rune {
	if r == '-' || r == '.' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
		return r
	}
	return '_'
}

// ChatInput is the body of POST /chat/send.
type ChatInput struct {
	// ConversationID is the conversation to continue; 0 starts a new one.
	ConversationID int64  `json:"conversation_id"`
	Model          string `json:"model"`
	Content        string `json:"content"`
	// Think asks a thinking model to think (its thinking is shown folded).
	Think bool `json:"think"`
	// Images are attached images (vision models): up to 4, each a data URL
	// of a PNG, JPEG, WebP or GIF of at most 2 MiB, 3 MiB together.
	Images []ChatInputImage `json:"images,omitempty"`
}

// ChatInputImage is an attached image: the file's name and a data URL.
type ChatInputImage struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// images decodes the message's images.
func (in ChatInput) images() []cpclient.ChatImage {
	var out []cpclient.ChatImage
	for _, im := range in.Images {
		_, data, _ := strings.Cut(im.URL, ",")
		b, _ := base64.StdEncoding.DecodeString(data) // checked by ParseChatInput
		out = append(out, cpclient.ChatImage{Name: im.Name, MediaType: sniffImage(b), Data: b})
	}
	return out
}

// errChatInput is a chat body the page refuses.
var errChatInput = errors.New("bad chat message")

// ParseChatInput reads and checks a chat message's body: one JSON object, no
// unknown fields, a model name, up to 64 KiB of UTF-8 text (not empty unless
// images are attached) and the images' limits. An image over a size limit is
// a *canonical.Error of KindTooLarge (413), one of another type KindInvalidRequest
// with status 415; anything else wraps errChatInput (400).
func ParseChatInput(body []byte) (ChatInput, error) {
	var in ChatInput
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return ChatInput{}, fmt.Errorf("%w: the body is not a chat message: %s", errChatInput, jsonProblem(err))
	}
	if dec.More() {
		return ChatInput{}, fmt.Errorf("%w: one JSON object expected", errChatInput)
	}
	in.Model = strings.TrimSpace(in.Model)
	switch {
	case in.ConversationID < 0:
		return ChatInput{}, fmt.Errorf("%w: conversation_id must be positive", errChatInput)
	case in.Model == "" || len(in.Model) > 255 || !utf8.ValidString(in.Model):
		return ChatInput{}, fmt.Errorf("%w: choose a model", errChatInput)
	case strings.TrimSpace(in.Content) == "" && len(in.Images) == 0:
		return ChatInput{}, fmt.Errorf("%w: the message is empty", errChatInput)
	case len(in.Content) > maxChatText:
		return ChatInput{}, fmt.Errorf("%w: a message holds at most %d KiB", errChatInput, maxChatText>>10)
	case !utf8.ValidString(in.Content):
		return ChatInput{}, fmt.Errorf("%w: the message is not UTF-8", errChatInput)
	case len(in.Images) > maxChatImages:
		return ChatInput{}, fmt.Errorf("%w: a message carries at most %d images", errChatInput, maxChatImages)
	}
	total := 0
	for i, im := range in.Images {
		n, err := checkChatImage(i+1, im)
		if err != nil {
			return ChatInput{}, err
		}
		total += n
	}
	if total > maxChatImagesBytes {
		return ChatInput{}, chatError(canonical.KindTooLarge, "images_too_large",
			fmt.Sprintf("a message's images may hold %d MiB together; these hold %.1f MiB", maxChatImagesBytes>>20, float64(total)/(1<<20)))
	}
	return in, nil
}

// checkChatImage checks the n-th image: a name of at most 255 bytes of UTF-8
// and a base64 data URL of an allowed type (sniffed from the bytes, and the
// URL's type must agree) of at most 2 MiB. It returns the image's size.
func checkChatImage(n int, im ChatInputImage) (int, error) {
	if len(im.Name) > 255 || !utf8.ValidString(im.Name) {
		return 0, fmt.Errorf("%w: image %d's name needs at most 255 bytes of UTF-8", errChatInput, n)
	}
	meta, data, ok := strings.Cut(im.URL, ",")
	mediaType, isBase64 := strings.CutSuffix(strings.TrimPrefix(meta, "data:"), ";base64")
	if !ok || !strings.HasPrefix(meta, "data:") || !isBase64 {
		return 0, fmt.Errorf("%w: image %d must be a data URL (data:image/png;base64,…)", errChatInput, n)
	}
	if base64.StdEncoding.DecodedLen(len(data)) > maxChatImageBytes+3 {
		return 0, imageTooLarge(n, im.Name)
	}
	b, err := base64.StdEncoding.DecodeString(data)
	switch {
	case err != nil || len(b) == 0:
		return 0, fmt.Errorf("%w: image %d is not valid base64", errChatInput, n)
	case len(b) > maxChatImageBytes:
		return 0, imageTooLarge(n, im.Name)
	}
	if mt := sniffImage(b); mt == "" || mt != mediaType {
		return 0, &canonical.Error{Kind: canonical.KindInvalidRequest, Status: http.StatusUnsupportedMediaType, Code: "unsupported_image",
			Message: fmt.Sprintf("image %d (%s) is not a PNG, JPEG, WebP or GIF image (or its type does not match its bytes)", n, canonical.Echo(im.Name))}
	}
	return len(b), nil
}

func imageTooLarge(n int, name string) error {
	return chatError(canonical.KindTooLarge, "image_too_large", fmt.Sprintf("image %d (%s) is larger than %d MiB", n, canonical.Echo(name), maxChatImageBytes>>20))
}

// jsonProblem names what is wrong with a body without echoing it.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends early"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return "it has an unknown field"
	}
	return "invalid JSON"
}

// chatRefusal writes a refusal before the stream starts, in the OpenAI error
// envelope with its status (the API's dialect-error path).
func chatRefusal(w http.ResponseWriter, err error) {
	er := openai.EncodeError(canonical.AsError(err))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if er.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(max(er.RetryAfter.Round(time.Second)/time.Second, 1))))
	}
	w.WriteHeader(er.Status)
	_, _ = w.Write(er.Body)
}

func chatError(kind canonical.ErrorKind, code, msg string) error {
	return &canonical.Error{Kind: kind, Code: code, Message: msg}
}

// chatCaller authenticates a chat fetch: same origin, the session cookie and
// its CSRF token in the X-CSRF-Token header (compared in constant time here,
// and again by the control plane).
func (h *Handler) chatCaller(w http.ResponseWriter, r *http.Request) (cpclient.Caller, bool) {
	if !sameOrigin(r) {
		chatRefusal(w, chatError(canonical.KindPermission, "cross_site", "cross-site request refused"))
		return cpclient.Caller{}, false
	}
	c, ok := h.caller(r)
	if !ok {
		chatRefusal(w, chatError(canonical.KindAuthentication, "not_signed_in", "sign in first"))
		return c, false
	}
	me, err := h.cp.WhoAmI(r.Context(), c)
	if err != nil {
		if cpclient.HTTPStatus(err) == http.StatusUnauthorized {
			err = chatError(canonical.KindAuthentication, "not_signed_in", "your session has ended; sign in again")
		}
		chatRefusal(w, webToCanonical(err))
		return c, false
	}
	token := r.Header.Get(CSRFHeader)
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(me.CSRF)) != 1 {
		chatRefusal(w, chatError(canonical.KindPermission, "csrf", "the page has expired; reload it and try again"))
		return c, false
	}
	c.CSRF = token
	return c, true
}

// chatSend sends one message of a conversation to the model and streams the
// reply back as server-sent events: "start" (conversation and request ids,
// how many older messages were left out for the context window), "delta"
// (content and reasoning text), then "done" (the reply's sanitized HTML, its
// status and usage) or "error". The inference request is a relay call like
// the API's — admitted, charged and audited as the session's user, surface
// "web-chat" — with a credential the control plane resolves to the session.
// Closing the connection (the page's stop button) cancels the request
// upstream; what had arrived is kept as a stopped reply.
func (h *Handler) chatSend(w http.ResponseWriter, r *http.Request) {
	c, ok := h.chatCaller(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxChatBody))
	if err != nil {
		chatRefusal(w, canonical.BodyError(err))
		return
	}
	in, err := ParseChatInput(body)
	if err != nil {
		if !errors.As(err, new(*canonical.Error)) {
			err = chatError(canonical.KindInvalidRequest, "invalid_chat_message", strings.TrimPrefix(err.Error(), errChatInput.Error()+": "))
		}
		chatRefusal(w, err)
		return
	}
	ctx := r.Context()
	var picked chatModel
	for _, m := range h.chatModels(ctx, "") {
		if m.Name == in.Model {
			picked = m
		}
	}
	if len(in.Images) > 0 && picked.Name != "" && !picked.Vision {
		chatRefusal(w, chatError(canonical.KindInvalidRequest, "model_without_vision", "the model "+canonical.Echo(in.Model)+" does not accept images; choose a vision model"))
		return
	}
	images := in.images()
	convs := h.cfg.Chat.Conversations
	var history []cpclient.ChatMessage
	if in.ConversationID == 0 {
		title := in.Content
		if strings.TrimSpace(title) == "" {
			title = in.Images[0].Name
		}
		conv, err := convs.CreateConversation(ctx, c, titleFrom(title), in.Model)
		if err != nil {
			chatRefusal(w, webToCanonical(err))
			return
		}
		in.ConversationID = conv.ID
	} else if _, history, err = convs.GetConversation(ctx, c, in.ConversationID); err != nil {
		chatRefusal(w, webToCanonical(err))
		return
	}
	if err := convs.AppendChatMessage(ctx, c, in.ConversationID, cpclient.ChatMessage{Role: "user", Content: in.Content, Images: images}); err != nil {
		chatRefusal(w, webToCanonical(err))
		return
	}
	contextLength := picked.ContextLength
	req, dropped := chatRequest(in, images, history, contextLength, picked.Vision || picked.Name == "")
	call := surface.CallAs(r, cpclient.SessionCredential(c), ChatEndpoint, ChatSurface)
	call.Request = req

	sink := &chatSink{w: w, rc: http.NewResponseController(w)}
	sink.start = map[string]any{"conversation_id": in.ConversationID, "request_id": call.RequestID, "dropped": dropped, "context_length": contextLength}
	res, err := h.cfg.Chat.Relay.ChatStream(ctx, call, sink)

	reply := cpclient.ChatMessage{Role: "assistant", Content: sink.content.String(), Reasoning: sink.reasoning.String(),
		Model: in.Model, Status: "complete", RequestID: call.RequestID}
	if res != nil {
		reply.PromptTokens, reply.CompletionTokens = res.Usage.Prompt, res.Usage.Completion
	}
	stopped := ctx.Err() != nil
	switch {
	case stopped:
		reply.Status = "stopped"
	case err != nil:
		reply.Status = "failed"
	}
	// The reply is kept whatever happened, with the session's rights, after
	// the browser has gone if it has (a stop).
	if reply.Content != "" || reply.Reasoning != "" || !stopped {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if serr := convs.AppendChatMessage(sctx, c, in.ConversationID, reply); serr != nil {
			h.log.Warn("keeping a chat reply failed", slog.Int64("conversation_id", in.ConversationID), slog.Any("error", serr))
		}
		cancel()
	}
	if stopped {
		return
	}
	if err != nil {
		ce := canonical.AsError(err)
		er := openai.EncodeError(ce)
		if !sink.started {
			// Nothing was sent: the refusal keeps its status.
			w.Header().Set("X-Mindrouter-Conversation", strconv.FormatInt(in.ConversationID, 10))
			chatRefusal(w, err)
			return
		}
		_ = sink.event("error", map[string]any{"status": er.Status, "message": ce.Message}) // the page may be gone
		return
	}
	done := map[string]any{"status": reply.Status, "html": string(renderMarkdown(reply.Content)),
		"prompt_tokens": reply.PromptTokens, "completion_tokens": reply.CompletionTokens}
	if reply.Reasoning != "" {
		done["reasoning_html"] = string(renderMarkdown(reply.Reasoning))
	}
	_ = sink.event("done", done) // the page may be gone
}

// webToCanonical turns a control-plane refusal into the dialect's error.
func webToCanonical(err error) error {
	var we *cpclient.WebError
	if !errors.As(err, &we) {
		return err
	}
	kind := canonical.KindUnavailable
	switch we.Status {
	case http.StatusBadRequest:
		kind = canonical.KindInvalidRequest
	case http.StatusUnauthorized:
		kind = canonical.KindAuthentication
	case http.StatusForbidden:
		kind = canonical.KindPermission
	case http.StatusNotFound:
		kind = canonical.KindNotFound
	case http.StatusTooManyRequests:
		kind = canonical.KindRateLimited
	}
	return &canonical.Error{Kind: kind, Code: "conversation", Message: we.Message}
}

// titleFrom is a new conversation's title: the first line of its first
// message, cut at 60 characters.
func titleFrom(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > 60 {
		s = string([]rune(s)[:59]) + "…"
	}
	if s == "" {
		s = "New conversation"
	}
	return s
}

// chatRequest builds the canonical request of a chat message: the
// conversation's earlier turns (replies that failed left out) and the new
// message with its images, the oldest turns dropped until the estimate fits
// in three quarters of the model's context window (the rest is the reply's).
// A turn's estimate is its text at 4 characters a token, 4 tokens of
// framing and tokens.PerImage (765) for each image. Earlier turns' images go
// along when vision is set; for a model without vision they are left out,
// each named in the text ("[image: name]"). It returns how many turns were
// dropped.
func chatRequest(in ChatInput, images []cpclient.ChatImage, history []cpclient.ChatMessage, contextLength int64, vision bool) (*canonical.Request, int) {
	var msgs []canonical.Message
	for _, m := range history {
		if m.Role == "assistant" && (m.Status == "failed" || m.Content == "") {
			continue
		}
		role := canonical.RoleUser
		if m.Role == "assistant" {
			role = canonical.RoleAssistant
		}
		msgs = append(msgs, canonical.Message{Role: role, Content: chatParts(m.Content, m.Images, vision)})
	}
	msgs = append(msgs, canonical.Message{Role: canonical.RoleUser, Content: chatParts(in.Content, images, true)})
	dropped := 0
	if contextLength > 0 {
		budget := contextLength * 3 / 4
		total := int64(0)
		keep := len(msgs)
		for i := len(msgs) - 1; i >= 0; i-- {
			total += tokens.FromChars(len(msgs[i].Text())) + 4
			for _, p := range msgs[i].Content {
				if p.Type == canonical.PartImage {
					total += tokens.PerImage
				}
			}
			if total > budget && i < len(msgs)-1 {
				break
			}
			keep = i
		}
		dropped = keep
		msgs = msgs[keep:]
		// A conversation starts with the user's turn.
		for len(msgs) > 1 && msgs[0].Role != canonical.RoleUser {
			msgs, dropped = msgs[1:], dropped+1
		}
	}
	req := &canonical.Request{Model: in.Model, Messages: msgs, Stream: true, IncludeUsage: true}
	if in.Think {
		req.Think = &canonical.Thinking{Enabled: true}
	}
	return req, dropped
}

// chatParts is a turn's content: its text, then its images (OpenAI's order
// of parts; Ollama gets them as the message's images), or, without vision,
// a line naming each image.
func chatParts(text string, images []cpclient.ChatImage, vision bool) []canonical.Part {
	var parts []canonical.Part
	for _, im := range images {
		if vision {
			parts = append(parts, canonical.Part{Type: canonical.PartImage,
				Image: &canonical.Image{MediaType: im.MediaType, Data: base64.StdEncoding.EncodeToString(im.Data)}})
		} else {
			text += "\n[image: " + im.Name + "]"
		}
	}
	if text != "" || len(parts) == 0 {
		parts = append([]canonical.Part{canonical.TextPart(text)}, parts...)
	}
	return parts
}

// chatSink streams a reply to the page as server-sent events.
type chatSink struct {
	w                  http.ResponseWriter
	rc                 *http.ResponseController
	start              map[string]any
	started            bool
	content, reasoning strings.Builder
}

func (s *chatSink) begin() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
	// A page that has gone shows in the next chunk's write.
	_ = s.event("start", s.start)
}

// event writes one event and flushes it; an error means the page is gone.
func (s *chatSink) event(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", name, b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// Admitted starts the stream once a backend has the request.
func (s *chatSink) Admitted(relay.Admission) { s.begin() }

// Chunk forwards a chunk's text.
func (s *chatSink) Chunk(ch canonical.Chunk) error {
	s.begin()
	if ch.Content == "" && ch.Reasoning == "" {
		return nil
	}
	s.content.WriteString(ch.Content)
	s.reasoning.WriteString(ch.Reasoning)
	d := map[string]string{}
	if ch.Content != "" {
		d["content"] = ch.Content
	}
	if ch.Reasoning != "" {
		d["reasoning"] = ch.Reasoning
	}
	return s.event("delta", d)
}
