package ollama_test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/vllm"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/server"
	surface "github.com/mindrouter/mindrouter/dataplane/internal/surface/ollama"
)

// gateway is a data plane in the test process: fake control plane over gRPC,
// real relay and engines, the Ollama surface behind the real server.
type gateway struct {
	fake *cpclienttest.Server
	url  string
}

// stepClock is a clock that moves one millisecond each time it is read, so
// that every duration the surface measures is positive and repeatable.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

func newGateway(t *testing.T, backends ...cpclienttest.Backend) *gateway {
	t.Helper()
	fake := cpclienttest.Start(t)
	fake.SetBackends(backends...)
	conn, err := cpclient.Dial(fake.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	log := slog.New(slog.DiscardHandler)
	cp, err := cpclient.New(conn, cpclient.Config{ReplicaID: "dp"}, log, nil)
	require.NoError(t, err)
	client := engine.NewClient(engine.NewTransport(engine.TransportConfig{}))
	r, err := relay.New(cp, map[relay.Engine]engine.Engine{
		relay.EngineOllama: ollama.New(ollama.Config{Client: client}),
		relay.EngineVLLM:   vllm.New(vllm.Config{Client: client}),
	}, relay.Config{}, log, nil)
	require.NoError(t, err)
	clock := &stepClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv, err := server.New(server.Options{
		Surfaces: []server.Surface{surface.New(r, cp, r, surface.Config{Now: clock.Now}, log)},
		Log:      log,
	})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &gateway{fake: fake, url: hs.URL}
}

func sim(t *testing.T, id int64, eng enginesim.Engine, script func(enginesim.Request) *enginesim.Reply) cpclienttest.Backend {
	t.Helper()
	s := enginesim.New(enginesim.Config{Engine: eng, Script: script, CompletionTokens: 5,
		Models: []enginesim.ModelSpec{{Name: "sim-llama", EmbeddingDim: 8,
			Capabilities: []string{"completion", "tools", "thinking", "embedding"}}}})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	e := relay.EngineOllama
	if eng == enginesim.EngineVLLM {
		e = relay.EngineVLLM
	}
	return cpclienttest.Backend{ID: id, Name: string(eng), URL: hs.URL, Engine: e, Model: "sim-llama", Simulated: true}
}

var engines = []enginesim.Engine{enginesim.EngineOllama, enginesim.EngineVLLM}

func (g *gateway) do(t *testing.T, method, path, body string, header ...string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.url+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer mr2_key")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func (g *gateway) post(t *testing.T, path, body string, header ...string) *http.Response {
	t.Helper()
	return g.do(t, http.MethodPost, path, body, header...)
}

// readJSON decodes a whole JSON answer.
func readJSON(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return m
}

// readLines decodes an NDJSON stream.
func readLines(t *testing.T, resp *http.Response) []map[string]any {
	t.Helper()
	require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	var out []map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		out = append(out, m)
	}
	require.NoError(t, sc.Err())
	return out
}

// errorMessage decodes Ollama's {"error": "…"} body.
func errorMessage(t *testing.T, resp *http.Response) string {
	t.Helper()
	m := readJSON(t, resp)
	require.Len(t, m, 1, "Ollama's error body has only the error: %v", m)
	msg, ok := m["error"].(string)
	require.True(t, ok)
	require.NotEmpty(t, msg)
	return msg
}

func TestOwns(t *testing.T) {
	t.Parallel()
	s := surface.New(nil, nil, nil, surface.Config{}, slog.New(slog.DiscardHandler))
	require.True(t, s.Owns("/api/chat"))
	require.True(t, s.Owns("/api/nope"))
	require.False(t, s.Owns("/api/admin/backends"), "the admin gateway writes its own errors")
	require.False(t, s.Owns("/v1/chat/completions"))
}

func TestCredential(t *testing.T) {
	t.Parallel()
	tests := []struct{ auth, apiKey, want string }{
		{"Bearer abc", "", "abc"}, {"bearer  abc ", "", "abc"}, {"Basic abc", "", ""}, {"", "xyz", "xyz"}, {"Bearer abc", "xyz", "abc"},
	}
	for _, tc := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", tc.auth)
		r.Header.Set("X-API-Key", tc.apiKey)
		require.Equal(t, tc.want, surface.Credential(r), "%+v", tc)
	}
}
