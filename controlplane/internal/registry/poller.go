package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/health"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// RunHealth polls backends until ctx is done: a full poll at once and another
// StartupRepoll later, then a full poll every interval (DefaultPollInterval
// when 0) and a poll of troubled backends (unhealthy, unknown, or failing
// within FastPollWindow) every FastPollInterval. At most ProbeConcurrency
// probes run at once and a backend is never probed twice at the same time.
// It also completes drains, answers the re-probe requests of Observe, and
// announces circuits that turned half-open (on the fast poll). It returns nil once ctx is done and every probe has ended.
func (r *Registry) RunHealth(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	r.launch(ctx, &wg, r.backendIDs(false))
	startup := time.NewTimer(r.opts.StartupRepoll)
	defer startup.Stop()
	full := time.NewTicker(interval)
	defer full.Stop()
	fast := time.NewTicker(r.opts.FastPollInterval)
	defer fast.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-startup.C:
			r.launch(ctx, &wg, r.backendIDs(false))
		case <-full.C:
			r.launch(ctx, &wg, r.backendIDs(false))
		case <-fast.C:
			r.advanceCircuits()
			r.completeDrains(ctx)
			r.launch(ctx, &wg, r.backendIDs(true))
		case id := <-r.kicks:
			r.completeDrain(ctx, id)
			if r.troubled(id) {
				r.launch(ctx, &wg, []int64{id})
			}
		}
	}
}

// kick asks RunHealth to look at a backend soon; it never blocks (a dropped
// kick is covered by the next fast poll).
func (r *Registry) kick(id int64) {
	select {
	case r.kicks <- id:
	default:
	}
}

// backendIDs lists every backend, or with troubledOnly the enabled backends
// that are unhealthy, unknown or failing recently.
func (r *Registry) backendIDs(troubledOnly bool) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	ids := make([]int64, 0, len(r.entries))
	for id, e := range r.entries {
		if !troubledOnly || e.troubledLocked(now) {
			ids = append(ids, id)
		}
	}
	return ids
}

// troubled reports whether a backend needs the fast poll.
func (r *Registry) troubled(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[id]
	return ok && e.troubledLocked(r.now())
}

func (e *entry) troubledLocked(now time.Time) bool {
	b := e.b
	if b.Status.sticky() {
		return false
	}
	return b.Status == StatusUnhealthy || b.Status == StatusUnknown ||
		b.ConsecutiveFailures > 0 || e.tripped(now) || now.Before(e.troubledUntil)
}

// tripped reports whether live traffic says the backend is failing: its
// circuit is not closed, or its last request failed.
func (e *entry) tripped(now time.Time) bool {
	s, failures, _ := e.live.peek(now)
	return s != CircuitClosed || failures > 0
}

// launch probes the given backends in goroutines that wg tracks, skipping
// those with a probe already running.
func (r *Registry) launch(ctx context.Context, wg *sync.WaitGroup, ids []int64) {
	for _, id := range ids {
		if !r.beginProbe(id) {
			continue
		}
		wg.Go(func() {
			defer r.endProbe(id)
			select {
			case r.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-r.sem }()
			if _, err := r.probe(ctx, id); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrNotFound) {
				r.log.WarnContext(ctx, "backend probe", slog.Int64("backend_id", id), slog.Any("error", err))
			}
		})
	}
}

func (r *Registry) beginProbe(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[id]
	if !ok || e.probing {
		return false
	}
	e.probing = true
	return true
}

func (r *Registry) endProbe(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[id]; ok {
		e.probing = false
	}
}

// probe probes one backend now and applies the result.
func (r *Registry) probe(ctx context.Context, id int64) (Backend, error) {
	b, err := r.GetBackend(id)
	if err != nil {
		return Backend{}, err
	}
	start := time.Now()
	res, err := r.prober.Probe(ctx, string(b.Engine), b.URL)
	if ctx.Err() != nil {
		return Backend{}, fmt.Errorf("probe backend %q: %w", b.Name, ctx.Err())
	}
	if err != nil {
		res = health.Result{Err: err.Error()}
	}
	r.metrics.observeProbe(b.Engine, res.Healthy, time.Since(start))
	return r.applyProbe(ctx, id, res)
}

// nextStatus is the status after a probe. Disabled and draining are the
// administrator's and stay; a healthy backend turns unhealthy only after
// threshold failures in a row, an unknown one at its first failure, and one
// whose circuit live traffic tripped also at its first failure (the probe
// confirms what the requests saw).
func nextStatus(cur Status, healthy bool, failures, threshold int, tripped bool) Status {
	switch {
	case cur.sticky():
		return cur
	case healthy:
		return StatusHealthy
	case cur == StatusHealthy && failures < threshold && !tripped:
		return StatusHealthy
	default:
		return StatusUnhealthy
	}
}

// applyProbe turns a probe result into the backend's new state, publishes it,
// and persists it (models only when they changed).
func (r *Registry) applyProbe(ctx context.Context, id int64, res health.Result) (Backend, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()

	r.mu.Lock()
	e, ok := r.entries[id]
	if !ok {
		r.mu.Unlock()
		return Backend{}, fmt.Errorf("backend %d: %w", id, store.ErrNotFound)
	}
	now := r.now()
	b := e.b
	from := b.Status
	b.LastHealthCheck = now
	if res.Healthy {
		b.ConsecutiveFailures, b.LastError, b.LastSuccess = 0, "", now
		b.Version, b.Simulated = cmp.Or(res.Version, b.Version), res.Simulated
	} else {
		b.ConsecutiveFailures++
		b.LastError = res.Err
		e.troubledUntil = now.Add(r.opts.FastPollWindow)
	}
	s, _, _ := e.live.peek(now)
	b.Status = nextStatus(from, res.Healthy, b.ConsecutiveFailures, r.opts.UnhealthyThreshold, s != CircuitClosed)
	e.b = b
	syncModels := res.Healthy && !sameModels(e.models, res.Models)
	r.rebuildLocked()
	r.mu.Unlock()

	if from != b.Status {
		attrs := []any{slog.Int64("backend_id", id), slog.String("backend", b.Name),
			slog.String("from", string(from)), slog.String("to", string(b.Status))}
		if b.LastError != "" {
			attrs = append(attrs, slog.String("error", b.LastError))
		}
		r.log.InfoContext(ctx, "backend status changed", attrs...)
	}

	rec := store.HealthRecord{
		Status: string(b.Status), Version: b.Version, LastError: b.LastError, Simulated: b.Simulated,
		CheckedAt: now, Success: res.Healthy, ConsecutiveFailures: b.ConsecutiveFailures,
	}
	if err := r.st.RecordHealth(ctx, id, rec); err != nil {
		r.log.WarnContext(ctx, "record backend health", slog.String("backend", b.Name), slog.Any("error", err))
	}
	if syncModels {
		if err := r.syncModels(ctx, b, res.Models); err != nil {
			// The old models stay; the next probe tries again.
			r.log.WarnContext(ctx, "sync backend models", slog.String("backend", b.Name), slog.Any("error", err))
		}
	}
	return r.GetBackend(id)
}

// syncModels persists a backend's discovered models and publishes them with
// the ids the store gave them; r.wmu must be held.
func (r *Registry) syncModels(ctx context.Context, b Backend, specs []store.ModelSpec) error {
	if err := r.st.SyncModels(ctx, b.ID, specs); err != nil {
		return err
	}
	var models []Model
	if stored, err := r.st.ListModels(ctx); err == nil {
		for _, sm := range stored {
			if sm.BackendID == b.ID {
				models = append(models, modelFromStore(sm))
			}
		}
	} else {
		for _, s := range specs {
			models = append(models, modelFromSpec(b.ID, b.Name, s))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[b.ID]; ok {
		e.models = models
		r.rebuildLocked()
	}
	r.log.InfoContext(ctx, "backend models discovered", slog.String("backend", b.Name), slog.Int("models", len(models)))
	return nil
}

// completeDrains turns idle draining backends into disabled ones.
func (r *Registry) completeDrains(ctx context.Context) {
	r.mu.Lock()
	var ids []int64
	for id, e := range r.entries {
		if e.b.Status == StatusDraining {
			ids = append(ids, id)
		}
	}
	r.mu.Unlock()
	for _, id := range ids {
		r.completeDrain(ctx, id)
	}
}

// completeDrain disables a draining backend once nothing is in flight on it.
func (r *Registry) completeDrain(ctx context.Context, id int64) {
	b, err := r.GetBackend(id)
	if err != nil || b.Status != StatusDraining || r.InFlight(id) > 0 {
		return
	}
	if _, err := r.setStatus(ctx, id, StatusDraining, StatusDisabled); err != nil && ctx.Err() == nil {
		r.log.WarnContext(ctx, "complete drain", slog.String("backend", b.Name), slog.Any("error", err))
	}
}
