package registry

import (
	"log/slog"
	"time"
)

// Observation is how one request on a backend ended, as the data plane
// reported it in Release.
type Observation struct {
	// Failure is true when the backend failed the request: connection error,
	// timeout, 5xx, broken stream (OUTCOME_BACKEND_ERROR). A 4xx answer
	// (OUTCOME_REJECTED) is not a failure: the backend is alive.
	Failure bool
	// TTFT is the time from dispatch to the first byte; 0 when unknown.
	TTFT time.Duration
	// Duration is the time from dispatch to the end of the answer; 0 when
	// unknown.
	Duration time.Duration
	// CompletionTokens is the tokens generated.
	CompletionTokens int64
}

// LiveStats is what live traffic says about a backend.
type LiveStats struct {
	Circuit CircuitState
	// LiveFailures counts failed requests since the last success.
	LiveFailures int
	// OpenUntil is when an open circuit turns half-open; zero otherwise.
	OpenUntil time.Time
	// LatencyEMA averages the whole duration of successful requests; 0 when
	// none was measured.
	LatencyEMA time.Duration
	// TTFTEMA averages the time to the first byte; 0 when none was measured.
	TTFTEMA time.Duration
	// Throughput averages generation speed in tokens per second; 0 when none
	// was measured.
	Throughput float64
}

// LiveStats returns a backend's breaker state and averages; false for an
// unknown backend.
func (r *Registry) LiveStats(backendID int64) (LiveStats, bool) {
	lv := r.liveOf(backendID)
	if lv == nil {
		return LiveStats{}, false
	}
	return lv.stats(r.now()), true
}

// Observe records how a request on a backend ended. Successful requests feed
// the backend's averages (exponential, alpha EMAAlpha): latency from
// Duration, time to first byte from TTFT, throughput from CompletionTokens
// over the generation time; zero fields are not measurements.
//
// It also drives the circuit breaker (see the package doc): CircuitThreshold
// failures in a row open the circuit for CircuitOpenFor and ask for a
// re-probe; a success resets the count; in half-open the outcome closes the
// circuit (success) or re-opens it for twice the last period, at most
// CircuitMaxOpenFor (failure); outcomes arriving while it is open change
// nothing. Subscribers are told whenever the circuit changes state. A success
// takes no registry-wide lock.
//
// Call it for every Release that says something about the backend:
// OUTCOME_SUCCESS with the measurements, OUTCOME_REJECTED (a 4xx: alive)
// with Failure false and no measurements (a refusal's speed says nothing),
// OUTCOME_BACKEND_ERROR with Failure true. A client that went away says
// nothing: do not call it (give a trial back with AbandonTrial instead).
func (r *Registry) Observe(backendID int64, o Observation) {
	v := r.view.Load()
	lv := v.live[backendID]
	if lv == nil {
		return
	}
	now := r.now()
	tr := lv.observe(now, o, r.breaker)
	b := v.backends[v.byID[backendID]]
	if o.Failure {
		r.markTroubled(backendID, now)
	}
	if tr.from != tr.to {
		r.metrics.observeCircuit(b.Name, tr.to)
		attrs := []any{slog.Int64("backend_id", backendID), slog.String("backend", b.Name),
			slog.String("from", string(tr.from)), slog.String("to", string(tr.to))}
		if tr.to == CircuitOpen {
			attrs = append(attrs, slog.Int("live_failures", tr.failures), slog.Duration("open_for", tr.openFor))
		}
		r.log.Info("backend circuit changed", attrs...)
		r.notify()
	}
	if (tr.to == CircuitOpen && tr.from != tr.to) || b.Status == StatusDraining {
		// A re-probe tells a dead backend from one that fails requests only;
		// a draining backend may have just become idle.
		r.kick(backendID)
	}
}

// ObserveOutcome records an outcome without measurements:
// Observe(backendID, Observation{Failure: backendFailure}).
func (r *Registry) ObserveOutcome(backendID int64, backendFailure bool) {
	r.Observe(backendID, Observation{Failure: backendFailure})
}

// markTroubled puts a backend on the fast poll for FastPollWindow.
func (r *Registry) markTroubled(backendID int64, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[backendID]; ok {
		e.troubledUntil = now.Add(r.opts.FastPollWindow)
	}
}

// MarkLoaded records that a backend has a model in memory (after it served a
// request); the next discovery replaces this with what the engine reports.
func (r *Registry) MarkLoaded(backendID int64, model string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[backendID]
	if !ok {
		return
	}
	for i := range e.models {
		if e.models[i].Name == model || modelKey(e.models[i].Name) == modelKey(model) {
			if e.models[i].Loaded {
				return
			}
			e.models[i].Loaded = true
			r.rebuildLocked()
			return
		}
	}
}
