package registry

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/health"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// twoBackends seeds two healthy backends serving "m"; ids a, b.
func twoBackends(t *testing.T, opts Options) (f *fixture, a, b int64) {
	t.Helper()
	spec := store.ModelSpec{Name: "m", ContextLength: 1024, Capabilities: []string{"completion"}}
	f = newFixture(t, opts, func(st *fakeStore) {
		a = st.seedBackend(t, "a", "vllm", "healthy", false, spec)
		b = st.seedBackend(t, "b", "vllm", "healthy", false, spec)
	})
	return f, a, b
}

func failN(r *Registry, id int64, n int) {
	for range n {
		r.Observe(id, Observation{Failure: true})
	}
}

func requireAcquire(t *testing.T, r *Registry, id int64, wantOK, wantTrial bool) {
	t.Helper()
	ok, trial := r.AcquireCircuit(id)
	require.Equal(t, wantOK, ok, "ok")
	require.Equal(t, wantTrial, trial, "trial")
}

func TestCircuitBreakerTransitions(t *testing.T) {
	t.Parallel()
	f, id, _ := twoBackends(t, Options{})
	r := f.r

	// Closed: everything passes and nothing is held.
	require.Equal(t, CircuitClosed, r.Circuit(id))
	requireAcquire(t, r, id, true, false)
	requireAcquire(t, r, id, true, false)

	// Two failures, a success, two failures: still closed (in a row only).
	failN(r, id, 2)
	r.Observe(id, Observation{})
	failN(r, id, 2)
	require.Equal(t, CircuitClosed, r.Circuit(id))

	// The third in a row opens it for 30 s.
	failN(r, id, 1)
	require.Equal(t, CircuitOpen, r.Circuit(id))
	requireAcquire(t, r, id, false, false)
	s, _ := r.LiveStats(id)
	require.Equal(t, f.clock.Now().Add(30*time.Second), s.OpenUntil)

	// Outcomes of requests sent before it opened change nothing.
	r.Observe(id, Observation{})
	failN(r, id, 5)
	f.clock.Advance(30*time.Second - time.Nanosecond)
	require.Equal(t, CircuitOpen, r.Circuit(id))
	requireAcquire(t, r, id, false, false)

	// Half-open: exactly one trial.
	f.clock.Advance(time.Nanosecond)
	require.Equal(t, CircuitHalfOpen, r.Circuit(id))
	requireAcquire(t, r, id, true, true)
	requireAcquire(t, r, id, false, false)
	require.Equal(t, CircuitHalfOpen, r.Circuit(id))

	// The trial fails: open again, for twice as long.
	failN(r, id, 1)
	require.Equal(t, CircuitOpen, r.Circuit(id))
	f.clock.Advance(59 * time.Second)
	require.Equal(t, CircuitOpen, r.Circuit(id))
	f.clock.Advance(time.Second)
	require.Equal(t, CircuitHalfOpen, r.Circuit(id))

	// The trial succeeds: closed, history forgotten.
	requireAcquire(t, r, id, true, true)
	r.Observe(id, Observation{Duration: time.Second})
	require.Equal(t, CircuitClosed, r.Circuit(id))
	requireAcquire(t, r, id, true, false)
	b, _ := r.GetBackend(id)
	require.Zero(t, b.LiveFailures)
	require.Equal(t, 1.0, f.counter(t, "mindrouter_backend_circuit_transitions_total", map[string]string{"backend": "a", "to": "closed"}))
	require.Equal(t, 2.0, f.counter(t, "mindrouter_backend_circuit_transitions_total", map[string]string{"backend": "a", "to": "open"}))

	// The next opening is back to 30 s.
	failN(r, id, 3)
	f.clock.Advance(30 * time.Second)
	require.Equal(t, CircuitHalfOpen, r.Circuit(id))
}

func TestCircuitBackoffIsCapped(t *testing.T) {
	t.Parallel()
	f, id, _ := twoBackends(t, Options{CircuitThreshold: 1, CircuitOpenFor: 10 * time.Second, CircuitMaxOpenFor: 25 * time.Second})
	r := f.r
	var periods []time.Duration
	for range 4 {
		failN(r, id, 1)
		s, _ := r.LiveStats(id)
		d := s.OpenUntil.Sub(f.clock.Now())
		periods = append(periods, d)
		f.clock.Advance(d)
		requireAcquire(t, r, id, true, true)
	}
	require.Equal(t, []time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second, 25 * time.Second}, periods)
}

func TestCircuitTrialRelease(t *testing.T) {
	t.Parallel()
	f, id, _ := twoBackends(t, Options{CircuitTrialTimeout: 5 * time.Second})
	r := f.r
	failN(r, id, 3)
	f.clock.Advance(DefaultCircuitOpenFor)

	// A trial abandoned without a verdict lets the next request be the trial.
	requireAcquire(t, r, id, true, true)
	r.AbandonTrial(id)
	requireAcquire(t, r, id, true, true)
	requireAcquire(t, r, id, false, false)

	// A trial never heard of again stops counting after the trial timeout.
	f.clock.Advance(5*time.Second - time.Nanosecond)
	requireAcquire(t, r, id, false, false)
	f.clock.Advance(time.Nanosecond)
	requireAcquire(t, r, id, true, true)

	// Abandoning does nothing to a closed circuit; unknown backends pass nothing.
	r.Observe(id, Observation{})
	r.AbandonTrial(id)
	require.Equal(t, CircuitClosed, r.Circuit(id))
	requireAcquire(t, r, 999, false, false)
	r.AbandonTrial(999)
	require.Equal(t, CircuitState(""), r.Circuit(999))
}

func TestCircuitOneTrialUnderContention(t *testing.T) {
	t.Parallel()
	f, id, _ := twoBackends(t, Options{})
	failN(f.r, id, 3)
	f.clock.Advance(DefaultCircuitOpenFor)
	var trials, passed atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if ok, trial := f.r.AcquireCircuit(id); ok {
				passed.Add(1)
				if trial {
					trials.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, passed.Load())
	require.EqualValues(t, 1, trials.Load())
}

func TestCandidatesExcludeOpenCircuits(t *testing.T) {
	t.Parallel()
	f, a, b := twoBackends(t, Options{})
	r := f.r

	failN(r, a, 3)
	got, ex, err := r.Screen("m", opChat, nil)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, b, got[0].Backend.ID)
	require.Equal(t, CircuitClosed, got[0].Backend.Circuit)
	require.Equal(t, []Exclusion{{BackendID: a, BackendName: "a", Reason: ReasonCircuitOpen}}, ex)

	// Both open: no candidate; retry when the first turns half-open.
	f.clock.Advance(10 * time.Second)
	failN(r, b, 3)
	_, ex, err = r.Screen("m", opChat, nil)
	require.ErrorIs(t, err, ErrCircuitOpen)
	require.ErrorIs(t, err, ErrNoHealthyBackend)
	require.Len(t, ex, 2)
	var ra interface{ RetryAfter() time.Duration }
	require.ErrorAs(t, err, &ra)
	require.Equal(t, 20*time.Second, ra.RetryAfter())

	// Half-open is a candidate, whether or not its trial is taken: the
	// choice (AcquireCircuit) decides.
	f.clock.Advance(20 * time.Second)
	requireAcquire(t, r, a, true, true)
	got, err = r.Candidates("m", opChat, nil)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, a, got[0].Backend.ID)
	require.Equal(t, CircuitHalfOpen, got[0].Backend.Circuit)
}

func TestCircuitHalfOpenIsAnnounced(t *testing.T) {
	t.Parallel()
	f, id, _ := twoBackends(t, Options{})
	sub := subscribe(t, f.r)
	failN(f.r, id, 3)
	require.True(t, sub.drained(), "opening is announced")
	f.r.advanceCircuits()
	require.False(t, sub.drained(), "nothing to announce yet")
	f.clock.Advance(DefaultCircuitOpenFor)
	f.r.advanceCircuits()
	require.True(t, sub.drained(), "the half-open circuit is announced, so that waiters are offered it")
	f.r.advanceCircuits()
	require.False(t, sub.drained(), "once")
	f.r.Observe(id, Observation{})
	require.True(t, sub.drained(), "closing is announced")
}

func TestEnableAndMoveResetTheCircuit(t *testing.T) {
	t.Parallel()
	p := &stubProber{}
	f, a, b := twoBackends(t, Options{Prober: p})
	failN(f.r, a, 3)
	failN(f.r, b, 3)

	_, err := f.r.DisableBackend(t.Context(), a)
	require.NoError(t, err)
	_, err = f.r.EnableBackend(t.Context(), a)
	require.NoError(t, err)
	require.Equal(t, CircuitClosed, f.r.Circuit(a), "an administrator put it back in service")

	_, err = f.r.UpdateBackend(t.Context(), b, store.BackendPatch{URL: new("http://elsewhere:1")})
	require.NoError(t, err)
	require.Equal(t, CircuitClosed, f.r.Circuit(b), "another server")
}

// stubProber answers every probe with the same verdict.
type stubProber struct{ down atomic.Bool }

func (p *stubProber) Probe(context.Context, string, string) (health.Result, error) {
	if p.down.Load() {
		return health.Result{Err: "connection refused"}, nil
	}
	return health.Result{Healthy: true}, nil
}

func TestTrippedBackendTurnsUnhealthyAtFirstFailedProbe(t *testing.T) {
	t.Parallel()
	p := &stubProber{}
	f, a, b := twoBackends(t, Options{Prober: p})
	p.down.Store(true)

	// Without live failures a healthy backend needs three failed probes.
	got, err := f.r.RefreshBackend(t.Context(), b)
	require.NoError(t, err)
	require.Equal(t, StatusHealthy, got.Status)

	// With its circuit open, the first failed probe confirms it is dead.
	failN(f.r, a, 3)
	got, err = f.r.RefreshBackend(t.Context(), a)
	require.NoError(t, err)
	require.Equal(t, StatusUnhealthy, got.Status)

	// Back up: the probe makes it healthy, the circuit still waits out its period.
	p.down.Store(false)
	got, err = f.r.RefreshBackend(t.Context(), a)
	require.NoError(t, err)
	require.Equal(t, StatusHealthy, got.Status)
	require.Equal(t, CircuitOpen, got.Circuit)
}
