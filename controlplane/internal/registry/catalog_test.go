package registry

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

func TestCatalog(t *testing.T) {
	t.Parallel()
	chat := []string{"completion", "tools"}
	f := newFixture(t, Options{}, func(st *fakeStore) {
		st.seedBackend(t, "real", "ollama", "healthy", false,
			store.ModelSpec{Name: "llama3.2:latest", Family: "llama", ContextLength: 8192, Capabilities: chat, ParameterSize: "3.2B", Quantization: "Q4_K_M"},
			store.ModelSpec{Name: "nomic-embed-text:latest", ContextLength: 2048, EmbeddingLength: 768, Capabilities: []string{"embedding"}},
		)
		st.seedBackend(t, "sim1", "ollama", "healthy", true,
			store.ModelSpec{Name: "llama3.2:latest", Family: "llama", ContextLength: 131072, Capabilities: []string{"completion", "vision"}, Loaded: true},
			store.ModelSpec{Name: "sim-only", ContextLength: 4096, Capabilities: chat},
		)
		st.seedBackend(t, "sim2", "vllm", "healthy", true,
			store.ModelSpec{Name: "sim-only", ContextLength: 16384, Capabilities: []string{"completion", "thinking", "tools"}},
		)
		st.seedBackend(t, "off", "vllm", "disabled", false,
			store.ModelSpec{Name: "sim-only", ContextLength: 65536, Capabilities: chat},
			store.ModelSpec{Name: "hidden", ContextLength: 4096, Capabilities: chat},
		)
	})

	cat := f.r.Catalog()
	require.Len(t, cat, 3, "models only on disabled backends are not listed")
	byName := map[string]*controlplanev1.CatalogModel{}
	for _, m := range cat {
		byName[m.Name] = m
	}
	require.Equal(t, []string{"llama3.2:latest", "nomic-embed-text:latest", "sim-only"}, []string{cat[0].Name, cat[1].Name, cat[2].Name})

	llama := byName["llama3.2:latest"]
	assert.EqualValues(t, 2, llama.HealthyBackends)
	assert.False(t, llama.Simulated, "one real backend serves it")
	assert.True(t, llama.Loaded)
	assert.EqualValues(t, DefaultContextCap, llama.ContextLength, "largest maximum, capped")
	assert.Equal(t, "llama", llama.Family)
	assert.Equal(t, "3.2B", llama.ParameterSize)
	assert.Equal(t, []controlplanev1.Engine{controlplanev1.Engine_ENGINE_OLLAMA}, llama.Engines)
	assert.Equal(t, []controlplanev1.Capability{
		controlplanev1.Capability_CAPABILITY_VISION, controlplanev1.Capability_CAPABILITY_TOOLS,
		controlplanev1.Capability_CAPABILITY_STRUCTURED_OUTPUT, controlplanev1.Capability_CAPABILITY_COMPLETION,
	}, llama.Capabilities)
	assert.Equal(t, newFakeStore().now().Unix(), llama.Created)

	simOnly := byName["sim-only"]
	assert.True(t, simOnly.Simulated, "every healthy backend serving it is simulated")
	assert.EqualValues(t, 16384, simOnly.ContextLength, "the disabled backend's larger window does not count")
	assert.EqualValues(t, 2, simOnly.HealthyBackends)
	assert.Equal(t, []controlplanev1.Engine{controlplanev1.Engine_ENGINE_OLLAMA, controlplanev1.Engine_ENGINE_VLLM}, simOnly.Engines)
	assert.Contains(t, simOnly.Capabilities, controlplanev1.Capability_CAPABILITY_THINKING)

	embed := byName["nomic-embed-text:latest"]
	assert.Equal(t, []controlplanev1.Capability{controlplanev1.Capability_CAPABILITY_EMBEDDING}, embed.Capabilities)
	assert.EqualValues(t, 768, embed.EmbeddingLength)

	// The caller owns the result.
	cat[0].Name = "changed"
	require.Equal(t, "llama3.2:latest", f.r.Catalog()[0].Name)
}

func TestContextCap(t *testing.T) {
	t.Parallel()
	seed := func(st *fakeStore) {
		st.seedBackend(t, "b", "vllm", "healthy", false,
			store.ModelSpec{Name: "big", ContextLength: 131072, Capabilities: []string{"completion"}},
			store.ModelSpec{Name: "small", ContextLength: 2048, Capabilities: []string{"completion"}},
		)
	}
	tests := []struct {
		name     string
		cap      int64
		wantCap  int64
		wantBig  int64
		wantSmal int64
	}{
		{"default", 0, 32768, 32768, 2048},
		{"configured", 8192, 8192, 8192, 2048},
		{"above every model", 1 << 20, 1 << 20, 131072, 2048},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{ContextCap: tc.cap}, seed)
			require.Equal(t, tc.wantCap, f.r.ContextCap())
			cat := f.r.Catalog()
			require.Len(t, cat, 2)
			require.Equal(t, tc.wantBig, cat[0].ContextLength)
			require.Equal(t, tc.wantSmal, cat[1].ContextLength)
			c, err := f.r.Candidates("big", opChat, nil)
			require.NoError(t, err)
			require.EqualValues(t, 131072, c[0].Model.ContextLength, "candidates carry the model maximum")
		})
	}
}
