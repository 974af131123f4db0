package registry

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/health"
	"github.com/mindrouter/mindrouter/controlplane/internal/health/healthtest"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

var (
	modelA = healthtest.Model{Name: "a:latest", Family: "llama", ContextLength: 8192, Capabilities: []string{"completion", "tools"}}
	modelB = healthtest.Model{Name: "b:latest", Family: "qwen3", ContextLength: 40960, Capabilities: []string{"completion", "thinking"}}
)

func registerBackend(t *testing.T, f *fixture, name, engine, url string) Backend {
	t.Helper()
	b, created, err := f.r.RegisterBackend(t.Context(), store.BackendSpec{Name: name, URL: url, Engine: engine, MaxConcurrent: 4}, false)
	require.NoError(t, err)
	require.True(t, created)
	return b
}

func refresh(t *testing.T, f *fixture, id int64) Backend {
	t.Helper()
	b, err := f.r.RefreshBackend(t.Context(), id)
	require.NoError(t, err)
	return b
}

func TestPollTransitions(t *testing.T) {
	t.Parallel()
	eng := healthtest.NewOllama(t, "0.17.4", modelA)
	f := newFixture(t, Options{}, nil)
	sub := subscribe(t, f.r)

	b := registerBackend(t, f, "o", "ollama", eng.URL())
	require.Equal(t, StatusHealthy, b.Status, "registration probes at once")
	require.Equal(t, "0.17.4", b.Version)
	require.Equal(t, []string{"a:latest"}, b.Models)
	require.Equal(t, 1, f.st.syncCount())
	require.Equal(t, "healthy", f.st.backend(b.ID).Status)
	require.True(t, sub.drained())
	models := f.r.ListModels()
	require.Len(t, models, 1)
	require.NotZero(t, models[0].ID, "models carry the store's ids")

	refresh(t, f, b.ID)
	require.Equal(t, 1, f.st.syncCount(), "unchanged models are not written again")
	require.False(t, sub.drained(), "an unchanged probe changes nothing routing depends on")

	eng.SetDown(true)
	for i := 1; i <= 2; i++ {
		b = refresh(t, f, b.ID)
		require.Equal(t, StatusHealthy, b.Status, "failure %d stays below the threshold", i)
		require.Equal(t, i, b.ConsecutiveFailures)
		require.Contains(t, b.LastError, "GET /api/tags: status 500")
	}
	version := f.r.Version()
	b = refresh(t, f, b.ID)
	require.Equal(t, StatusUnhealthy, b.Status)
	require.Equal(t, "unhealthy", f.st.backend(b.ID).Status)
	require.Equal(t, 3, f.st.backend(b.ID).ConsecutiveFailures)
	require.True(t, sub.drained())
	require.Greater(t, f.r.Version(), version)
	require.Empty(t, f.r.Catalog())
	_, err := f.r.Candidates("a", opChat, nil)
	require.ErrorIs(t, err, ErrNoHealthyBackend)
	assert.Equal(t, 0.0, f.gauge(t, "mindrouter_backend_up", "backend", "o"))
	assert.Equal(t, 1.0, f.gauge(t, "mindrouter_backends", "status", "unhealthy"))
	require.Equal(t, []string{"a:latest"}, b.Models, "a failed probe keeps the models")

	eng.SetDown(false)
	eng.SetModels(modelA, modelB)
	b = refresh(t, f, b.ID)
	require.Equal(t, StatusHealthy, b.Status)
	require.Zero(t, b.ConsecutiveFailures)
	require.Empty(t, b.LastError)
	require.Equal(t, []string{"a:latest", "b:latest"}, b.Models)
	require.Equal(t, 2, f.st.syncCount())
	assert.Equal(t, 1.0, f.gauge(t, "mindrouter_backend_up", "backend", "o"))
	c, err := f.r.Candidates("b", opChat, nil)
	require.NoError(t, err)
	require.EqualValues(t, 40960, c[0].Model.ContextLength)
}

func TestPollUnknownTurnsUnhealthyAtOnce(t *testing.T) {
	t.Parallel()
	eng := healthtest.NewVLLM(t, "0.11.0")
	url := eng.URL()
	eng.Close()
	f := newFixture(t, Options{}, nil)
	b := registerBackend(t, f, "v", "vllm", url)
	require.Equal(t, StatusUnhealthy, b.Status)
	require.Contains(t, b.LastError, "GET /health: ")
	require.NotContains(t, b.LastError, url)
}

func TestPollStickyStatuses(t *testing.T) {
	t.Parallel()
	for _, status := range []Status{StatusDisabled, StatusDraining} {
		t.Run(string(status), func(t *testing.T) {
			t.Parallel()
			eng := healthtest.NewOllama(t, "0.17.4", modelA)
			f := newFixture(t, Options{}, nil)
			b := registerBackend(t, f, "o", "ollama", eng.URL())
			f.inFlight.Set(b.ID, 1) // keeps a drain from completing
			var err error
			if status == StatusDisabled {
				b, err = f.r.DisableBackend(t.Context(), b.ID)
			} else {
				b, err = f.r.DrainBackend(t.Context(), b.ID)
			}
			require.NoError(t, err)
			require.Equal(t, status, b.Status)
			require.Equal(t, string(status), f.st.backend(b.ID).Status)
			_, err = f.r.Candidates("a", opChat, nil)
			require.ErrorIs(t, err, ErrNoHealthyBackend)

			eng.SetDown(true)
			for range 4 {
				b = refresh(t, f, b.ID)
			}
			require.Equal(t, status, b.Status, "probes never overwrite %s", status)
			require.Equal(t, 4, b.ConsecutiveFailures)
			require.NotEmpty(t, b.LastError)

			eng.SetDown(false)
			eng.SetModels(modelB)
			eng.SetVersion("0.17.5-sim")
			b = refresh(t, f, b.ID)
			require.Equal(t, status, b.Status)
			require.Equal(t, []string{"b:latest"}, b.Models, "probes still discover models")
			require.Equal(t, "0.17.5-sim", b.Version)
			require.True(t, b.Simulated)
			require.Equal(t, string(status), f.st.backend(b.ID).Status)

			f.inFlight.Set(b.ID, 0)
			b, err = f.r.EnableBackend(t.Context(), b.ID)
			require.NoError(t, err)
			require.Equal(t, StatusHealthy, b.Status, "enable probes at once")
			_, err = f.r.Candidates("b", opChat, nil)
			require.NoError(t, err)
		})
	}
}

func TestEnableUnreachableBackend(t *testing.T) {
	t.Parallel()
	eng := healthtest.NewOllama(t, "0.17.4", modelA)
	f := newFixture(t, Options{}, nil)
	b := registerBackend(t, f, "o", "ollama", eng.URL())
	_, err := f.r.DisableBackend(t.Context(), b.ID)
	require.NoError(t, err)
	eng.Close()
	b, err = f.r.EnableBackend(t.Context(), b.ID)
	require.NoError(t, err)
	require.Equal(t, StatusUnhealthy, b.Status)
	require.Equal(t, 1, b.ConsecutiveFailures, "enabling clears the old failure count")
}

func TestSyncFailureKeepsModels(t *testing.T) {
	t.Parallel()
	eng := healthtest.NewOllama(t, "0.17.4", modelA)
	f := newFixture(t, Options{}, nil)
	b := registerBackend(t, f, "o", "ollama", eng.URL())

	f.st.mu.Lock()
	f.st.failSync = context.DeadlineExceeded
	f.st.mu.Unlock()
	eng.SetModels(modelB)
	b = refresh(t, f, b.ID)
	require.Equal(t, StatusHealthy, b.Status)
	require.Equal(t, []string{"a:latest"}, b.Models, "memory follows the store")

	f.st.mu.Lock()
	f.st.failSync = nil
	f.st.mu.Unlock()
	b = refresh(t, f, b.ID)
	require.Equal(t, []string{"b:latest"}, b.Models, "the next probe writes them")
}

func TestLoadResetsFailingBackends(t *testing.T) {
	t.Parallel()
	var failing, disabled, fine int64
	f := newFixture(t, Options{}, func(st *fakeStore) {
		failing = st.seedBackend(t, "failing", "vllm", "unhealthy", false)
		disabled = st.seedBackend(t, "disabled", "vllm", "disabled", false)
		fine = st.seedBackend(t, "fine", "vllm", "healthy", false)
		for _, id := range []int64{failing, disabled} {
			b := st.backends[id]
			b.ConsecutiveFailures = 2
			st.backends[id] = b
		}
	})
	for id, want := range map[int64]Status{failing: StatusUnknown, disabled: StatusDisabled, fine: StatusHealthy} {
		b, err := f.r.GetBackend(id)
		require.NoError(t, err)
		require.Equal(t, want, b.Status, b.Name)
	}
	b, _ := f.r.GetBackend(failing)
	require.Zero(t, b.ConsecutiveFailures)
}

func TestRunHealth(t *testing.T) {
	t.Parallel()
	eng := healthtest.NewVLLM(t, "0.11.0", healthtest.Model{Name: "m", ContextLength: 4096})
	var id int64
	f := newFixture(t, Options{FastPollInterval: 10 * time.Millisecond, StartupRepoll: 10 * time.Millisecond}, func(st *fakeStore) {
		id = st.seedBackend(t, "v", "vllm", "unknown", false)
		b := st.backends[id]
		b.URL = eng.URL()
		st.backends[id] = b
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.r.RunHealth(ctx, time.Hour) }()
	status := func(want Status) func() bool {
		return func() bool { b, _ := f.r.GetBackend(id); return b.Status == want }
	}
	require.Eventually(t, status(StatusHealthy), 5*time.Second, 5*time.Millisecond, "the first poll runs at once")
	_, err := f.r.Candidates("m", opChat, nil)
	require.NoError(t, err)

	// Three live failures open the circuit and ask for a re-probe, which finds
	// the engine well: the status stays healthy, but no request goes there
	// until the open period ends.
	sub := subscribe(t, f.r)
	probes := f.st.healthRecords(id)
	for range 3 {
		f.r.ObserveOutcome(id, true)
	}
	<-sub.ch
	require.Equal(t, CircuitOpen, f.r.Circuit(id))
	_, err = f.r.Candidates("m", opChat, nil)
	require.ErrorIs(t, err, ErrCircuitOpen)
	require.Eventually(t, func() bool { return f.st.healthRecords(id) > probes }, 5*time.Second, 5*time.Millisecond, "re-probed")
	b, _ := f.r.GetBackend(id)
	require.Equal(t, StatusHealthy, b.Status)
	require.Equal(t, CircuitOpen, b.Circuit)
	f.clock.Advance(DefaultCircuitOpenFor)
	<-sub.ch // the fast poll announces the half-open circuit
	require.Equal(t, CircuitHalfOpen, f.r.Circuit(id))
	f.r.ObserveOutcome(id, false)
	require.Equal(t, CircuitClosed, f.r.Circuit(id))

	// A dead backend is found by the polls (the fast poll once it is troubled).
	eng.SetDown(true)
	f.r.ObserveOutcome(id, true)
	require.Eventually(t, status(StatusUnhealthy), 5*time.Second, 5*time.Millisecond)
	eng.SetDown(false)
	require.Eventually(t, status(StatusHealthy), 5*time.Second, 5*time.Millisecond)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("RunHealth did not stop")
	}
}

func TestDrain(t *testing.T) {
	t.Parallel()
	eng := healthtest.NewOllama(t, "0.17.4", modelA)
	f := newFixture(t, Options{FastPollInterval: 10 * time.Millisecond}, nil)
	idle := registerBackend(t, f, "idle", "ollama", eng.URL())
	busy := registerBackend(t, f, "busy", "ollama", eng.URL()+"/")

	b, err := f.r.DrainBackend(t.Context(), idle.ID)
	require.NoError(t, err)
	require.Equal(t, StatusDisabled, b.Status, "an idle backend drains at once")

	f.inFlight.Set(busy.ID, 2)
	b, err = f.r.DrainBackend(t.Context(), busy.ID)
	require.NoError(t, err)
	require.Equal(t, StatusDraining, b.Status)
	require.ErrorIs(t, f.r.RemoveBackend(t.Context(), busy.ID), store.ErrInUse)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = f.r.RunHealth(ctx, time.Hour) })
	defer wg.Wait()
	defer cancel()

	f.inFlight.Set(busy.ID, 0)
	f.r.ObserveOutcome(busy.ID, false)
	require.Eventually(t, func() bool { b, _ := f.r.GetBackend(busy.ID); return b.Status == StatusDisabled }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, "disabled", f.st.backend(busy.ID).Status)

	require.NoError(t, f.r.RemoveBackend(t.Context(), busy.ID))
	_, err = f.r.GetBackend(busy.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Equal(t, -1.0, f.gauge(t, "mindrouter_backend_up", "backend", "busy"), "a removed backend's series goes")
}

// gateProber holds every probe until released and records the concurrency.
type gateProber struct {
	release       chan struct{}
	cur, max, all atomic.Int64
}

func (g *gateProber) Probe(ctx context.Context, _, _ string) (health.Result, error) {
	n := g.cur.Add(1)
	defer g.cur.Add(-1)
	g.all.Add(1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-g.release:
	case <-ctx.Done():
	}
	return health.Result{Healthy: true}, nil
}

func TestProbeConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	g := &gateProber{release: make(chan struct{})}
	f := newFixture(t, Options{Prober: g, ProbeConcurrency: 3}, func(st *fakeStore) {
		for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
			st.seedBackend(t, n, "vllm", "unknown", false)
		}
	})
	var wg sync.WaitGroup
	f.r.launch(t.Context(), &wg, f.r.backendIDs(false))
	require.Eventually(t, func() bool { return g.cur.Load() == 3 }, 5*time.Second, time.Millisecond)
	f.r.launch(t.Context(), &wg, f.r.backendIDs(false)) // backends being probed are skipped
	close(g.release)
	wg.Wait()
	require.EqualValues(t, 3, g.max.Load())
	require.EqualValues(t, 10, g.all.Load(), "each backend probed once")
	for _, b := range f.r.ListBackends() {
		require.Equal(t, StatusHealthy, b.Status)
	}
}
