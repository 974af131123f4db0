package app

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/dataplane/internal/config"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/mcp"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/search"
	openaisurface "github.com/mindrouter/mindrouter/dataplane/internal/surface/openai"
)

// toolRoutes serves POST /v1/search and the MCP server (/mcp, /mcp/sse). It
// is a server.Surface that owns no path: its errors are written by the OpenAI
// surface, like every other /v1 error.
type toolRoutes struct {
	openai *openaisurface.Surface
	search *search.Service
	mcp    *mcp.Server
}

// newToolRoutes wires web search (provider from cfg.Search) and MCP.
func (a *App) newToolRoutes(oai *openaisurface.Surface, rl *relay.Relay, reg prometheus.Registerer) (*toolRoutes, error) {
	provider, err := searchProvider(a.cfg.Search)
	if err != nil {
		return nil, err
	}
	svc, err := search.New(a.cp, provider, search.Config{Charge: a.cfg.Search.Charge, DefaultResults: a.cfg.Search.MaxResults,
		Timeout: a.cfg.Search.Timeout}, a.log.With(slog.String("component", "search")), reg)
	if err != nil {
		return nil, err
	}
	m := mcp.New(a.cp, rl, svc, a.audit, Version, a.cfg.MaxBodyBytes, oai.WriteError, a.log.With(slog.String("component", "mcp")))
	return &toolRoutes{openai: oai, search: svc, mcp: m}, nil
}

// searchProvider builds the configured provider; nil when none is.
func searchProvider(c config.Search) (search.Provider, error) {
	if c.Provider == "" {
		return nil, nil //nolint:nilnil // no provider: searching answers 503
	}
	key, err := c.Key()
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: engine.NewTransport(engine.TransportConfig{})}
	switch c.Provider {
	case "brave":
		u := c.URL
		if u == "" {
			u = search.DefaultBraveURL
		}
		return &search.Brave{URL: u, APIKey: key, Client: client}, nil
	case "searxng":
		return &search.SearXNG{URL: c.URL, APIKey: key, Client: client}, nil
	}
	return nil, fmt.Errorf("unknown search provider %q", c.Provider)
}

// Register adds the routes.
func (t *toolRoutes) Register(mux *http.ServeMux) {
	mux.Handle("POST "+search.Endpoint, t.search.Handler(openaisurface.Credential, t.openai.WriteError))
	h := t.mcp.Handler()
	for _, p := range mcp.Routes {
		mux.Handle(p, h)
	}
}

// Owns claims no path: the OpenAI surface writes /v1 errors, and the server's
// default (the OpenAI shape) the rest.
func (t *toolRoutes) Owns(string) bool { return false }

// WriteError writes err in the OpenAI dialect.
func (t *toolRoutes) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	t.openai.WriteError(w, r, err)
}
