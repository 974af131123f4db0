package registry

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/health"
	"github.com/mindrouter/mindrouter/controlplane/internal/health/healthtest"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
)

// The fake store imitates the store package; these tests run the registry on
// the real one, on SQLite and MariaDB (storetest), to keep the two honest.

func TestRegistryOnRealStore(t *testing.T) {
	t.Parallel()
	for name, open := range storetest.Openers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			ctx := t.Context()
			eng := healthtest.NewOllama(t, "0.17.4", modelA, healthtest.Model{Name: "nomic-embed-text:latest", ContextLength: 2048, Capabilities: []string{"embedding"}})
			newRegistry := func() *Registry {
				p := health.NewProber(nil, nil)
				r := New(st, Options{Prober: p})
				require.NoError(t, r.Load(ctx))
				return r
			}
			r := newRegistry()

			node, created, err := r.RegisterNode(ctx, store.NodeSpec{Name: "gpu1", Hostname: "gpu1.local", AgentSecretSHA256: secretDigest("x")}, false)
			require.NoError(t, err)
			require.True(t, created)
			b, created, err := r.RegisterBackend(ctx, store.BackendSpec{Name: "o", URL: eng.URL(), Engine: "ollama", NodeID: node.ID, GPUIndices: []int{0}}, false)
			require.NoError(t, err)
			require.True(t, created)
			require.Equal(t, StatusHealthy, b.Status)
			require.Equal(t, "gpu1", b.NodeName)
			require.Equal(t, store.DefaultMaxConcurrent, b.MaxConcurrent)
			require.Equal(t, []string{"a:latest", "nomic-embed-text:latest"}, b.Models)
			_, created, err = r.RegisterBackend(ctx, store.BackendSpec{Name: "o", URL: eng.URL(), Engine: "ollama", NodeID: node.ID, GPUIndices: []int{0}}, false)
			require.NoError(t, err)
			require.False(t, created, "the same definition again")

			_, err = r.DisableBackend(ctx, b.ID)
			require.NoError(t, err)
			eng.SetModels(modelA)
			b, err = r.RefreshBackend(ctx, b.ID)
			require.NoError(t, err)
			require.Equal(t, StatusDisabled, b.Status)
			require.Equal(t, []string{"a:latest"}, b.Models)

			// A second control plane loads what the first one wrote.
			r2 := newRegistry()
			b2, err := r2.GetBackend(b.ID)
			require.NoError(t, err)
			require.Equal(t, StatusDisabled, b2.Status)
			require.Equal(t, "0.17.4", b2.Version)
			require.Equal(t, []string{"a:latest"}, b2.Models)
			require.False(t, b2.LastSuccess.IsZero())
			ms := r2.ListModels()
			require.Len(t, ms, 1)
			require.Equal(t, r.ListModels()[0].ID, ms[0].ID)
			require.EqualValues(t, 8192, ms[0].ContextLength)
			require.Equal(t, []string{"completion", "tools"}, ms[0].Capabilities)

			b2, err = r2.EnableBackend(ctx, b.ID)
			require.NoError(t, err)
			require.Equal(t, StatusHealthy, b2.Status)
			c, err := r2.Candidates("a", opChat, nil)
			require.NoError(t, err)
			require.Equal(t, "a:latest", c[0].Model.Name)

			require.ErrorIs(t, r2.DeleteNode(ctx, node.ID), store.ErrInUse)
			require.NoError(t, r2.RemoveBackend(ctx, b.ID))
			require.NoError(t, r2.DeleteNode(ctx, node.ID))
			_, err = r2.GetBackend(b.ID)
			require.ErrorIs(t, err, store.ErrNotFound)
			require.Empty(t, r2.ListModels())
		})
	}
}
