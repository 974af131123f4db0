package ollama

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
)

// Relay runs chat requests (relay.Relay).
type Relay interface {
	Chat(ctx context.Context, call relay.Call) (*relay.Result, error)
	ChatStream(ctx context.Context, call relay.Call, sink relay.Sink) (*relay.Result, error)
}

// Catalog lists the models a credential may use (cpclient.Client).
type Catalog interface {
	ListModels(ctx context.Context, credential string) ([]relay.ModelInfo, error)
}

// Header names this surface writes (the same as the OpenAI surface's).
const (
	// QueuePositionHeader is set when the request waited in the model's queue.
	QueuePositionHeader = surface.QueuePositionHeader
	// SimulatedHeader is "true" when the answer came from the engine simulator.
	SimulatedHeader = surface.SimulatedHeader
)

// DefaultVersion is the Ollama version GET /api/version reports: the release
// whose API this surface implements. Clients compare it as a semantic
// version to decide which features to use.
const DefaultVersion = "0.17.4"

// Config tunes the surface.
type Config struct {
	// WriteTimeout bounds each write of a stream to a client that stopped
	// reading; default 60s.
	WriteTimeout time.Duration
	// Version is what GET /api/version reports; default DefaultVersion.
	Version string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Surface serves the Ollama dialect.
type Surface struct {
	relay    Relay
	catalog  Catalog
	embedder Embedder
	cfg      Config
	log      *slog.Logger
}

// New returns the surface. embedder may be nil, in which case /api/embed and
// /api/embeddings answer 501.
func New(r Relay, c Catalog, embedder Embedder, cfg Config, log *slog.Logger) *Surface {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 60 * time.Second
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Surface{relay: r, catalog: c, embedder: embedder, cfg: cfg, log: log}
}

// Register adds the surface's routes to mux.
func (s *Surface) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/chat", s.chat)
	mux.HandleFunc("POST /api/generate", s.generate)
	mux.HandleFunc("POST /api/embed", s.embed)
	mux.HandleFunc("POST /api/embeddings", s.embeddings)
	mux.HandleFunc("POST /api/show", s.show)
	mux.HandleFunc("GET /api/tags", s.tags)
	mux.HandleFunc("GET /api/ps", s.ps)
	mux.HandleFunc("GET /api/version", s.version)
	mux.HandleFunc("GET /{$}", s.root)
}

// Owns reports whether errors on path are written in this dialect: every
// /api/ path but the REST gateway's (admin and account).
func (s *Surface) Owns(path string) bool {
	return strings.HasPrefix(path, "/api/") && !strings.HasPrefix(path, "/api/admin/") && !strings.HasPrefix(path, "/api/account/")
}

// Credential returns the API key from "Authorization: Bearer …" or "X-API-Key".
func Credential(r *http.Request) string {
	if key, ok := surface.Bearer(r); ok {
		return key
	}
	return strings.TrimSpace(r.Header.Get("X-Api-Key")) // canonical spelling: Get does not copy it
}

// readRequest returns the caller's key and the request body, or writes the
// refusal and returns ok false.
func (s *Surface) readRequest(w http.ResponseWriter, r *http.Request) (credential string, body []byte, ok bool) {
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

// writeJSON writes a 200 JSON answer as Ollama does.
func writeJSON(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// jsonContentType is the Content-Type of Ollama's JSON answers.
const jsonContentType = "application/json; charset=utf-8"
