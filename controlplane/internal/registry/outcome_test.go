package registry

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func TestObserveOutcome(t *testing.T) {
	t.Parallel()
	var id int64
	f := newFixture(t, Options{}, func(st *fakeStore) {
		id = st.seedBackend(t, "b", "vllm", "healthy", false, store.ModelSpec{Name: "m", ContextLength: 1024, Capabilities: []string{"completion"}})
	})
	sub := subscribe(t, f.r)
	version := f.r.Version()

	f.r.ObserveOutcome(id, true)
	f.r.ObserveOutcome(id, true)
	b, err := f.r.GetBackend(id)
	require.NoError(t, err)
	require.Equal(t, StatusHealthy, b.Status)
	require.Equal(t, 2, b.LiveFailures)
	require.False(t, sub.drained(), "failure counts alone do not change routing")

	f.r.ObserveOutcome(id, false)
	b, _ = f.r.GetBackend(id)
	require.Zero(t, b.LiveFailures, "a success resets the count")

	for range 3 {
		f.r.ObserveOutcome(id, true)
	}
	b, _ = f.r.GetBackend(id)
	require.Equal(t, StatusUnhealthy, b.Status)
	require.True(t, sub.drained())
	require.Greater(t, f.r.Version(), version, "the model left the catalog")
	_, err = f.r.Candidates("m", opChat, nil)
	require.ErrorIs(t, err, ErrNoHealthyBackend)
	require.Equal(t, 0.0, f.gauge(t, "mindrouter_backend_up", "backend", "b"))
	select {
	case kicked := <-f.r.kicks:
		require.Equal(t, id, kicked, "a re-probe was requested")
	default:
		t.Fatal("no re-probe requested")
	}

	f.r.ObserveOutcome(999, true) // unknown backends are ignored
}

func TestMarkLoaded(t *testing.T) {
	t.Parallel()
	var id int64
	f := newFixture(t, Options{}, func(st *fakeStore) {
		id = st.seedBackend(t, "b", "ollama", "healthy", false, store.ModelSpec{Name: "m:latest", ContextLength: 1024})
	})
	require.False(t, f.r.Catalog()[0].Loaded)
	v := f.r.Version()
	f.r.MarkLoaded(id, "m")
	require.True(t, f.r.Catalog()[0].Loaded)
	require.Equal(t, v+1, f.r.Version())
	f.r.MarkLoaded(id, "m:latest")
	require.Equal(t, v+1, f.r.Version(), "no change, no new version")
	require.True(t, f.r.ListModels()[0].Loaded)
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	var id int64
	f := newFixture(t, Options{}, func(st *fakeStore) {
		id = st.seedBackend(t, "b", "vllm", "healthy", false, store.ModelSpec{Name: "m", ContextLength: 1024})
	})
	a, cancelA := f.r.Subscribe()
	b, cancelB := f.r.Subscribe()
	t.Cleanup(cancelB)

	_, err := f.r.DisableBackend(t.Context(), id)
	require.NoError(t, err)
	_, err = f.r.UpdateBackend(t.Context(), id, store.BackendPatch{MaxConcurrent: new(8)})
	require.NoError(t, err)
	require.Len(t, a, 1, "signals coalesce in a buffer of one")
	<-a
	<-b
	cancelA()
	cancelA() // idempotent
	_, err = f.r.UpdateBackend(t.Context(), id, store.BackendPatch{Priority: new(3)})
	require.NoError(t, err)
	require.Empty(t, a, "no signal after unsubscribing")
	require.Len(t, b, 1)
	<-b

	_, err = f.r.UpdateBackend(t.Context(), id, store.BackendPatch{Priority: new(3)})
	require.NoError(t, err)
	_, err = f.r.UpdateBackend(t.Context(), id, store.BackendPatch{GPUType: new("H100")})
	require.NoError(t, err)
	require.Empty(t, b, "no signal without a change routing depends on")
}
