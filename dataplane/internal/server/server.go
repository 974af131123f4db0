package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/tracing"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// Surface is a client dialect's set of routes.
type Surface interface {
	// Register adds the surface's routes.
	Register(mux *http.ServeMux)
	// Owns reports whether errors on path are written in this surface's dialect.
	Owns(path string) bool
	// WriteError writes err in the surface's dialect.
	WriteError(w http.ResponseWriter, r *http.Request, err error)
}

// Options configure the server.
type Options struct {
	// MaxBodyBytes bounds request bodies; default 50 MiB.
	MaxBodyBytes int64
	// BodyReadTimeout bounds the wait for a request body, and BodyMinRate (bytes
	// per second) extends it by a second for every BodyMinRate bytes received;
	// defaults 30s and 64 KiB/s.
	BodyReadTimeout time.Duration
	BodyMinRate     int64
	// Surfaces are the client dialects.
	Surfaces []Surface
	// Admin, when set, serves /api/admin/ and /api/account/ (the REST gateway).
	Admin http.Handler
	// SignIn, when set, serves /login and /logout.
	SignIn http.Handler
	// Web, when set, serves the pages at WebRoutes, and GET / to browsers
	// (requests that accept text/html); other clients keep the Ollama
	// surface's "Ollama is running" at /.
	Web http.Handler
	// WebRoutes are the patterns Web serves besides /.
	WebRoutes []string
	// Ready reports whether the control plane is reachable (for /readyz).
	Ready func() bool
	// Registry receives the server's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Spans records a server span per request (when spans are exported);
	// otherwise the request's trace context is only passed on.
	Spans bool
	Log   *slog.Logger
}

// Server is the data plane's HTTP handler.
type Server struct {
	opts    Options
	handler http.Handler
	metrics *metrics
}

// New builds the handler.
func New(opts Options) (*Server, error) {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 50 << 20
	}
	if opts.BodyReadTimeout <= 0 {
		opts.BodyReadTimeout = 30 * time.Second
	}
	if opts.BodyMinRate <= 0 {
		opts.BodyMinRate = 64 << 10
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Ready == nil {
		opts.Ready = func() bool { return true }
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, metrics: m}
	mux := http.NewServeMux()
	for _, sf := range opts.Surfaces {
		sf.Register(mux)
	}
	if opts.Admin != nil {
		mux.Handle("/api/admin/", opts.Admin)
		mux.Handle("/api/account/", opts.Admin)
	}
	if opts.SignIn != nil {
		mux.Handle("/login", opts.SignIn)
		mux.Handle("/logout", opts.SignIn)
		mux.Handle("/login/oidc/", opts.SignIn)
	}
	for _, p := range opts.WebRoutes {
		if p != "/{$}" {
			mux.Handle(p, opts.Web)
		}
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry}))
	mux.HandleFunc("/", s.notFound)
	var h http.Handler = mux
	if opts.Web != nil {
		h = browserRoot(h, opts.Web)
	}
	h = s.guardBody(h)
	h = s.recoverPanics(h)
	h = s.access(h)
	h = requestID(h)
	h = tracing.Handler(h, opts.Spans)
	s.handler = h
	return s, nil
}

// browserRoot sends a browser's GET / to the status page and every other
// request to next.
func browserRoot(next, web http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
			strings.Contains(r.Header.Get("Accept"), "text/html") {
			web.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// writeError writes err in the dialect of the surface owning r's path, or in
// the OpenAI shape when none does.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	for _, sf := range s.opts.Surfaces {
		if sf.Owns(r.URL.Path) {
			sf.WriteError(w, r, err)
			return
		}
	}
	er := openai.EncodeError(canonical.AsError(err))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(er.Status)
	_, _ = w.Write(er.Body)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, &canonical.Error{Kind: canonical.KindNotFound, Code: "not_found",
		Message: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "alive", "timestamp": s.opts.Now().UTC().Format(time.RFC3339)})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	ready := s.opts.Ready()
	status, code := "ready", http.StatusOK
	if !ready {
		status, code = "not_ready", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{
		"status": status, "checks": map[string]bool{"control_plane": ready},
		"timestamp": s.opts.Now().UTC().Format(time.RFC3339),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
