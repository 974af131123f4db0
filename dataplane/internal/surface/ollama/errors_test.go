package ollama_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/server"
	surface "github.com/mindrouter/mindrouter/dataplane/internal/surface/ollama"
)

// TestRefusals: every control-plane refusal in Ollama's envelope with its
// status, and Retry-After on 429 and 503, streamed or not (nothing was sent
// yet, so a stream's refusal is an ordinary error answer).
func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		status     int
		message    string
		retryAfter string
	}{
		{"invalid key", cpclienttest.Refusal(codes.Unauthenticated, relay.ReasonInvalidCredential, "Invalid API key", 0),
			401, "Invalid API key", ""},
		{"forbidden", cpclienttest.Refusal(codes.PermissionDenied, relay.ReasonPermissionDenied, "no", 0),
			403, "no", ""},
		{"unknown model", cpclienttest.Refusal(codes.NotFound, relay.ReasonModelNotFound, "The model `x` does not exist", 0),
			404, "model 'x' not found", ""},
		{"context", cpclienttest.Refusal(codes.InvalidArgument, relay.ReasonContextExceeded, "too long", 0),
			400, "too long", ""},
		{"rpm", cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonRateLimited, "Rate limit exceeded", 1500*time.Millisecond),
			429, "Rate limit exceeded", "2"},
		{"quota", cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonQuotaExhausted, "Token quota exceeded", time.Hour),
			429, "Token quota exceeded", "3600"},
		{"queue full", cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonQueueFull, "queue full", 0),
			503, "queue full", "1"},
		{"queue timeout", cpclienttest.Refusal(codes.Unavailable, relay.ReasonQueueTimeout, "waited", 10*time.Second),
			503, "waited", "10"},
		{"database", cpclienttest.Refusal(codes.Unavailable, relay.ReasonDatabaseUnavailable, "the gateway's database is unavailable; retry shortly", 5*time.Second),
			503, "the gateway's database is unavailable; retry shortly", "5"},
	}
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, nil))
	for _, tc := range tests {
		for _, path := range []string{"/api/chat", "/api/generate"} {
			for _, stream := range []string{"false", "true"} {
				t.Run(tc.name+path+" stream="+stream, func(t *testing.T) {
					g.fake.FailAdmits(tc.err)
					resp := g.post(t, path, `{"model":"x","stream":`+stream+`,"prompt":"x","messages":[{"role":"user","content":"x"}]}`)
					require.Equal(t, tc.status, resp.StatusCode)
					require.Equal(t, tc.retryAfter, resp.Header.Get("Retry-After"))
					require.Equal(t, tc.message, errorMessage(t, resp))
				})
			}
		}
	}
}

func TestMidStreamFailureEndsWithErrorLine(t *testing.T) {
	t.Parallel()
	for _, eng := range engines {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, sim(t, 1, eng, func(enginesim.Request) *enginesim.Reply {
				return &enginesim.Reply{Content: "a b c d e f", ErrorMessage: enginesim.DropConnection}
			}), sim(t, 2, eng, nil))
			resp := g.post(t, "/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"x"}]}`)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			lines := readLines(t, resp)
			require.Greater(t, len(lines), 1)
			last := lines[len(lines)-1]
			require.Len(t, last, 1, "the last line is only the error: %v", last)
			require.NotEmpty(t, last["error"])
			for _, l := range lines[:len(lines)-1] {
				require.Equal(t, false, l["done"], "a failed stream never claims to be done")
			}
			require.Len(t, g.fake.Admits(), 1, "no retry after the first byte")
		})
	}
}

func TestFailuresWithoutTheClientsFault(t *testing.T) {
	t.Parallel()
	t.Run("backend refusal passes through", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, sim(t, 1, enginesim.EngineOllama, func(enginesim.Request) *enginesim.Reply {
			return &enginesim.Reply{Status: 400, ErrorMessage: `"sim-llama" does not support thinking`}
		}))
		resp := g.post(t, "/api/chat", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}`)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Equal(t, `"sim-llama" does not support thinking`, errorMessage(t, resp))
	})
	t.Run("all backends failing is 502", func(t *testing.T) {
		t.Parallel()
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
		t.Cleanup(down.Close)
		g := newGateway(t, cpclienttest.Backend{ID: 1, URL: down.URL, Engine: relay.EngineOllama})
		resp := g.post(t, "/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"x"}]}`)
		require.Equal(t, http.StatusBadGateway, resp.StatusCode)
		errorMessage(t, resp)
	})
	t.Run("control plane down is 503 with Retry-After", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t)
		g.fake.Stop()
		resp := g.post(t, "/api/generate", `{"model":"llama3.2","prompt":"x"}`)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		require.Equal(t, "2", resp.Header.Get("Retry-After"))
		errorMessage(t, resp)
	})
	t.Run("invalid structured output is 422", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, func(enginesim.Request) *enginesim.Reply {
			return &enginesim.Reply{Content: `{"name":42}`}
		}))
		resp := g.post(t, "/api/chat", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}],`+
			`"format":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}`)
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
		errorMessage(t, resp)
	})
}

func TestBadInputNeverReachesTheControlPlane(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineVLLM, nil))
	hello := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name, path, body string
		header           []string
		status           int
		message          string
	}{
		{"no key", "/api/chat", hello, []string{"Authorization", ""}, 401, ""},
		{"empty bearer", "/api/generate", `{"model":"m","prompt":"x"}`, []string{"Authorization", "Bearer "}, 401, ""},
		{"no key for tags", "/api/tags", "", []string{"Authorization", ""}, 401, ""},
		{"bad JSON", "/api/chat", `{"model":`, nil, 400, ""},
		{"no model", "/api/chat", `{"messages":[{"role":"user","content":"x"}]}`, nil, 400, "model is required"},
		{"bad role", "/api/chat", `{"model":"m","messages":[{"role":"x","content":"y"}]}`, nil, 400, ""},
		{"raw with system", "/api/generate", `{"model":"m","prompt":"x","raw":true,"system":"s"}`, nil, 400,
			"raw mode does not support template, system, or context"},
		{"bad embed input", "/api/embed", `{"model":"m","input":3}`, nil, 400, "invalid input type"},
		{"unknown route", "/api/pull", `{"model":"m"}`, nil, 404, ""},
		{"wrong method", "/api/chat", "", nil, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodPost
			if tc.body == "" {
				method = http.MethodGet
			}
			resp := g.do(t, method, tc.path, tc.body, tc.header...)
			require.Equal(t, tc.status, resp.StatusCode)
			msg := errorMessage(t, resp)
			if tc.message != "" {
				require.Equal(t, tc.message, msg)
			}
		})
	}
	require.Empty(t, g.fake.Admits())
	require.Zero(t, g.fake.ListModelsCalls())

	resp := g.post(t, "/api/chat", `{"model":"m","stream":false,"messages":[{"role":"user","content":"hi"}]}`, "Authorization", "", "X-API-Key", "mr2_other")
	require.Equal(t, http.StatusOK, resp.StatusCode, "X-API-Key is accepted too")
	require.Equal(t, "mr2_other", g.fake.Admits()[0].Credential)
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	srv, err := server.New(server.Options{MaxBodyBytes: 64,
		Surfaces: []server.Surface{surface.New(nil, nil, nil, surface.Config{}, slog.New(slog.DiscardHandler))},
		Log:      slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	resp := (&gateway{url: hs.URL}).post(t, "/api/chat", `{"model":"m","messages":[{"role":"user","content":"`+strings.Repeat("x", 100)+`"}]}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Equal(t, "request body is larger than 64 bytes", errorMessage(t, resp))
}
