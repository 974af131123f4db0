package registry

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// The store's errors name the operation and the row, so the registry passes
// them on as they are.

// RegisterBackend creates a backend, or returns the existing one when the
// same definition is registered again (created false); a different
// definition under the same name is a conflict unless upsert is set. A new
// backend, or one whose URL changed, is probed before the call returns (a
// failed probe is recorded as its health, not returned as an error).
func (r *Registry) RegisterBackend(ctx context.Context, spec store.BackendSpec, upsert bool) (Backend, bool, error) {
	return r.register(ctx, func() (store.Backend, bool, error) { return r.st.RegisterBackend(ctx, spec, upsert) })
}

// SeedBackend registers a backend given at start-up when none has its name and
// otherwise returns the existing one unchanged, whatever an admin set on it.
func (r *Registry) SeedBackend(ctx context.Context, spec store.BackendSpec) (Backend, bool, error) {
	return r.register(ctx, func() (store.Backend, bool, error) { return r.st.SeedBackend(ctx, spec) })
}

// register runs a store registration and publishes its result.
func (r *Registry) register(ctx context.Context, write func() (store.Backend, bool, error)) (Backend, bool, error) {
	r.wmu.Lock()
	sb, created, err := write()
	if err != nil {
		r.wmu.Unlock()
		return Backend{}, false, err
	}
	moved := r.putSettings(sb)
	r.wmu.Unlock()
	if created {
		r.log.InfoContext(ctx, "backend registered", slog.Int64("backend_id", sb.ID), slog.String("backend", sb.Name), slog.String("engine", sb.Engine))
	}
	if created || moved {
		return r.probeOrCurrent(ctx, sb.ID), created, nil
	}
	b, err := r.GetBackend(sb.ID)
	return b, created, err
}

// UpdateBackend changes the settings that patch sets; a backend whose URL
// changed is probed before the call returns.
func (r *Registry) UpdateBackend(ctx context.Context, id int64, patch store.BackendPatch) (Backend, error) {
	r.wmu.Lock()
	sb, err := r.st.UpdateBackend(ctx, id, patch)
	if err != nil {
		r.wmu.Unlock()
		return Backend{}, err
	}
	moved := r.putSettings(sb)
	r.wmu.Unlock()
	if moved {
		return r.probeOrCurrent(ctx, id), nil
	}
	return r.GetBackend(id)
}

// putSettings publishes a stored backend's settings, adding the backend when
// it is new; it reports whether the backend is new or its address changed.
// r.wmu must be held.
func (r *Registry) putSettings(sb store.Backend) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[sb.ID]
	if !ok {
		r.entries[sb.ID] = &entry{b: backendFromStore(sb), live: newLive()}
		r.rebuildLocked()
		return true
	}
	moved := e.b.URL != sb.URL
	if moved {
		// Another server: what the old one did says nothing about it.
		r.forget(e.b.URL)
		e.live.reset()
	}
	e.b = e.b.withStoreSettings(sb)
	r.rebuildLocked()
	return moved
}

// probeOrCurrent probes a backend and returns it; when the probe cannot be
// made (the caller went away) it returns the backend as it is.
func (r *Registry) probeOrCurrent(ctx context.Context, id int64) Backend {
	if b, err := r.probe(ctx, id); err == nil {
		return b
	}
	b, _ := r.GetBackend(id)
	return b
}

// EnableBackend puts a disabled or draining backend back into service: its
// status becomes unknown and it is probed before the call returns. An
// enabled backend is just probed.
func (r *Registry) EnableBackend(ctx context.Context, id int64) (Backend, error) {
	b, err := r.GetBackend(id)
	if err != nil {
		return Backend{}, err
	}
	if b.Status.sticky() {
		if _, err := r.setStatus(ctx, id, "", StatusUnknown); err != nil {
			return Backend{}, err
		}
	}
	return r.probe(ctx, id)
}

// DisableBackend takes a backend out of service at once; requests in flight
// finish.
func (r *Registry) DisableBackend(ctx context.Context, id int64) (Backend, error) {
	return r.setStatus(ctx, id, "", StatusDisabled)
}

// DrainBackend stops new requests to a backend; it becomes disabled when the
// requests in flight have finished (at once when there are none).
func (r *Registry) DrainBackend(ctx context.Context, id int64) (Backend, error) {
	b, err := r.setStatus(ctx, id, "", StatusDraining)
	if err != nil {
		return Backend{}, err
	}
	if r.InFlight(id) == 0 {
		return r.setStatus(ctx, id, StatusDraining, StatusDisabled)
	}
	return b, nil
}

// RefreshBackend re-runs health and model discovery now.
func (r *Registry) RefreshBackend(ctx context.Context, id int64) (Backend, error) {
	return r.probe(ctx, id)
}

// RemoveBackend deletes a backend; it refuses (ErrInUse) while requests are
// in flight on it.
func (r *Registry) RemoveBackend(ctx context.Context, id int64) error {
	if n := r.InFlight(id); n > 0 {
		return fmt.Errorf("remove backend %d: %d requests in flight, drain it first: %w", id, n, store.ErrInUse)
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if err := r.st.DeleteBackend(ctx, id); err != nil {
		return err
	}
	r.mu.Lock()
	e := r.entries[id]
	delete(r.entries, id)
	r.rebuildLocked()
	r.mu.Unlock()
	if e != nil {
		r.forget(e.b.URL)
		r.log.InfoContext(ctx, "backend removed", slog.Int64("backend_id", id), slog.String("backend", e.b.Name))
	}
	return nil
}

// setStatus sets an administrator's status, persisting it first. With a
// non-empty from, nothing changes unless the backend is in that status.
// Leaving disabled or draining clears the failure counts.
func (r *Registry) setStatus(ctx context.Context, id int64, from, to Status) (Backend, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	cur, err := r.GetBackend(id)
	if err != nil {
		return Backend{}, err
	}
	if (from != "" && cur.Status != from) || cur.Status == to {
		return cur, nil
	}
	sb, err := r.st.SetBackendStatus(ctx, id, string(to))
	if err != nil {
		return Backend{}, err
	}
	r.mu.Lock()
	if e, ok := r.entries[id]; ok {
		e.b = e.b.withStoreSettings(sb)
		e.b.Status = to
		if to == StatusUnknown {
			// An administrator put it back in service: start afresh.
			e.b.ConsecutiveFailures = 0
			e.live.reset()
		}
		r.rebuildLocked()
	}
	r.mu.Unlock()
	r.log.InfoContext(ctx, "backend status changed", slog.Int64("backend_id", id), slog.String("backend", cur.Name),
		slog.String("from", string(cur.Status)), slog.String("to", string(to)))
	return r.GetBackend(id)
}

// RegisterNode creates a node, or returns the existing one when the same
// definition is registered again; a different definition under the same
// name is a conflict unless upsert is set. The spec carries the agent
// secret's SHA-256 digest, never the secret.
func (r *Registry) RegisterNode(ctx context.Context, spec store.NodeSpec, upsert bool) (store.Node, bool, error) {
	n, created, err := r.st.RegisterNode(ctx, spec, upsert)
	if err != nil {
		return store.Node{}, false, err
	}
	return n, created, nil
}

// ListNodes lists nodes.
func (r *Registry) ListNodes(ctx context.Context) ([]store.Node, error) {
	ns, err := r.st.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	return ns, nil
}

// GetNode returns one node.
func (r *Registry) GetNode(ctx context.Context, id int64) (store.Node, error) {
	n, err := r.st.GetNode(ctx, id)
	if err != nil {
		return store.Node{}, err
	}
	return n, nil
}

// UpdateNode changes the fields that patch sets; backends show the node's
// new name at once.
func (r *Registry) UpdateNode(ctx context.Context, id int64, patch store.NodePatch) (store.Node, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	n, err := r.st.UpdateNode(ctx, id, patch)
	if err != nil {
		return store.Node{}, err
	}
	r.mu.Lock()
	for _, e := range r.entries {
		if e.b.NodeID == id {
			e.b.NodeName = n.Name
		}
	}
	r.rebuildLocked()
	r.mu.Unlock()
	return n, nil
}

// DeleteNode removes a node that no backend references (ErrInUse otherwise).
func (r *Registry) DeleteNode(ctx context.Context, id int64) error {
	if err := r.st.DeleteNode(ctx, id); err != nil {
		return err
	}
	return nil
}

// forget drops what the prober cached about a backend URL, when it caches.
func (r *Registry) forget(url string) {
	if f, ok := r.prober.(interface{ Forget(baseURL string) }); ok {
		f.Forget(url)
	}
}
