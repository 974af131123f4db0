package mcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mindrouter/mindrouter/dataplane/internal/audit"
	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/requestid"
	"github.com/mindrouter/mindrouter/dataplane/internal/search"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
)

// Endpoint is the path tool calls are recorded under.
const Endpoint = "/mcp"

// Catalog lists the models a credential may use (cpclient.Client); it also
// verifies the credential.
type Catalog interface {
	ListModels(ctx context.Context, credential string) ([]relay.ModelInfo, error)
}

// Chatter runs chat requests (relay.Relay).
type Chatter interface {
	Chat(ctx context.Context, call relay.Call) (*relay.Result, error)
}

// Searcher runs web searches (search.Service).
type Searcher interface {
	Search(ctx context.Context, call relay.Call, req search.Request) (*search.Response, error)
	DefaultResults() int
}

// Recorder takes finished audit records (audit.Shipper).
type Recorder interface {
	Gate() error
	Content() bool
	Submit(r *auditv1.Record, arts []*auditv1.Artifact)
}

// Server is the MCP endpoint.
type Server struct {
	catalog  Catalog
	chat     Chatter
	search   Searcher
	audit    Recorder
	version  string
	maxBody  int64
	log      *slog.Logger
	writeErr func(http.ResponseWriter, *http.Request, error)
}

// New returns the MCP server. writeError writes a refused HTTP request in the
// OpenAI dialect (the OpenAI surface's WriteError).
func New(catalog Catalog, chat Chatter, searcher Searcher, rec Recorder, version string, maxBody int64,
	writeError func(http.ResponseWriter, *http.Request, error), log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{catalog: catalog, chat: chat, search: searcher, audit: rec, version: version, maxBody: maxBody, log: log, writeErr: writeError}
}

// Routes are the patterns Handler serves.
var Routes = []string{"/mcp", "/mcp/sse"}

// Handler serves /mcp (streamable HTTP) and /mcp/sse (SSE).
func (s *Server) Handler() http.Handler {
	streamable := sdk.NewStreamableHTTPHandler(s.serverFor, &sdk.StreamableHTTPOptions{
		Stateless: true, JSONResponse: true, MaxRequestBodyBytes: s.maxBody, Logger: s.log,
		// Clients reach the gateway by many names; the API key is the protection.
		DisableLocalhostProtection: true,
	})
	sse := sdk.NewSSEHandler(s.serverFor, &sdk.SSEOptions{MaxRequestBodyBytes: s.maxBody, DisableLocalhostProtection: true})
	mux := http.NewServeMux()
	mux.Handle("/mcp", streamable)
	mux.Handle("/mcp/sse", sse)
	return s.authenticate(mux)
}

type keyCtx struct{}

// authenticate refuses a request without a key the control plane accepts,
// before the MCP machinery sees it.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := credential(r)
		if key == "" {
			s.writeErr(w, r, &canonical.Error{Kind: canonical.KindAuthentication, Code: "missing_api_key",
				Message: "You didn't provide an API key. Send it as \"Authorization: Bearer <key>\"."})
			return
		}
		if _, err := s.catalog.ListModels(r.Context(), key); err != nil {
			s.writeErr(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyCtx{}, key)))
	})
}

func credential(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

// serverFor builds the MCP server of one HTTP request (streamable, stateless:
// one per POST) or one SSE session (the GET that opened it): its tools act
// with that request's key.
func (s *Server) serverFor(r *http.Request) *sdk.Server {
	key, _ := r.Context().Value(keyCtx{}).(string)
	t := &tools{s: s, key: key, clientIP: clientIP(r), userAgent: r.UserAgent()}
	srv := sdk.NewServer(&sdk.Implementation{Name: "mindrouter", Version: s.version}, nil)
	sdk.AddTool(srv, &sdk.Tool{Name: "web_search", Description: "Search the web through the institution's search provider. Returns title, url, snippet, published date and source of each hit."}, t.webSearch)
	sdk.AddTool(srv, &sdk.Tool{Name: "list_models", Description: "List the institution's models this key may use."}, t.listModels)
	sdk.AddTool(srv, &sdk.Tool{Name: "chat", Description: "Ask one of the institution's models (see list_models) and get its answer."}, t.chatTool)
	return srv
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// tools are one server's tool handlers, bound to a key.
type tools struct {
	s                   *Server
	key                 string
	clientIP, userAgent string
}

// call starts the audit record of one tool call.
func (t *tools) call() (relay.Call, *audit.Entry) {
	id := requestid.New()
	e := audit.NewEntry(time.Now(), t.clientIP, t.userAgent, t.s.audit.Gate)
	e.Start(id, Endpoint, "mcp")
	return relay.Call{RequestID: id, Credential: t.key, Endpoint: Endpoint, Audit: e}, e
}

// finish ships the record with the status an HTTP client would have got.
func (t *tools) finish(e *audit.Entry, err error) {
	status := http.StatusOK
	if err != nil {
		status = openai.EncodeError(canonical.AsError(err)).Status
	}
	t.s.audit.Submit(e.Finish(status, time.Now(), t.s.audit.Content()))
}

// toolError is what the model sees of a failed call (the MCP client gets a
// tool result with isError set).
func toolError(err error) error {
	ce := canonical.AsError(err)
	return fmt.Errorf("%s", ce.Message)
}

// SearchInput is the web_search tool's arguments.
type SearchInput struct {
	Query      string `json:"query" jsonschema:"what to search the web for"`
	MaxResults int    `json:"max_results,omitempty" jsonschema:"how many results, 1 to 50"`
}

func (t *tools) webSearch(ctx context.Context, _ *sdk.CallToolRequest, in SearchInput) (*sdk.CallToolResult, *search.Response, error) {
	req, err := search.NewRequest(in.Query, in.MaxResults, min(t.s.search.DefaultResults(), 5))
	if err != nil {
		return nil, nil, toolError(err)
	}
	call, e := t.call()
	res, err := t.s.search.Search(ctx, call, req)
	t.finish(e, err)
	if err != nil {
		return nil, nil, toolError(err)
	}
	return nil, res, nil
}

// ModelsOutput is the list_models tool's answer.
type ModelsOutput struct {
	Models []Model `json:"models"`
}

// Model is one model of list_models.
type Model struct {
	ID            string   `json:"id"`
	ContextLength int64    `json:"context_length,omitempty"`
	Capabilities  []string `json:"capabilities,omitempty"`
	Loaded        bool     `json:"loaded"`
}

func (t *tools) listModels(ctx context.Context, _ *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, ModelsOutput, error) {
	ms, err := t.s.catalog.ListModels(ctx, t.key)
	if err != nil {
		return nil, ModelsOutput{}, toolError(err)
	}
	out := ModelsOutput{Models: make([]Model, 0, len(ms))}
	for _, m := range ms {
		mm := Model{ID: m.Name, ContextLength: m.ContextLength, Loaded: m.Loaded}
		for _, c := range m.Capabilities {
			mm.Capabilities = append(mm.Capabilities, c.String())
		}
		out.Models = append(out.Models, mm)
	}
	slices.SortFunc(out.Models, func(a, b Model) int { return strings.Compare(a.ID, b.ID) })
	return nil, out, nil
}

// ChatInput is the chat tool's arguments.
type ChatInput struct {
	Model     string `json:"model" jsonschema:"the model to ask (an id from list_models)"`
	Prompt    string `json:"prompt" jsonschema:"the question or instruction"`
	System    string `json:"system,omitempty" jsonschema:"an optional system prompt"`
	MaxTokens int64  `json:"max_tokens,omitempty" jsonschema:"an optional limit on the answer's tokens"`
}

// ChatOutput is the chat tool's answer.
type ChatOutput struct {
	Model            string `json:"model"`
	Answer           string `json:"answer"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
}

func (t *tools) chatTool(ctx context.Context, _ *sdk.CallToolRequest, in ChatInput) (*sdk.CallToolResult, ChatOutput, error) {
	if in.Model == "" || strings.TrimSpace(in.Prompt) == "" {
		return nil, ChatOutput{}, fmt.Errorf("model and prompt are required")
	}
	if in.MaxTokens < 0 {
		return nil, ChatOutput{}, fmt.Errorf("max_tokens must not be negative")
	}
	req := &canonical.Request{Model: in.Model}
	if in.System != "" {
		req.Messages = append(req.Messages, canonical.Message{Role: canonical.RoleSystem, Content: []canonical.Part{canonical.TextPart(in.System)}})
	}
	req.Messages = append(req.Messages, canonical.Message{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart(in.Prompt)}})
	req.Sampling.MaxTokens = in.MaxTokens
	call, e := t.call()
	call.Request = req
	res, err := t.s.chat.Chat(ctx, call)
	t.finish(e, err)
	if err != nil {
		return nil, ChatOutput{}, toolError(err)
	}
	out := ChatOutput{Model: in.Model, PromptTokens: res.Usage.Prompt, CompletionTokens: res.Usage.Completion}
	if res.Response != nil && len(res.Response.Choices) > 0 {
		out.Answer = res.Response.Choices[0].Message.Text()
	}
	return nil, out, nil
}
