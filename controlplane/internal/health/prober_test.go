package health_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/health"
	"github.com/mindrouter/mindrouter/controlplane/internal/health/healthtest"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func TestProbeOllama(t *testing.T) {
	t.Parallel()
	eng := healthtest.NewOllama(t, "0.17.4",
		healthtest.Model{Name: "llama3.2:latest", Family: "llama", ContextLength: 131072, EmbeddingLength: 3072,
			Capabilities: []string{"completion", "tools"}, Loaded: true, ParameterSize: "3.2B", Quantization: "Q4_K_M", Size: 2019393189},
		healthtest.Model{Name: "tiny:latest", Family: "llama", ContextLength: 512, NumCtx: 256, Capabilities: []string{"completion"}},
		healthtest.Model{Name: "nomic-embed-text:latest", Family: "nomic-bert", ContextLength: 2048, EmbeddingLength: 768, Capabilities: []string{"embedding"}},
		healthtest.Model{Name: "llava:7b", Family: "llama", Capabilities: []string{"completion", "vision", "Vision"}},
	)
	p := health.NewProber(nil, nil)

	res, err := p.Probe(t.Context(), "ollama", eng.URL()+"/")
	require.NoError(t, err)
	require.True(t, res.Healthy, res.Err)
	assert.Equal(t, "0.17.4", res.Version)
	assert.False(t, res.Simulated)
	require.Len(t, res.Models, 4)

	byName := map[string]store.ModelSpec{}
	for _, m := range res.Models {
		byName[m.Name] = m
	}
	assert.Equal(t, store.ModelSpec{
		Name: "llama3.2:latest", Family: "llama", ContextLength: 131072, EmbeddingLength: 3072,
		Capabilities: []string{"completion", "tools"}, Loaded: true, ParameterSize: "3.2B",
		Quantization: "Q4_K_M", SizeBytes: 2019393189,
	}, byName["llama3.2:latest"])
	assert.Equal(t, int64(256), byName["tiny:latest"].ContextLength, "Modelfile num_ctx below the architectural maximum wins")
	assert.Equal(t, []string{"embedding"}, byName["nomic-embed-text:latest"].Capabilities)
	assert.Equal(t, int64(768), byName["nomic-embed-text:latest"].EmbeddingLength)
	assert.Equal(t, int64(health.DefaultContextLength), byName["llava:7b"].ContextLength, "no context length reported")
	assert.Equal(t, []string{"completion", "vision"}, byName["llava:7b"].Capabilities)
	assert.False(t, byName["tiny:latest"].Loaded)
}

func TestProbeOllamaCachesShow(t *testing.T) {
	t.Parallel()
	m := healthtest.Model{Name: "a:latest", Digest: "d1", ContextLength: 8192, Capabilities: []string{"completion"}}
	eng := healthtest.NewOllama(t, "0.17.4", m, healthtest.Model{Name: "b:latest", Digest: "d2", ContextLength: 4096})
	p := health.NewProber(nil, nil)

	for range 3 {
		res, err := p.Probe(t.Context(), "ollama", eng.URL())
		require.NoError(t, err)
		require.True(t, res.Healthy)
	}
	require.Equal(t, 2, eng.Calls("/api/show"), "unchanged models are described once")

	m.Digest, m.ContextLength = "d3", 16384
	eng.SetModels(m, healthtest.Model{Name: "b:latest", Digest: "d2", ContextLength: 4096})
	res, err := p.Probe(t.Context(), "ollama", eng.URL())
	require.NoError(t, err)
	require.Equal(t, 3, eng.Calls("/api/show"), "a new digest is described again")
	require.Equal(t, int64(16384), res.Models[0].ContextLength)

	// A failed show is not cached: the model falls back to its tag data and is retried.
	eng.SetModels(healthtest.Model{Name: "c-embed:latest", Digest: "d4", ContextLength: 2048})
	eng.SetShowFails(true)
	res, err = p.Probe(t.Context(), "ollama", eng.URL())
	require.NoError(t, err)
	require.True(t, res.Healthy)
	require.Equal(t, []string{"embedding"}, res.Models[0].Capabilities, "name heuristic when /api/show fails")
	require.Equal(t, int64(health.DefaultContextLength), res.Models[0].ContextLength)
	eng.SetShowFails(false)
	res, err = p.Probe(t.Context(), "ollama", eng.URL())
	require.NoError(t, err)
	require.Equal(t, int64(2048), res.Models[0].ContextLength)
	require.Equal(t, 5, eng.Calls("/api/show"))
}

func TestProbeVLLM(t *testing.T) {
	t.Parallel()
	eng := healthtest.NewVLLM(t, "0.11.0-sim",
		healthtest.Model{Name: "Qwen/Qwen3-8B", ContextLength: 40960},
		healthtest.Model{Name: "BAAI/bge-reranker-v2-m3", ContextLength: 8192},
		healthtest.Model{Name: "intfloat/e5-embed", ContextLength: 512},
		healthtest.Model{Name: "Qwen/Qwen2.5-VL-7B-Instruct"},
	)
	p := health.NewProber(nil, nil)
	res, err := p.Probe(t.Context(), "vllm", eng.URL())
	require.NoError(t, err)
	require.True(t, res.Healthy, res.Err)
	assert.Equal(t, "0.11.0-sim", res.Version)
	assert.True(t, res.Simulated)
	want := []store.ModelSpec{
		{Name: "BAAI/bge-reranker-v2-m3", ContextLength: 8192, Capabilities: []string{"rerank"}, Loaded: true},
		{Name: "Qwen/Qwen2.5-VL-7B-Instruct", ContextLength: health.DefaultContextLength, Capabilities: []string{"completion", "tools", "vision"}, Loaded: true},
		{Name: "Qwen/Qwen3-8B", ContextLength: 40960, Capabilities: []string{"completion", "thinking", "tools"}, Loaded: true},
		{Name: "intfloat/e5-embed", ContextLength: 512, Capabilities: []string{"embedding"}, Loaded: true},
	}
	assert.Equal(t, want, res.Models)
}

func TestProbeFailures(t *testing.T) {
	t.Parallel()
	down := healthtest.NewOllama(t, "0.17.4")
	down.SetDown(true)
	vdown := healthtest.NewVLLM(t, "0.11.0")
	vdown.SetDown(true)
	closed := healthtest.NewVLLM(t, "0.11.0")
	closedURL := closed.URL()
	closed.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<html>not json</html>"))
	}))
	t.Cleanup(garbage.Close)
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)

	tests := []struct {
		name, engine, url, wantErr string
	}{
		{"ollama 500", "ollama", down.URL(), "GET /api/tags: status 500"},
		{"vllm 500", "vllm", vdown.URL(), "GET /health: status 500"},
		{"connection refused", "vllm", closedURL, "GET /health: "},
		{"not json", "ollama", garbage.URL, "GET /api/tags: decode model list"},
		{"timeout", "ollama", hang.URL, "GET /api/tags: timeout"},
		{"credentials never leak", "ollama", strings.Replace(closedURL, "http://", "http://user:s3cret@", 1), "GET /api/tags: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := health.NewProber(nil, nil)
			p.SetTimeouts(200*time.Millisecond, 0)
			res, err := p.Probe(t.Context(), tc.engine, tc.url)
			require.NoError(t, err)
			require.False(t, res.Healthy)
			require.Contains(t, res.Err, tc.wantErr)
			require.NotContains(t, res.Err, "s3cret")
			require.NotContains(t, res.Err, "http://", "errors name the path, not the URL")
		})
	}
}

func TestProbeRejectsBadInput(t *testing.T) {
	t.Parallel()
	p := health.NewProber(nil, nil)
	_, err := p.Probe(context.Background(), "tgi", "http://127.0.0.1:1")
	require.ErrorContains(t, err, `unknown engine "tgi"`)
	_, err = p.Probe(context.Background(), "vllm", "ftp://x")
	require.Error(t, err)
	_, err = p.Probe(context.Background(), "vllm", "http://")
	require.Error(t, err)
}

func TestProbeVLLMWithoutHealthEndpoint(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/models" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"object":"list","data":[{"id":"m","object":"model"}]}`))
	}))
	t.Cleanup(srv.Close)
	res, err := health.NewProber(nil, nil).Probe(t.Context(), "vllm", srv.URL)
	require.NoError(t, err)
	require.True(t, res.Healthy, res.Err)
	require.Len(t, res.Models, 1)
	require.Empty(t, res.Version)
}
