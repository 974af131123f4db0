package registry

import (
	"context"
	"slices"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// Store is what the registry needs from the database (the store package).
type Store interface {
	RegisterNode(ctx context.Context, spec store.NodeSpec, upsert bool) (store.Node, bool, error)
	ListNodes(ctx context.Context) ([]store.Node, error)
	GetNode(ctx context.Context, id int64) (store.Node, error)
	UpdateNode(ctx context.Context, id int64, patch store.NodePatch) (store.Node, error)
	DeleteNode(ctx context.Context, id int64) error

	RegisterBackend(ctx context.Context, spec store.BackendSpec, upsert bool) (store.Backend, bool, error)
	SeedBackend(ctx context.Context, spec store.BackendSpec) (store.Backend, bool, error)
	ListBackends(ctx context.Context) ([]store.Backend, error)
	GetBackend(ctx context.Context, id int64) (store.Backend, error)
	UpdateBackend(ctx context.Context, id int64, patch store.BackendPatch) (store.Backend, error)
	SetBackendStatus(ctx context.Context, id int64, status string) (store.Backend, error)
	RecordHealth(ctx context.Context, id int64, rec store.HealthRecord) error
	DeleteBackend(ctx context.Context, id int64) error

	SyncModels(ctx context.Context, backendID int64, models []store.ModelSpec) error
	ListModels(ctx context.Context) ([]store.Model, error)
}

// backendFromStore converts a stored backend (without live state or models).
func backendFromStore(b store.Backend) Backend {
	status := Status(b.Status)
	switch status {
	case StatusHealthy, StatusUnhealthy, StatusDisabled, StatusDraining:
	default:
		status = StatusUnknown
	}
	return Backend{
		ID:                  b.ID,
		Name:                b.Name,
		URL:                 b.URL,
		Engine:              Engine(b.Engine),
		Status:              status,
		MaxConcurrent:       b.MaxConcurrent,
		Priority:            b.Priority,
		GPUMemoryGB:         b.GPUMemoryGB,
		GPUType:             b.GPUType,
		NodeID:              b.NodeID,
		NodeName:            b.NodeName,
		GPUIndices:          slices.Clone(b.GPUIndices),
		Version:             b.Version,
		Simulated:           b.Simulated,
		LastError:           b.LastError,
		ConsecutiveFailures: b.ConsecutiveFailures,
		LastHealthCheck:     deref(b.LastHealthCheck),
		LastSuccess:         deref(b.LastSuccess),
		CreatedAt:           b.CreatedAt,
	}
}

// withStoreSettings copies the administrator's settings of a stored backend
// onto a live one, keeping the live health state.
func (b Backend) withStoreSettings(s store.Backend) Backend {
	b.Name, b.URL, b.Engine = s.Name, s.URL, Engine(s.Engine)
	b.MaxConcurrent, b.Priority = s.MaxConcurrent, s.Priority
	b.GPUMemoryGB, b.GPUType = s.GPUMemoryGB, s.GPUType
	b.NodeID, b.NodeName, b.GPUIndices = s.NodeID, s.NodeName, slices.Clone(s.GPUIndices)
	return b
}

// modelFromStore converts a stored model.
func modelFromStore(m store.Model) Model {
	return Model{
		ID:              m.ID,
		BackendID:       m.BackendID,
		BackendName:     m.BackendName,
		Name:            m.Name,
		Family:          m.Family,
		ContextLength:   m.ContextLength,
		Capabilities:    slices.Clone(m.Capabilities),
		Loaded:          m.Loaded,
		ParameterSize:   m.ParameterSize,
		Quantization:    m.Quantization,
		SizeBytes:       m.SizeBytes,
		EmbeddingLength: m.EmbeddingLength,
		CreatedAt:       m.CreatedAt,
	}
}

// modelFromSpec converts a discovered model that the store has not numbered.
func modelFromSpec(backendID int64, backendName string, s store.ModelSpec) Model {
	return Model{
		BackendID:       backendID,
		BackendName:     backendName,
		Name:            s.Name,
		Family:          s.Family,
		ContextLength:   s.ContextLength,
		Capabilities:    slices.Clone(s.Capabilities),
		Loaded:          s.Loaded,
		ParameterSize:   s.ParameterSize,
		Quantization:    s.Quantization,
		SizeBytes:       s.SizeBytes,
		EmbeddingLength: s.EmbeddingLength,
	}
}

// sameModels reports whether discovered specs describe the models already held.
func sameModels(have []Model, specs []store.ModelSpec) bool {
	if len(have) != len(specs) {
		return false
	}
	byName := make(map[string]Model, len(have))
	for _, m := range have {
		byName[m.Name] = m
	}
	for _, s := range specs {
		m, ok := byName[s.Name]
		if !ok || m.Family != s.Family || m.ContextLength != s.ContextLength || m.Loaded != s.Loaded ||
			m.ParameterSize != s.ParameterSize || m.Quantization != s.Quantization ||
			m.SizeBytes != s.SizeBytes || m.EmbeddingLength != s.EmbeddingLength ||
			!sameSet(m.Capabilities, s.Capabilities) {
			return false
		}
	}
	return true
}

// sameSet reports whether two string lists hold the same elements.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
