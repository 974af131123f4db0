package registry

import (
	"testing"
	"time"

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
	require.Equal(t, CircuitClosed, b.Circuit)
	require.False(t, sub.drained(), "failure counts alone do not change routing")

	f.r.ObserveOutcome(id, false)
	b, _ = f.r.GetBackend(id)
	require.Zero(t, b.LiveFailures, "a success resets the count")

	for range 3 {
		f.r.ObserveOutcome(id, true)
	}
	b, _ = f.r.GetBackend(id)
	require.Equal(t, StatusHealthy, b.Status, "probes govern the status; the circuit keeps requests away")
	require.Equal(t, CircuitOpen, b.Circuit)
	require.Equal(t, 3, b.LiveFailures)
	require.True(t, sub.drained())
	require.Equal(t, version, f.r.Version(), "the catalog keeps the model through a short open period")
	_, err = f.r.Candidates("m", opChat, nil)
	require.ErrorIs(t, err, ErrCircuitOpen)
	require.ErrorIs(t, err, ErrNoHealthyBackend)
	var ra interface{ RetryAfter() time.Duration }
	require.ErrorAs(t, err, &ra)
	require.Equal(t, DefaultCircuitOpenFor, ra.RetryAfter(), "retry when the circuit turns half-open")
	require.Equal(t, 1.0, f.gauge(t, "mindrouter_backend_up", "backend", "b"))
	require.Equal(t, 1.0, f.counter(t, "mindrouter_backend_circuit_transitions_total", map[string]string{"backend": "b", "to": "open"}))
	select {
	case kicked := <-f.r.kicks:
		require.Equal(t, id, kicked, "a re-probe was requested")
	default:
		t.Fatal("no re-probe requested")
	}

	f.r.ObserveOutcome(999, true) // unknown backends are ignored
	f.r.Observe(999, Observation{})
}

func TestObserveAverages(t *testing.T) {
	t.Parallel()
	var id int64
	f := newFixture(t, Options{}, func(st *fakeStore) {
		id = st.seedBackend(t, "b", "vllm", "healthy", false, store.ModelSpec{Name: "m", ContextLength: 1024})
	})
	s, ok := f.r.LiveStats(id)
	require.True(t, ok)
	require.Equal(t, LiveStats{Circuit: CircuitClosed}, s, "nothing measured yet")

	// The first measurement is taken as it is: 101 tokens, the first after
	// 1 s, the last after 3 s: 100 tokens in 2 s.
	f.r.Observe(id, Observation{TTFT: time.Second, Duration: 3 * time.Second, CompletionTokens: 101})
	s, _ = f.r.LiveStats(id)
	require.Equal(t, 3*time.Second, s.LatencyEMA)
	require.Equal(t, time.Second, s.TTFTEMA)
	require.InDelta(t, 50, s.Throughput, 1e-9)

	// Then each new one weighs 0.3. Without TTFT, throughput is over the
	// whole duration: 20 tokens in 1 s.
	f.r.Observe(id, Observation{Duration: time.Second, CompletionTokens: 20})
	s, _ = f.r.LiveStats(id)
	require.InDelta(t, (0.3*1+0.7*3)*float64(time.Second), float64(s.LatencyEMA), float64(time.Microsecond))
	require.Equal(t, time.Second, s.TTFTEMA, "no TTFT, no TTFT sample")
	require.InDelta(t, 0.3*20+0.7*50, s.Throughput, 1e-9)

	// Failures and empty observations measure nothing.
	before := s
	f.r.Observe(id, Observation{Failure: true, TTFT: time.Minute, Duration: time.Hour, CompletionTokens: 1})
	f.r.Observe(id, Observation{})
	s, _ = f.r.LiveStats(id)
	require.Equal(t, before.LatencyEMA, s.LatencyEMA)
	require.Equal(t, before.TTFTEMA, s.TTFTEMA)
	require.Equal(t, before.Throughput, s.Throughput)

	_, ok = f.r.LiveStats(999)
	require.False(t, ok)
}

func TestObserveAlpha(t *testing.T) {
	t.Parallel()
	var id int64
	f := newFixture(t, Options{EMAAlpha: 0.5}, func(st *fakeStore) {
		id = st.seedBackend(t, "b", "vllm", "healthy", false, store.ModelSpec{Name: "m", ContextLength: 1024})
	})
	f.r.Observe(id, Observation{TTFT: 100 * time.Millisecond})
	f.r.Observe(id, Observation{TTFT: 300 * time.Millisecond})
	s, _ := f.r.LiveStats(id)
	require.Equal(t, 200*time.Millisecond, s.TTFTEMA)
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
