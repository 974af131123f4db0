package registry

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

var (
	needsVision    = []controlplanev1.Capability{controlplanev1.Capability_CAPABILITY_VISION}
	needStructured = []controlplanev1.Capability{controlplanev1.Capability_CAPABILITY_STRUCTURED_OUTPUT}
)

// catalogByName indexes a catalog.
func catalogByName(r *Registry) map[string]*controlplanev1.CatalogModel {
	out := map[string]*controlplanev1.CatalogModel{}
	for _, m := range r.Catalog() {
		out[m.Name] = m
	}
	return out
}

// TestCatalogRules runs overrides and aliases on the real store (SQLite):
// they change admission's capability checks, the context window and the
// catalog at once, bump the catalog version (the push to data planes), and a
// second control plane loads them.
func TestCatalogRules(t *testing.T) {
	t.Parallel()
	st := storetest.SQLite(t)
	ctx := t.Context()
	seed := func(name, engine string, models ...store.ModelSpec) int64 {
		b, _, err := st.RegisterBackend(ctx, store.BackendSpec{Name: name, URL: "http://" + name + ":8000", Engine: engine}, false)
		require.NoError(t, err)
		_, err = st.SetBackendStatus(ctx, b.ID, "healthy")
		require.NoError(t, err)
		require.NoError(t, st.SyncModels(ctx, b.ID, models))
		return b.ID
	}
	// vLLM reports no capabilities: the registry guesses completion and tools.
	vllmID := seed("v", "vllm", store.ModelSpec{Name: "Qwen/Qwen2.5-VL-7B", ContextLength: 8192})
	ollamaID := seed("o", "ollama", store.ModelSpec{Name: "llama3.2:latest", ContextLength: 4096, Capabilities: []string{"completion", "tools"}})
	r := New(st, Options{})
	require.NoError(t, r.Load(ctx))

	_, err := r.Candidates("Qwen/Qwen2.5-VL-7B", opChat, needsVision)
	require.ErrorIs(t, err, ErrCapabilityUnsupported, "no vision before the override")

	v0 := r.Version()
	yes, no := true, false
	_, err = r.SetModelOverride(ctx, store.ModelOverride{Model: "Qwen/Qwen2.5-VL-7B", Vision: &yes, ContextLength: 16384, DisplayName: "Qwen VL"})
	require.NoError(t, err)
	assert.Greater(t, r.Version(), v0, "the catalog version moves, so data planes are told")
	c, err := r.Candidates("Qwen/Qwen2.5-VL-7B", opChat, needsVision)
	require.NoError(t, err, "admission uses the overridden capability")
	assert.EqualValues(t, 16384, c[0].Model.ContextLength)
	assert.Contains(t, c[0].Model.Capabilities, "tools", "the guessed capabilities stay")
	qwen := catalogByName(r)["Qwen/Qwen2.5-VL-7B"]
	require.NotNil(t, qwen)
	assert.Contains(t, qwen.Capabilities, controlplanev1.Capability_CAPABILITY_VISION)
	assert.Equal(t, "Qwen VL", qwen.DisplayName)
	assert.EqualValues(t, 16384, qwen.ContextLength)

	_, err = r.SetModelOverride(ctx, store.ModelOverride{Model: "llama3.2:latest", Tools: &no, StructuredOutput: &no})
	require.NoError(t, err)
	_, err = r.Candidates("llama3.2", opChat, needStructured)
	require.ErrorIs(t, err, ErrCapabilityUnsupported)
	assert.NotContains(t, catalogByName(r)["llama3.2:latest"].Capabilities, controlplanev1.Capability_CAPABILITY_TOOLS)
	assert.Equal(t, []string{"Qwen/Qwen2.5-VL-7B", "llama3.2"}, []string{r.ModelOverrides()[0].Model, r.ModelOverrides()[1].Model},
		"overrides are keyed without :latest")

	// An alias is served by any backend serving one of its targets.
	_, err = r.SetModelAlias(ctx, store.ModelAlias{Name: "default-chat", Targets: []string{"llama3.2", "Qwen/Qwen2.5-VL-7B", "gone"}, Description: "chat"})
	require.NoError(t, err)
	c, err = r.Candidates("default-chat", opChat, nil)
	require.NoError(t, err)
	require.Len(t, c, 2)
	assert.Equal(t, []int64{vllmID, ollamaID}, []int64{c[0].Backend.ID, c[1].Backend.ID})
	assert.Equal(t, "Qwen/Qwen2.5-VL-7B", c[0].Model.Name, "the lease names the real model")
	c, err = r.Candidates("default-chat", opChat, needsVision)
	require.NoError(t, err)
	require.Len(t, c, 1, "capability checks apply to each target")
	alias := catalogByName(r)["default-chat"]
	require.NotNil(t, alias)
	assert.True(t, alias.IsAlias)
	assert.Equal(t, []string{"llama3.2", "Qwen/Qwen2.5-VL-7B", "gone"}, alias.AliasTargets)
	assert.EqualValues(t, 2, alias.HealthyBackends)

	_, err = r.SetModelAlias(ctx, store.ModelAlias{Name: "llama3.2", Targets: []string{"Qwen/Qwen2.5-VL-7B"}})
	require.ErrorIs(t, err, store.ErrConflict, "a model's name is not an alias")
	_, err = r.SetModelAlias(ctx, store.ModelAlias{Name: "nested", Targets: []string{"default-chat"}})
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = r.SetModelAlias(ctx, store.ModelAlias{Name: "bad/name", Targets: []string{"llama3.2"}})
	require.ErrorIs(t, err, store.ErrInvalid)

	// A second control plane (a new leader) loads the rules.
	r2 := New(st, Options{})
	require.NoError(t, r2.Load(ctx))
	_, err = r2.Candidates("Qwen/Qwen2.5-VL-7B", opChat, needsVision)
	require.NoError(t, err)
	require.Contains(t, catalogByName(r2), "default-chat")

	require.NoError(t, r.DeleteModelOverride(ctx, "Qwen/Qwen2.5-VL-7B"))
	_, err = r.Candidates("Qwen/Qwen2.5-VL-7B", opChat, needsVision)
	require.ErrorIs(t, err, ErrCapabilityUnsupported, "the discovered values apply again")
	require.NoError(t, r.DeleteModelAlias(ctx, "default-chat"))
	_, err = r.Candidates("default-chat", opChat, nil)
	require.ErrorIs(t, err, ErrModelNotFound)
	require.ErrorIs(t, r.DeleteModelAlias(ctx, "default-chat"), store.ErrNotFound)
}
