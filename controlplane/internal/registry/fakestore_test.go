package registry

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// fakeStore is an in-memory Store with the store package's semantics:
// idempotent registration, conflicts on names and URLs, ErrInUse for nodes
// that backends reference.
type fakeStore struct {
	mu       sync.Mutex
	now      func() time.Time
	nextID   int64
	nodes    map[int64]store.Node
	backends map[int64]store.Backend
	models   map[int64][]store.Model
	health   map[int64][]store.HealthRecord
	syncs    int
	failSync error
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		now:      func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
		nodes:    map[int64]store.Node{},
		backends: map[int64]store.Backend{},
		models:   map[int64][]store.Model{},
		health:   map[int64][]store.HealthRecord{},
	}
}

func (f *fakeStore) id() int64 { f.nextID++; return f.nextID }

func (f *fakeStore) RegisterNode(_ context.Context, spec store.NodeSpec, upsert bool) (store.Node, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, n := range f.nodes {
		if n.Name != spec.Name {
			continue
		}
		if n.Hostname == spec.Hostname && n.AgentSecretSHA256 == spec.AgentSecretSHA256 {
			return n, false, nil
		}
		if !upsert {
			return store.Node{}, false, fmt.Errorf("register node: %w", store.ErrConflict)
		}
		n.Hostname, n.AgentSecretSHA256 = spec.Hostname, spec.AgentSecretSHA256
		f.nodes[id] = n
		return n, false, nil
	}
	n := store.Node{ID: f.id(), Name: spec.Name, Hostname: spec.Hostname, AgentSecretSHA256: spec.AgentSecretSHA256, Status: "unknown", CreatedAt: f.now()}
	f.nodes[n.ID] = n
	return n, true, nil
}

func (f *fakeStore) ListNodes(context.Context) ([]store.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]store.Node, 0, len(f.nodes))
	for _, n := range f.nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b store.Node) int { return int(a.ID - b.ID) })
	return out, nil
}

func (f *fakeStore) GetNode(_ context.Context, id int64) (store.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[id]
	if !ok {
		return store.Node{}, fmt.Errorf("get node: %w", store.ErrNotFound)
	}
	return n, nil
}

func (f *fakeStore) UpdateNode(_ context.Context, id int64, p store.NodePatch) (store.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nodes[id]
	if !ok {
		return store.Node{}, fmt.Errorf("update node: %w", store.ErrNotFound)
	}
	if p.Name != nil {
		n.Name = *p.Name
	}
	if p.Hostname != nil {
		n.Hostname = *p.Hostname
	}
	if p.AgentSecretSHA256 != nil {
		n.AgentSecretSHA256 = *p.AgentSecretSHA256
	}
	f.nodes[id] = n
	for bid, b := range f.backends {
		if b.NodeID == id {
			b.NodeName = n.Name
			f.backends[bid] = b
		}
	}
	return n, nil
}

func (f *fakeStore) DeleteNode(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.nodes[id]; !ok {
		return fmt.Errorf("delete node: %w", store.ErrNotFound)
	}
	for _, b := range f.backends {
		if b.NodeID == id {
			return fmt.Errorf("delete node: %w", store.ErrInUse)
		}
	}
	delete(f.nodes, id)
	return nil
}

func sameBackendSpec(b store.Backend, s store.BackendSpec) bool {
	return b.URL == s.URL && b.Engine == s.Engine && b.MaxConcurrent == s.MaxConcurrent && b.Priority == s.Priority &&
		b.GPUMemoryGB == s.GPUMemoryGB && b.GPUType == s.GPUType && b.NodeID == s.NodeID && slices.Equal(b.GPUIndices, s.GPUIndices)
}

func (f *fakeStore) applySpec(b store.Backend, s store.BackendSpec) (store.Backend, error) {
	if s.NodeID != 0 {
		n, ok := f.nodes[s.NodeID]
		if !ok {
			return b, fmt.Errorf("node %d: %w", s.NodeID, store.ErrNotFound)
		}
		b.NodeName = n.Name
	} else {
		b.NodeName = ""
	}
	b.Name, b.URL, b.Engine, b.MaxConcurrent, b.Priority = s.Name, s.URL, s.Engine, s.MaxConcurrent, s.Priority
	b.GPUMemoryGB, b.GPUType, b.NodeID, b.GPUIndices = s.GPUMemoryGB, s.GPUType, s.NodeID, slices.Clone(s.GPUIndices)
	return b, nil
}

func (f *fakeStore) SeedBackend(ctx context.Context, s store.BackendSpec) (store.Backend, bool, error) {
	f.mu.Lock()
	for _, b := range f.backends {
		if b.Name == s.Name {
			f.mu.Unlock()
			return b, false, nil
		}
	}
	f.mu.Unlock()
	return f.RegisterBackend(ctx, s, false)
}

func (f *fakeStore) RegisterBackend(_ context.Context, s store.BackendSpec, upsert bool) (store.Backend, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.MaxConcurrent == 0 {
		s.MaxConcurrent = store.DefaultMaxConcurrent
	}
	if len(s.GPUIndices) == 0 {
		s.GPUIndices = nil
	}
	for id, b := range f.backends {
		if b.Name != s.Name {
			if b.URL == s.URL {
				return store.Backend{}, false, fmt.Errorf("register backend: url: %w", store.ErrConflict)
			}
			continue
		}
		if sameBackendSpec(b, s) {
			return b, false, nil
		}
		if !upsert {
			return store.Backend{}, false, fmt.Errorf("register backend: %w", store.ErrConflict)
		}
		b, err := f.applySpec(b, s)
		if err != nil {
			return store.Backend{}, false, err
		}
		f.backends[id] = b
		return b, false, nil
	}
	b, err := f.applySpec(store.Backend{Status: "unknown", CreatedAt: f.now()}, s)
	if err != nil {
		return store.Backend{}, false, err
	}
	b.ID = f.id()
	f.backends[b.ID] = b
	return b, true, nil
}

func (f *fakeStore) ListBackends(context.Context) ([]store.Backend, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]store.Backend, 0, len(f.backends))
	for _, b := range f.backends {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b store.Backend) int { return int(a.ID - b.ID) })
	return out, nil
}

func (f *fakeStore) GetBackend(_ context.Context, id int64) (store.Backend, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.backends[id]
	if !ok {
		return store.Backend{}, fmt.Errorf("get backend: %w", store.ErrNotFound)
	}
	return b, nil
}

func (f *fakeStore) UpdateBackend(_ context.Context, id int64, p store.BackendPatch) (store.Backend, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.backends[id]
	if !ok {
		return store.Backend{}, fmt.Errorf("update backend: %w", store.ErrNotFound)
	}
	s := store.BackendSpec{Name: b.Name, URL: b.URL, Engine: b.Engine, MaxConcurrent: b.MaxConcurrent, Priority: b.Priority,
		GPUMemoryGB: b.GPUMemoryGB, GPUType: b.GPUType, NodeID: b.NodeID, GPUIndices: b.GPUIndices}
	set(&s.Name, p.Name)
	set(&s.URL, p.URL)
	set(&s.MaxConcurrent, p.MaxConcurrent)
	set(&s.Priority, p.Priority)
	set(&s.GPUMemoryGB, p.GPUMemoryGB)
	set(&s.GPUType, p.GPUType)
	set(&s.NodeID, p.NodeID)
	set(&s.GPUIndices, p.GPUIndices)
	b, err := f.applySpec(b, s)
	if err != nil {
		return store.Backend{}, err
	}
	f.backends[id] = b
	return b, nil
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func (f *fakeStore) SetBackendStatus(_ context.Context, id int64, status string) (store.Backend, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.backends[id]
	if !ok {
		return store.Backend{}, fmt.Errorf("set status: %w", store.ErrNotFound)
	}
	b.Status = status
	f.backends[id] = b
	return b, nil
}

func (f *fakeStore) RecordHealth(_ context.Context, id int64, rec store.HealthRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.backends[id]
	if !ok {
		return fmt.Errorf("record health: %w", store.ErrNotFound)
	}
	if rec.Status != "" && b.Status != "disabled" && b.Status != "draining" {
		b.Status = rec.Status
	}
	if rec.Version != "" {
		b.Version = rec.Version
	}
	b.LastError, b.Simulated, b.ConsecutiveFailures = rec.LastError, rec.Simulated, rec.ConsecutiveFailures
	if !rec.CheckedAt.IsZero() {
		b.LastHealthCheck = &rec.CheckedAt
		if rec.Success {
			b.LastSuccess = &rec.CheckedAt
		}
	}
	f.backends[id] = b
	f.health[id] = append(f.health[id], rec)
	return nil
}

func (f *fakeStore) DeleteBackend(_ context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.backends[id]; !ok {
		return fmt.Errorf("delete backend: %w", store.ErrNotFound)
	}
	delete(f.backends, id)
	delete(f.models, id)
	return nil
}

func (f *fakeStore) SyncModels(_ context.Context, backendID int64, specs []store.ModelSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSync != nil {
		return f.failSync
	}
	b, ok := f.backends[backendID]
	if !ok {
		return fmt.Errorf("sync models: %w", store.ErrNotFound)
	}
	f.syncs++
	old := map[string]store.Model{}
	for _, m := range f.models[backendID] {
		old[m.Name] = m
	}
	ms := make([]store.Model, 0, len(specs))
	for _, s := range specs {
		prev, ok := old[s.Name]
		if !ok {
			prev = store.Model{ID: f.id(), CreatedAt: f.now()}
		}
		ms = append(ms, store.Model{ID: prev.ID, CreatedAt: prev.CreatedAt, BackendID: backendID, BackendName: b.Name, Name: s.Name, Family: s.Family,
			ContextLength: s.ContextLength, Capabilities: slices.Clone(s.Capabilities), Loaded: s.Loaded,
			ParameterSize: s.ParameterSize, Quantization: s.Quantization, SizeBytes: s.SizeBytes, EmbeddingLength: s.EmbeddingLength})
	}
	f.models[backendID] = ms
	return nil
}

func (f *fakeStore) ListModels(context.Context) ([]store.Model, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Model
	for _, ms := range f.models {
		out = append(out, ms...)
	}
	return out, nil
}

// seedBackend stores a backend with a status and models directly.
func (f *fakeStore) seedBackend(t testing.TB, name, engine, status string, simulated bool, models ...store.ModelSpec) int64 {
	t.Helper()
	b, _, err := f.RegisterBackend(context.Background(), store.BackendSpec{Name: name, URL: "http://" + name + ":1", Engine: engine, MaxConcurrent: 4}, false)
	require.NoError(t, err)
	f.mu.Lock()
	b.Status, b.Simulated = status, simulated
	f.backends[b.ID] = b
	f.mu.Unlock()
	require.NoError(t, f.SyncModels(context.Background(), b.ID, models))
	f.mu.Lock()
	f.syncs = 0
	f.mu.Unlock()
	return b.ID
}

func (f *fakeStore) syncCount() int { f.mu.Lock(); defer f.mu.Unlock(); return f.syncs }

func (f *fakeStore) backend(id int64) store.Backend {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.backends[id]
}

// healthRecords counts the health records of a backend (one per probe).
func (f *fakeStore) healthRecords(id int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.health[id])
}
