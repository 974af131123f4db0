package registry

import (
	"log/slog"
)

// ObserveOutcome records how a request on a backend ended. A backend failure
// (connection error, timeout, 5xx, broken stream) counts against the backend;
// anything else resets the count. LiveFailureThreshold failures in a row turn
// a healthy backend unhealthy at once and ask RunHealth for a re-probe, which
// puts it back in service when the backend answers again.
//
// This is the seam for a fuller circuit breaker (an open period before the
// re-probe may close it, half-open trials): it would live here and in
// nextStatus.
func (r *Registry) ObserveOutcome(backendID int64, backendFailure bool) {
	r.mu.Lock()
	e, ok := r.entries[backendID]
	if !ok {
		r.mu.Unlock()
		return
	}
	draining := e.b.Status == StatusDraining
	if !backendFailure {
		if e.b.LiveFailures > 0 {
			e.b.LiveFailures = 0
			r.rebuildLocked()
		}
		r.mu.Unlock()
		if draining {
			r.kick(backendID)
		}
		return
	}
	now := r.now()
	e.b.LiveFailures++
	e.troubledUntil = now.Add(r.opts.FastPollWindow)
	tripped := e.b.LiveFailures >= r.opts.LiveFailureThreshold && e.b.Status == StatusHealthy
	if tripped {
		e.b.Status = StatusUnhealthy
		e.b.LastError = "consecutive request failures"
	}
	name, failures := e.b.Name, e.b.LiveFailures
	r.rebuildLocked()
	r.mu.Unlock()
	if tripped {
		r.log.Info("backend status changed", slog.Int64("backend_id", backendID), slog.String("backend", name),
			slog.String("from", string(StatusHealthy)), slog.String("to", string(StatusUnhealthy)),
			slog.Int("live_failures", failures))
	}
	if tripped || draining {
		r.kick(backendID)
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
