package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/server"
	surface "github.com/mindrouter/mindrouter/dataplane/internal/surface/openai"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// stubRelay answers every chat with one word, or panics when asked to.
type stubRelay struct{}

func (stubRelay) Chat(_ context.Context, call relay.Call) (*relay.Result, error) {
	if call.Request.Model == "panic" {
		panic("bug")
	}
	return &relay.Result{Response: &canonical.Response{Choices: []canonical.Choice{{
		Message: canonical.Message{Role: canonical.RoleAssistant, Content: []canonical.Part{canonical.TextPart("ok")}}, FinishReason: canonical.FinishStop,
	}}, Usage: &canonical.Usage{Prompt: 1, Completion: 1}}}, nil
}

// Embed, Rerank and Score are not used by these tests.
func (stubRelay) Embed(context.Context, relay.Call, *canonical.EmbeddingRequest) (*relay.Result, error) {
	return nil, errors.New("not used")
}

func (stubRelay) Rerank(context.Context, relay.Call, *canonical.RerankRequest) (*relay.Result, error) {
	return nil, errors.New("not used")
}

func (stubRelay) Score(context.Context, relay.Call, *canonical.ScoreRequest) (*relay.Result, error) {
	return nil, errors.New("not used")
}

func (stubRelay) ChatStream(_ context.Context, call relay.Call, sink relay.Sink) (*relay.Result, error) {
	if err := sink.Chunk(canonical.Chunk{Content: "ok"}); err != nil {
		return nil, err
	}
	if call.Request.Model == "panic" {
		panic("bug after the first byte")
	}
	return &relay.Result{}, nil
}

type noCatalog struct{}

func (noCatalog) ListModels(context.Context, string) ([]relay.ModelInfo, error) {
	return nil, nil
}

func newServer(t *testing.T, opts server.Options) (*httptest.Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registry = reg
	opts.Log = slog.New(slog.DiscardHandler)
	opts.Surfaces = []server.Surface{surface.New(stubRelay{}, noCatalog{}, surface.Config{}, opts.Log)}
	srv, err := server.New(opts)
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs, reg
}

func post(t *testing.T, url, body string, chunked bool) *http.Response {
	t.Helper()
	var r io.Reader = strings.NewReader(body)
	if chunked {
		r = io.MultiReader(strings.NewReader(body)) // unknown length: sent chunked
	}
	req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func errorBody(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	var e struct {
		Error map[string]any `json:"error"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	require.NotEmpty(t, e.Error["message"])
	return e.Error
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	hs, _ := newServer(t, server.Options{MaxBodyBytes: 100})
	big := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 200) + `"}]}`
	for _, chunked := range []bool{false, true} {
		resp := post(t, hs.URL, big, chunked)
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "chunked=%v", chunked)
		e := errorBody(t, resp)
		require.Equal(t, "request_too_large", e["code"])
		require.Contains(t, e["message"], "100 bytes")
	}
	small := post(t, hs.URL, `{"model":"m","messages":[{"role":"user","content":"x"}]}`, false)
	require.Equal(t, http.StatusOK, small.StatusCode)
}

func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	hs, reg := newServer(t, server.Options{})
	resp := post(t, hs.URL, `{"model":"panic","messages":[{"role":"user","content":"x"}]}`, false)
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	e := errorBody(t, resp)
	require.Equal(t, "Internal server error", e["message"])
	require.Equal(t, "server_error", e["type"])

	// After the first byte a panic can only cut the stream.
	resp = post(t, hs.URL, `{"model":"panic","stream":true,"messages":[{"role":"user","content":"x"}]}`, false)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err := io.ReadAll(resp.Body)
	require.Error(t, err, "the client sees a broken stream, not a clean end")

	// The server keeps serving and counted both.
	require.Equal(t, http.StatusOK, post(t, hs.URL, `{"model":"m","messages":[{"role":"user","content":"x"}]}`, false).StatusCode)
	require.Equal(t, 2.0, counter(t, reg, "mindrouter_dp_http_panics_total", nil))
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	hs, _ := newServer(t, server.Options{})
	tests := []struct{ name, sent string }{
		{"kept", "abc-123"},
		{"minted when absent", ""},
		{"minted when unsafe", "bad id\r\nx"},
		{"minted when too long", strings.Repeat("a", 200)},
	}
	for _, tc := range tests {
		req, err := http.NewRequest(http.MethodGet, hs.URL+"/healthz", nil)
		require.NoError(t, err)
		if tc.sent != "" && !strings.ContainsAny(tc.sent, "\r\n") {
			req.Header.Set("X-Request-ID", tc.sent)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		got := resp.Header.Get("X-Request-ID")
		if tc.name == "kept" {
			require.Equal(t, tc.sent, got)
		} else {
			require.Len(t, got, 26, tc.name)
		}
	}
}

func TestHealthReadinessMetrics(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	ready := false
	hs, _ := newServer(t, server.Options{Ready: func() bool { mu.Lock(); defer mu.Unlock(); return ready }})
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(hs.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	resp, body := get("/healthz")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `"status":"alive"`)
	resp, body = get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Contains(t, body, `"control_plane":false`)
	mu.Lock()
	ready = true
	mu.Unlock()
	resp, _ = get("/readyz")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, body = get("/nope")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, body, `"error"`)

	_, body = get("/metrics")
	require.Contains(t, body, `mindrouter_dp_http_requests_total{route="GET /readyz",status="503"} 1`)
	require.Contains(t, body, `mindrouter_dp_http_requests_total{route="unmatched",status="404"} 1`)
}

// fakeAdmin records the metadata admin calls arrive with.
type fakeAdmin struct {
	adminv1.UnimplementedRegistryServiceServer
	mu sync.Mutex
	md metadata.MD
}

func (f *fakeAdmin) ListBackends(ctx context.Context, _ *adminv1.ListBackendsRequest) (*adminv1.ListBackendsResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.md = md
	f.mu.Unlock()
	return &adminv1.ListBackendsResponse{Backends: []*adminv1.Backend{{Id: 7, Name: "gpu1"}}}, nil
}

func TestAdminGateway(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	admin := &fakeAdmin{}
	adminv1.RegisterRegistryServiceServer(gs, admin)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	conn, err := cpclient.Dial(ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	gw, err := server.AdminGateway(context.Background(), conn)
	require.NoError(t, err)
	hs, _ := newServer(t, server.Options{Admin: gw})

	req, err := http.NewRequest(http.MethodGet, hs.URL+"/api/admin/backends", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer mr2_admin")
	req.Header.Set("X-API-Key", "mr2_admin2")
	req.Header.Set("Grpc-Metadata-X-Mindrouter-Cluster-Token", "forged")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var backends []map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&backends))
	require.Equal(t, "gpu1", backends[0]["name"])
	require.Contains(t, backends[0], "gpu_memory_gb", "proto names, unpopulated fields emitted")

	admin.mu.Lock()
	md := admin.md
	admin.mu.Unlock()
	require.Equal(t, []string{"Bearer mr2_admin"}, md.Get("authorization"))
	require.Equal(t, []string{"mr2_admin2"}, md.Get("x-api-key"))
	require.Empty(t, md.Get(cpclient.TokenMetadataKey), "clients cannot pose as a replica")
	require.NotEmpty(t, md.Get("x-request-id"))

	// With the control plane gone, the gateway says so without addresses.
	gs.Stop()
	resp2, err := http.Get(hs.URL + "/api/admin/backends")
	require.NoError(t, err)
	defer resp2.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp2.StatusCode)
	b, err := io.ReadAll(resp2.Body)
	require.NoError(t, err)
	require.NotContains(t, string(b), "127.0.0.1")
	require.Equal(t, "2", resp2.Header.Get("Retry-After"))
}

// deadlineSurface reports whether its ResponseWriter still reaches the
// connection through the middleware (flushes and write deadlines).
type deadlineSurface struct{}

func (deadlineSurface) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/deadline", func(w http.ResponseWriter, _ *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			http.Error(w, err.Error(), http.StatusTeapot)
			return
		}
		if err := rc.Flush(); err != nil {
			http.Error(w, err.Error(), http.StatusTeapot)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
}
func (deadlineSurface) Owns(string) bool                                     { return false }
func (deadlineSurface) WriteError(http.ResponseWriter, *http.Request, error) {}

func TestResponseControllerThroughMiddleware(t *testing.T) {
	t.Parallel()
	srv, err := server.New(server.Options{Surfaces: []server.Surface{deadlineSurface{}}, Log: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	resp, err := http.Get(hs.URL + "/v1/deadline")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
}
