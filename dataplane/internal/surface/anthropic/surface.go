package anthropic

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/requestid"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/tokens"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic"
)

// Relay runs requests (relay.Relay).
type Relay interface {
	Chat(ctx context.Context, call relay.Call) (*relay.Result, error)
	ChatStream(ctx context.Context, call relay.Call, sink relay.Sink) (*relay.Result, error)
}

// Catalog lists the models a credential may use (cpclient.Client). It is also
// how count_tokens and the model list check the key: an unknown key is refused.
type Catalog interface {
	ListModels(ctx context.Context, credential string) ([]relay.ModelInfo, error)
}

// Header names this surface writes.
const (
	// QueuePositionHeader is set when the request waited in the model's queue.
	QueuePositionHeader = surface.QueuePositionHeader
	// SimulatedHeader is "true" when the answer came from the engine simulator.
	SimulatedHeader = surface.SimulatedHeader
	// RequestIDHeader repeats X-Request-ID under the name Anthropic's SDKs read
	// into their errors.
	RequestIDHeader = "Request-Id"
)

// Config tunes the surface.
type Config struct {
	// WriteTimeout bounds each write of a stream to a client that stopped
	// reading; default 60s.
	WriteTimeout time.Duration
	// PingInterval is how long a stream may stay silent before a ping event is
	// sent; default 15s. A stream whose lease was granted starts (message_start)
	// when its first token comes or after this long, whichever is first.
	PingInterval time.Duration
}

// Surface serves the Anthropic dialect.
type Surface struct {
	relay   Relay
	catalog Catalog
	cfg     Config
	log     *slog.Logger
}

// New returns the surface.
func New(r Relay, c Catalog, cfg Config, log *slog.Logger) *Surface {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 60 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	return &Surface{relay: r, catalog: c, cfg: cfg, log: log}
}

// Register adds the surface's routes to mux.
func (s *Surface) Register(mux *http.ServeMux) {
	for _, prefix := range []string{"/anthropic/v1", "/v1"} {
		mux.HandleFunc("POST "+prefix+"/messages", s.messages)
		mux.HandleFunc("POST "+prefix+"/messages/count_tokens", s.countTokens)
	}
	mux.HandleFunc("GET /anthropic/v1/models", s.models)
	mux.HandleFunc("GET /anthropic/v1/models/{model...}", s.model)
}

// Owns reports whether errors on path are written in this dialect: everything
// under /anthropic/ and /v1/messages. It must be asked before a surface that
// owns all of /v1/.
func (s *Surface) Owns(path string) bool {
	return strings.HasPrefix(path, "/anthropic/") || path == "/v1/messages" || strings.HasPrefix(path, "/v1/messages/")
}

// Credential returns the API key from "x-api-key" or, failing that,
// "Authorization: Bearer …".
func Credential(r *http.Request) string {
	if key := strings.TrimSpace(r.Header.Get("X-Api-Key")); key != "" {
		return key
	}
	key, _ := surface.Bearer(r)
	return key
}

// read authenticates the request's shape (a key is present) and reads its body.
func (s *Surface) read(w http.ResponseWriter, r *http.Request) (credential string, body []byte, ok bool) {
	credential, body, err := surface.Read(r, Credential, errMissingKey)
	if err != nil {
		s.WriteError(w, r, err)
		return "", nil, false
	}
	if ce := canonical.CheckJSONBody(r, body); ce != nil {
		s.WriteError(w, r, ce)
		return "", nil, false
	}
	return credential, body, true
}

func (s *Surface) messages(w http.ResponseWriter, r *http.Request) {
	credential, body, ok := s.read(w, r)
	if !ok {
		return
	}
	req, err := anthropic.DecodeMessagesRequest(body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	call := surface.Call(r, credential, r.URL.Path)
	call.Request = req
	id := call.RequestID
	meta := anthropic.Meta{ID: "msg_" + id, Model: req.Model}
	if req.Stream {
		s.stream(w, r, call, meta)
		return
	}
	res, err := s.relay.Chat(r.Context(), call)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	b := anthropic.EncodeResponse(res.Response, meta)
	h := w.Header()
	surface.AdmissionHeaders(h, res.Admission)
	s.writeJSON(w, r, b)
}

// countTokens estimates the prompt's tokens as the relay does for admission
// (tokens.Prompt: characters/4 plus per-message, per-image and per-request
// overheads); no engine tokenizer is asked. The key is checked by listing its
// models, and an unknown model is 404, as Anthropic answers.
func (s *Surface) countTokens(w http.ResponseWriter, r *http.Request) {
	credential, body, ok := s.read(w, r)
	if !ok {
		return
	}
	req, err := anthropic.DecodeCountTokensRequest(body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	catalog, err := s.catalog.ListModels(r.Context(), credential)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	if find(catalog, req.Model) == nil {
		s.WriteError(w, r, modelNotFound(req.Model))
		return
	}
	b := strconv.AppendInt([]byte(`{"input_tokens":`), tokens.Prompt(req), 10)
	s.writeJSON(w, r, append(b, '}'))
}

func (s *Surface) writeJSON(w http.ResponseWriter, r *http.Request, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	setRequestID(h, r)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func setRequestID(h http.Header, r *http.Request) {
	if id := requestid.FromContext(r.Context()); id != "" {
		h.Set(RequestIDHeader, id)
	}
}

func modelNotFound(model string) *canonical.Error {
	return &canonical.Error{Kind: canonical.KindNotFound, Code: "model_not_found", Param: "model", Message: "model: " + canonical.Echo(model)}
}

// find returns the catalog entry for name; "name" and "name:latest" are one
// model, as the control plane resolves them.
func find(catalog []relay.ModelInfo, name string) *relay.ModelInfo {
	want := strings.TrimSuffix(name, ":latest")
	for i := range catalog {
		if strings.TrimSuffix(catalog[i].Name, ":latest") == want {
			return &catalog[i]
		}
	}
	return nil
}
