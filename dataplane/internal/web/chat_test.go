package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

// fakeConversations keeps conversations in memory, per session's user, and
// refuses another user's like the control plane does (NOT_FOUND).
type fakeConversations struct {
	cp    *fakeCP
	mu    sync.Mutex
	next  int64
	owner map[int64]int64
	convs map[int64]*cpclient.Conversation
	msgs  map[int64][]cpclient.ChatMessage
}

func newFakeConversations(cp *fakeCP) *fakeConversations {
	return &fakeConversations{cp: cp, owner: map[int64]int64{}, convs: map[int64]*cpclient.Conversation{}, msgs: map[int64][]cpclient.ChatMessage{}}
}

var errNoConversation = &cpclient.WebError{Status: http.StatusNotFound, Message: "conversation not found"}

func (f *fakeConversations) mine(c cpclient.Caller, id int64, write bool) error {
	me, err := f.cp.me(c, write)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.owner[id] != me.UserID || id == 0 {
		return errNoConversation
	}
	return nil
}

func (f *fakeConversations) ListConversations(_ context.Context, c cpclient.Caller) ([]cpclient.Conversation, error) {
	me, err := f.cp.me(c, false)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cpclient.Conversation
	for id, conv := range f.convs {
		if f.owner[id] == me.UserID {
			out = append(out, *conv)
		}
	}
	return out, nil
}

func (f *fakeConversations) GetConversation(_ context.Context, c cpclient.Caller, id int64) (cpclient.Conversation, []cpclient.ChatMessage, error) {
	if err := f.mine(c, id, false); err != nil {
		return cpclient.Conversation{}, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.convs[id], append([]cpclient.ChatMessage(nil), f.msgs[id]...), nil
}

func (f *fakeConversations) CreateConversation(_ context.Context, c cpclient.Caller, title, model string) (cpclient.Conversation, error) {
	me, err := f.cp.me(c, true)
	if err != nil {
		return cpclient.Conversation{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	f.owner[f.next] = me.UserID
	f.convs[f.next] = &cpclient.Conversation{ID: f.next, Title: title, Model: model}
	return *f.convs[f.next], nil
}

func (f *fakeConversations) RenameConversation(_ context.Context, c cpclient.Caller, id int64, title string) error {
	if err := f.mine(c, id, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.convs[id].Title = title
	return nil
}

func (f *fakeConversations) DeleteConversation(_ context.Context, c cpclient.Caller, id int64) error {
	if err := f.mine(c, id, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.convs, id)
	delete(f.owner, id)
	return nil
}

func (f *fakeConversations) AppendChatMessage(_ context.Context, c cpclient.Caller, id int64, m cpclient.ChatMessage) error {
	if err := f.mine(c, id, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs[id] = append(f.msgs[id], m)
	f.convs[id].MessageCount++
	return nil
}

func (f *fakeConversations) ExportConversation(_ context.Context, c cpclient.Caller, id int64, format string) (cpclient.Export, error) {
	if err := f.mine(c, id, false); err != nil {
		return cpclient.Export{}, err
	}
	return cpclient.Export{ContentType: "text/markdown", Filename: fmt.Sprintf("conversation-%d.md\r\nX-Evil: 1", id), Content: "# x\n"}, nil
}

// fakeChatRelay answers with a scripted reply, or fails before the first byte.
type fakeChatRelay struct {
	mu    sync.Mutex
	calls []relay.Call
	fail  error
}

func (r *fakeChatRelay) ChatStream(_ context.Context, call relay.Call, sink relay.Sink) (*relay.Result, error) {
	r.mu.Lock()
	r.calls = append(r.calls, call)
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	sink.Admitted(relay.Admission{Attempt: 1})
	for _, ch := range []canonical.Chunk{{Reasoning: "hmm"}, {Content: "**hi** "}, {Content: "<script>alert(1)</script>"}} {
		if err := sink.Chunk(ch); err != nil {
			return nil, err
		}
	}
	return &relay.Result{Usage: canonical.Usage{Prompt: 5, Completion: 3}}, nil
}

func newChatHandler(t *testing.T) (*Handler, *fakeConversations, *fakeChatRelay) {
	t.Helper()
	cp := newFakeCP()
	convs := newFakeConversations(cp)
	rl := &fakeChatRelay{}
	h, err := New(cp, Config{Version: "test", Chat: &Chat{Conversations: convs, Relay: rl}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return h, convs, rl
}

func chatPost(h http.Handler, body, session, csrf string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", ChatEndpoint, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		r.Header.Set(CSRFHeader, csrf)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	if session != "" {
		r.AddCookie(&http.Cookie{Name: "mindrouter_session", Value: session})
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type sseEvent struct {
	Name string
	Data map[string]any
}

func readEvents(t *testing.T, body string) []sseEvent {
	t.Helper()
	var out []sseEvent
	for block := range strings.SplitSeq(strings.TrimSpace(body), "\n\n") {
		var e sseEvent
		for line := range strings.SplitSeq(block, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				e.Name = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				require.NoError(t, json.Unmarshal([]byte(v), &e.Data), line)
			}
		}
		out = append(out, e)
	}
	return out
}

// TestChatSendStreamsAndKeeps: a message is relayed with the session's
// credential on the web-chat surface, streamed as events, and both turns are
// kept; the final HTML is sanitized.
func TestChatSendStreamsAndKeeps(t *testing.T) {
	t.Parallel()
	h, convs, rl := newChatHandler(t)
	w := chatPost(h, `{"model":"llama3","content":"Hello there\nsecond line"}`, "s-user", "c-user", nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "text/event-stream", w.Header().Get("Content-Type"))
	events := readEvents(t, w.Body.String())
	names := make([]string, len(events))
	for i, e := range events {
		names[i] = e.Name
	}
	assert.Equal(t, []string{"start", "delta", "delta", "delta", "done"}, names)
	assert.EqualValues(t, 1, events[0].Data["conversation_id"])
	assert.EqualValues(t, 8192, events[0].Data["context_length"], "the catalog's context length")
	done := events[len(events)-1].Data
	assert.Equal(t, "<p><strong>hi</strong> alert(1)</p>\n", done["html"], "the raw script element is gone; its text is text")
	assert.NotContains(t, done["reasoning_html"], "<script")

	require.Len(t, rl.calls, 1)
	call := rl.calls[0]
	assert.Equal(t, "session:s-user:c-user", call.Credential, "the control plane resolves the session")
	assert.Equal(t, ChatEndpoint, call.Endpoint)
	assert.True(t, call.Request.Stream)
	assert.Equal(t, "llama3", call.Request.Model)

	c, ms, err := convs.GetConversation(t.Context(), cpclient.Caller{Session: "s-user"}, 1)
	require.NoError(t, err)
	assert.Equal(t, "Hello there", c.Title, "titled by the first line")
	require.Len(t, ms, 2)
	assert.Equal(t, cpclient.ChatMessage{Role: "user", Content: "Hello there\nsecond line"}, ms[0])
	assert.Equal(t, cpclient.ChatMessage{Role: "assistant", Content: "**hi** <script>alert(1)</script>", Reasoning: "hmm", Model: "llama3",
		Status: "complete", RequestID: call.RequestID, PromptTokens: 5, CompletionTokens: 3}, ms[1])

	// The page shows it sanitized after a reload too.
	page := get(h, "/chat/1", "s-user")
	require.Equal(t, http.StatusOK, page.Code)
	assert.Contains(t, page.Body.String(), "<strong>hi</strong>")
	assert.NotContains(t, page.Body.String(), "<script>alert")
	assert.NotContains(t, page.Body.String(), "style=")
	// Another user finds nothing, and cannot continue it.
	assert.Equal(t, http.StatusNotFound, get(h, "/chat/1", "s-admin").Code)
	w = chatPost(h, `{"conversation_id":1,"model":"llama3","content":"mine now"}`, "s-admin", "c-admin", nil)
	assert.Equal(t, http.StatusNotFound, w.Code, w.Body.String())
	assert.Len(t, rl.calls, 1, "nothing was sent to a model")
}

// TestChatSendRefusals: each refusal is the OpenAI error envelope with the
// right status, before anything reaches a model.
func TestChatSendRefusals(t *testing.T) {
	t.Parallel()
	h, _, rl := newChatHandler(t)
	good := `{"model":"llama3","content":"hi"}`
	for _, tc := range []struct {
		name, body, session, csrf string
		header                    map[string]string
		status                    int
		says                      string
	}{
		{"cross-site", good, "s-user", "c-user", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross-site"},
		{"other origin", good, "s-user", "c-user", map[string]string{"Origin": "https://evil.example"}, 403, "cross-site"},
		{"signed out", good, "", "", nil, 401, "sign in"},
		{"unknown session", good, "s-nope", "x", nil, 401, "sign in"},
		{"no CSRF token", good, "s-user", "", nil, 403, "expired"},
		{"another session's CSRF token", good, "s-user", "c-admin", nil, 403, "expired"},
		{"not JSON", `{"model":`, "s-user", "c-user", nil, 400, "ends early"},
		{"unknown field", `{"model":"m","content":"x","temperature":2}`, "s-user", "c-user", nil, 400, "unknown field"},
		{"no model", `{"content":"x"}`, "s-user", "c-user", nil, 400, "choose a model"},
		{"empty", `{"model":"m","content":"  "}`, "s-user", "c-user", nil, 400, "empty"},
		{"too long", `{"model":"m","content":"` + strings.Repeat("x", maxChatText+1) + `"}`, "s-user", "c-user", nil, 400, "at most"},
		{"too large", `{"model":"m","content":"` + strings.Repeat("x", maxChatBody) + `"}`, "s-user", "c-user", nil, 413, ""},
	} {
		w := chatPost(h, tc.body, tc.session, tc.csrf, tc.header)
		assert.Equal(t, tc.status, w.Code, "%s: %s", tc.name, w.Body.String())
		var env struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &env), "%s: %s", tc.name, w.Body.String())
		assert.Contains(t, env.Error.Message, tc.says, tc.name)
		assert.NotEmpty(t, env.Error.Type, tc.name)
	}
	assert.Empty(t, rl.calls)

	// A refusal by admission (an unknown model) keeps its status, and the turn is kept as failed.
	rl.fail = &canonical.Error{Kind: canonical.KindNotFound, Code: "model_not_found", Message: "model nope not found"}
	w := chatPost(h, `{"model":"nope","content":"hi"}`, "s-user", "c-user", nil)
	assert.Equal(t, http.StatusNotFound, w.Code, w.Body.String())
	assert.Contains(t, w.Body.String(), "model nope not found")
	assert.Equal(t, "1", w.Header().Get("X-Mindrouter-Conversation"))
}

// TestChatPagesAndForms: the chat page is behind sign-in, strict (no inline
// script or style), and rename, delete and export need the owner (and CSRF
// for changes); the export's file name cannot inject headers.
func TestChatPagesAndForms(t *testing.T) {
	t.Parallel()
	h, convs, _ := newChatHandler(t)
	w := get(h, "/chat", "")
	assert.Equal(t, http.StatusSeeOther, w.Code)
	assert.Equal(t, "/login?next=%2Fchat", w.Header().Get("Location"))
	_, err := convs.CreateConversation(t.Context(), cpclient.Caller{Session: "s-user", CSRF: "c-user"}, "<b>mine</b>", "llama3")
	require.NoError(t, err)
	for _, path := range []string{"/chat", "/chat/1"} {
		w = get(h, path, "s-user")
		require.Equal(t, http.StatusOK, w.Code, path)
		body := w.Body.String()
		assert.NotContains(t, body, "<script>", path)
		assert.NotContains(t, body, "style=", path)
		assert.NotRegexp(t, ` on[a-z]+=`, body, path)
		assert.Contains(t, body, "&lt;b&gt;mine&lt;/b&gt;", "titles are text")
		assert.Contains(t, body, `<option value="llama3"`, "the picker")
		assert.Contains(t, body, "(vision)", "with capabilities")
		assert.Contains(t, body, `src="/static/chat.js?v=test"`)
	}
	assert.Equal(t, http.StatusNotFound, get(h, "/chat/x", "s-user").Code)

	w = get(h, "/chat/1/export?format=markdown", "s-user")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `attachment; filename="conversation-1.md__X-Evil__1"`, w.Header().Get("Content-Disposition"))
	assert.Empty(t, w.Header().Get("X-Evil"))
	assert.Equal(t, http.StatusNotFound, get(h, "/chat/1/export", "s-admin").Code)

	w = post(h, "/chat/1/rename", "s-user", map[string][]string{"title": {"Renamed"}}, nil)
	assert.Equal(t, http.StatusForbidden, w.Code, "no CSRF token")
	w = post(h, "/chat/1/rename", "s-admin", map[string][]string{"title": {"Mine"}, "csrf_token": {"c-admin"}}, nil)
	assert.Equal(t, http.StatusNotFound, w.Code, "not the owner")
	w = post(h, "/chat/1/rename", "s-user", map[string][]string{"title": {"Renamed"}, "csrf_token": {"c-user"}}, nil)
	assert.Equal(t, http.StatusSeeOther, w.Code)
	assert.Equal(t, "/chat/1?done=renamed", w.Header().Get("Location"))
	w = post(h, "/chat/1/delete", "s-user", map[string][]string{"csrf_token": {"c-user"}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	assert.Equal(t, http.StatusForbidden, w.Code)
	w = post(h, "/chat/1/delete", "s-user", map[string][]string{"csrf_token": {"c-user"}}, nil)
	assert.Equal(t, http.StatusSeeOther, w.Code)
	assert.Equal(t, http.StatusNotFound, get(h, "/chat/1", "s-user").Code)
}

func TestRenderMarkdownSanitizes(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		"<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "![x](javascript:alert(1))", "![x](https://evil.example/a.png)",
		"[a](javascript:alert(1))", "<a href=\"javascript:alert(1)\">a</a>", "<div style=\"color:red\" onclick=\"x()\">d</div>",
		"<iframe src=\"https://evil.example\"></iframe>", "[a](data:text/html;base64,PHNjcmlwdD4=)", "<svg onload=alert(1)>",
		"```\n</code><script>alert(1)</script>\n```", "<details open ontoggle=alert(1)>x</details>",
	} {
		out := string(renderMarkdown(src))
		for _, bad := range []string{"<script", "onerror", "onclick", "onload", "ontoggle", "javascript:", "<img", "<iframe", "style=", "data:text", "<svg"} {
			assert.NotContains(t, out, bad, "%q rendered as %q", src, out)
		}
	}
	out := string(renderMarkdown("**b** `c`\n\n```go\nx := 1\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[site](https://example.org)"))
	assert.Contains(t, out, "<strong>b</strong>")
	assert.Contains(t, out, `<code class="language-go">`)
	assert.Contains(t, out, "<table>")
	assert.Contains(t, out, `href="https://example.org"`)
	assert.Contains(t, out, `rel="nofollow noreferrer noopener"`)
	assert.Contains(t, out, `target="_blank"`)
}

func TestChatRequestTrimsToTheContextWindow(t *testing.T) {
	t.Parallel()
	var history []cpclient.ChatMessage
	for i := range 20 {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		history = append(history, cpclient.ChatMessage{Role: role, Content: strings.Repeat("word ", 100), Status: "complete"})
	}
	history = append(history, cpclient.ChatMessage{Role: "assistant", Content: "partial", Status: "failed"})
	in := ChatInput{Model: "m", Content: "now"}

	req, dropped := chatRequest(in, nil, history, 0, true)
	assert.Zero(t, dropped, "no known window: everything goes")
	assert.Len(t, req.Messages, 21, "the failed reply is left out")

	req, dropped = chatRequest(in, nil, history, 1000, true)
	assert.Positive(t, dropped)
	assert.Equal(t, 21, dropped+len(req.Messages))
	assert.Equal(t, canonical.RoleUser, req.Messages[0].Role, "it starts with the user")
	assert.Equal(t, "now", req.Messages[len(req.Messages)-1].Text(), "the new message always goes")
	est := int64(0)
	for i := range req.Messages {
		est += int64(len(req.Messages[i].Text()))/4 + 4
	}
	assert.LessOrEqual(t, est, int64(750+50))

	req, dropped = chatRequest(ChatInput{Model: "m", Content: strings.Repeat("x", 40_000), Think: true}, nil, history, 1000, true)
	assert.Equal(t, 20, dropped)
	assert.Len(t, req.Messages, 1, "a message larger than the window still goes alone (the engine refuses it)")
	require.NotNil(t, req.Think)
}

func TestParseChatInput(t *testing.T) {
	t.Parallel()
	in, err := ParseChatInput([]byte(`{"conversation_id":4,"model":" m ","content":"hi","think":true}`))
	require.NoError(t, err)
	assert.Equal(t, ChatInput{ConversationID: 4, Model: "m", Content: "hi", Think: true}, in)
	for _, bad := range []string{``, `null`, `[]`, `{"model":"m","content":"x"} {}`, `{"model":"m","content":"x","conversation_id":-1}`,
		`{"model":"m","content":"x","conversation_id":"1"}`, `{"model":"m","content":"\xff"}`, `{"model":1,"content":"x"}`} {
		_, err := ParseChatInput([]byte(bad))
		assert.ErrorIs(t, err, errChatInput, bad)
	}
}

// FuzzParseChatInput: any body is refused with errChatInput (or, for an
// image, a canonical error of its own status) or accepted with the
// invariants the handler relies on; nothing panics and no error echoes the
// body.
func FuzzParseChatInput(f *testing.F) {
	for _, s := range []string{`{"model":"m","content":"hi"}`, `{"conversation_id":9,"model":"m","content":"x","think":true}`,
		`{"model":"m","content":"x"}{}`, `{"model":"` + strings.Repeat("a", 300) + `","content":"x"}`, `{"content":"\u0000"}`, `{`,
		`{"model":"m","content":"","images":[{"name":"a.png","url":"` + pngURL(2, 2) + `"}]}`,
		`{"model":"m","content":"x","images":[{"name":"a.gif","url":"data:image/png;base64,R0lGODlhAQABAAAAACw="}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := ParseChatInput(body)
		if err != nil {
			var ce *canonical.Error
			if !errors.As(err, &ce) {
				require.ErrorIs(t, err, errChatInput)
			}
			if len(body) > 20 {
				require.NotContains(t, err.Error(), string(body))
			}
			return
		}
		require.GreaterOrEqual(t, in.ConversationID, int64(0))
		require.NotEmpty(t, in.Model)
		require.LessOrEqual(t, len(in.Model), 255)
		require.True(t, strings.TrimSpace(in.Content) != "" || len(in.Images) > 0)
		require.LessOrEqual(t, len(in.Content), maxChatText)
		require.True(t, utf8.ValidString(in.Content))
		require.LessOrEqual(t, len(in.Images), maxChatImages)
		images := in.images()
		for _, im := range images {
			require.Contains(t, chatImageTypes, im.MediaType)
			require.LessOrEqual(t, len(im.Data), maxChatImageBytes)
		}
		req, _ := chatRequest(in, images, nil, 64, true)
		require.Len(t, req.Messages, 1)
	})
}
