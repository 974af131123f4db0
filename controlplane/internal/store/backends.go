package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/backend"
	"github.com/mindrouter/mindrouter/ent/model"
)

// Engines a backend can run.
const (
	EngineOllama = "ollama"
	EngineVLLM   = "vllm"
	EngineTTS    = "tts"
	EngineSTT    = "stt"
)

// Statuses of a backend. Disabled and draining are administrative: only
// SetBackendStatus sets or clears them.
const (
	BackendHealthy   = "healthy"
	BackendUnhealthy = "unhealthy"
	BackendDisabled  = "disabled"
	BackendDraining  = "draining"
	BackendUnknown   = "unknown"
)

// DefaultMaxConcurrent is a backend's concurrency limit when none is given.
const DefaultMaxConcurrent = 4

// Backend is one inference endpoint.
type Backend struct {
	ID            int64
	Name          string
	URL           string
	Engine        string
	Status        string
	MaxConcurrent int
	Priority      int
	GPUMemoryGB   float64
	GPUType       string
	GPUIndices    []int
	// NodeID is 0 when the backend is on no registered node.
	NodeID              int64
	NodeName            string
	Version             string
	Simulated           bool
	ConsecutiveFailures int
	LastHealthCheck     *time.Time
	LastSuccess         *time.Time
	LastError           string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// BackendSpec is a backend's definition as registered by an operator.
type BackendSpec struct {
	Name   string
	URL    string
	Engine string
	// MaxConcurrent of 0 means DefaultMaxConcurrent.
	MaxConcurrent int
	Priority      int
	GPUMemoryGB   float64
	GPUType       string
	// NodeID of 0 means no node.
	NodeID     int64
	GPUIndices []int
}

// BackendPatch changes the fields that are not nil. NodeID pointing at 0 detaches
// the backend from its node.
type BackendPatch struct {
	Name          *string
	URL           *string
	MaxConcurrent *int
	Priority      *int
	GPUMemoryGB   *float64
	GPUType       *string
	NodeID        *int64
	GPUIndices    *[]int
}

func (spec BackendSpec) normalized() BackendSpec {
	if spec.MaxConcurrent == 0 {
		spec.MaxConcurrent = DefaultMaxConcurrent
	}
	if len(spec.GPUIndices) == 0 {
		spec.GPUIndices = nil
	}
	return spec
}

// sameDefinition reports whether b is the backend spec describes.
func (spec BackendSpec) sameDefinition(b *ent.Backend) bool {
	var nodeID int64
	if b.NodeID != nil {
		nodeID = int64(*b.NodeID)
	}
	return b.Name == spec.Name && b.URL == spec.URL && string(b.Engine) == spec.Engine &&
		b.MaxConcurrent == spec.MaxConcurrent && b.Priority == spec.Priority &&
		b.GpuMemoryGB == spec.GPUMemoryGB && b.GpuType == spec.GPUType && nodeID == spec.NodeID &&
		slices.Equal(b.GpuIndices, spec.GPUIndices)
}

// RegisterBackend creates a backend with status unknown. Registering the same
// definition again returns the stored backend with created=false; a different
// definition under the same name is ErrConflict unless upsert is set, and a URL that
// another backend uses is always ErrConflict. An unknown node is ErrNotFound.
func (s *Store) RegisterBackend(ctx context.Context, spec BackendSpec, upsert bool) (Backend, bool, error) {
	return s.register(ctx, fmt.Sprintf("register backend %q", spec.Name), spec,
		func(spec BackendSpec) (int, bool, error) { return s.registerBackend(ctx, spec, upsert) })
}

// register validates spec and runs attempt twice at most: a concurrent
// registration of the same name can win the insert between the attempt's
// lookup and its create; the second pass then sees its row.
func (s *Store) register(ctx context.Context, op string, spec BackendSpec, attempt func(BackendSpec) (id int, created bool, err error)) (Backend, bool, error) {
	spec = spec.normalized()
	if err := validateBackendSpec(spec); err != nil {
		return Backend{}, false, invalid(op, "%s", err)
	}
	var (
		id      int
		created bool
		err     error
	)
	for range 2 {
		id, created, err = attempt(spec)
		if !ent.IsConstraintError(err) || !created {
			break
		}
	}
	if err != nil {
		return Backend{}, false, dbErr(op, err)
	}
	b, err := s.GetBackend(ctx, int64(id))
	if err != nil {
		return Backend{}, false, fmt.Errorf("%s: %w", op, err)
	}
	return b, created, nil
}

// registerBackend is one attempt of RegisterBackend; created reports whether it
// tried to insert, also when the insert failed.
func (s *Store) registerBackend(ctx context.Context, spec BackendSpec, upsert bool) (id int, created bool, err error) {
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		if err := checkNode(ctx, tx, spec.NodeID); err != nil {
			return err
		}
		existing, err := tx.Backend.Query().Where(backend.Name(spec.Name)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			created = true
			id, err = createBackend(ctx, tx, spec)
			return err
		case err != nil:
			return err
		case spec.sameDefinition(existing):
			id = existing.ID
			return nil
		case !upsert:
			return fmt.Errorf("a different backend of that name exists (set upsert to replace it): %w", ErrConflict)
		}
		id = existing.ID
		upd := existing.Update().
			SetURL(spec.URL).
			SetEngine(backend.Engine(spec.Engine)).
			SetMaxConcurrent(spec.MaxConcurrent).
			SetPriority(spec.Priority).
			SetGpuMemoryGB(spec.GPUMemoryGB).
			SetGpuType(spec.GPUType).
			SetGpuIndices(spec.GPUIndices).
			ClearNodeID()
		if spec.NodeID != 0 {
			upd.SetNodeID(int(spec.NodeID))
		}
		return upd.Exec(ctx)
	})
	return id, created, err
}

func createBackend(ctx context.Context, tx *ent.Tx, spec BackendSpec) (int, error) {
	b, err := tx.Backend.Create().
		SetName(spec.Name).
		SetURL(spec.URL).
		SetEngine(backend.Engine(spec.Engine)).
		SetMaxConcurrent(spec.MaxConcurrent).
		SetPriority(spec.Priority).
		SetGpuMemoryGB(spec.GPUMemoryGB).
		SetGpuType(spec.GPUType).
		SetGpuIndices(spec.GPUIndices).
		SetNillableNodeID(nodeRef(spec.NodeID)).
		Save(ctx)
	if err != nil {
		return 0, err
	}
	return b.ID, nil
}

// SeedBackend creates the backend spec describes when no backend has its name
// and otherwise returns the stored backend untouched (created=false): a seed
// given at every start must never undo what an admin changed since. A URL that
// another backend uses is ErrConflict.
func (s *Store) SeedBackend(ctx context.Context, spec BackendSpec) (Backend, bool, error) {
	return s.register(ctx, fmt.Sprintf("seed backend %q", spec.Name), spec, func(spec BackendSpec) (id int, created bool, err error) {
		err = s.withTx(ctx, func(tx *ent.Tx) error {
			existing, err := tx.Backend.Query().Where(backend.Name(spec.Name)).Only(ctx)
			switch {
			case ent.IsNotFound(err):
				created = true
				id, err = createBackend(ctx, tx, spec)
				return err
			case err != nil:
				return err
			}
			id = existing.ID
			return nil
		})
		return id, created, err
	})
}

func validateBackendSpec(spec BackendSpec) error {
	switch {
	case spec.Name == "":
		return fmt.Errorf("name is empty")
	case spec.URL == "":
		return fmt.Errorf("url is empty")
	case !slices.Contains([]string{EngineOllama, EngineVLLM, EngineTTS, EngineSTT}, spec.Engine):
		return fmt.Errorf("unknown engine %q (want ollama, vllm, tts or stt)", spec.Engine)
	case spec.MaxConcurrent < 0:
		return fmt.Errorf("max_concurrent %d is negative", spec.MaxConcurrent)
	case slices.ContainsFunc(spec.GPUIndices, func(i int) bool { return i < 0 }):
		return fmt.Errorf("negative GPU index in %v", spec.GPUIndices)
	}
	return nil
}

// checkNode reports ErrNotFound for a node id that does not exist; 0 is no node.
func checkNode(ctx context.Context, tx *ent.Tx, nodeID int64) error {
	if nodeID == 0 {
		return nil
	}
	if _, err := tx.Node.Get(ctx, int(nodeID)); err != nil {
		if ent.IsNotFound(err) {
			return fmt.Errorf("node %d: %w", nodeID, ErrNotFound)
		}
		return err
	}
	return nil
}

func nodeRef(id int64) *int {
	if id == 0 {
		return nil
	}
	v := int(id)
	return &v
}

// ListBackends returns every backend, ordered by id, with its node's name.
func (s *Store) ListBackends(ctx context.Context) ([]Backend, error) {
	rows, err := s.c(ctx).Backend.Query().WithNode().Order(ent.Asc(backend.FieldID)).All(ctx)
	if err != nil {
		return nil, dbErr("list backends", err)
	}
	out := make([]Backend, len(rows))
	for i, b := range rows {
		out[i] = toBackend(b)
	}
	return out, nil
}

// GetBackend returns the backend with the given id.
func (s *Store) GetBackend(ctx context.Context, id int64) (Backend, error) {
	b, err := s.c(ctx).Backend.Query().Where(backend.ID(int(id))).WithNode().Only(ctx)
	if err != nil {
		return Backend{}, dbErr(fmt.Sprintf("get backend %d", id), err)
	}
	return toBackend(b), nil
}

// UpdateBackend changes the fields of p that are set. A name or URL that another
// backend uses is ErrConflict, an unknown node ErrNotFound.
func (s *Store) UpdateBackend(ctx context.Context, id int64, p BackendPatch) (Backend, error) {
	op := fmt.Sprintf("update backend %d", id)
	switch {
	case p.Name != nil && *p.Name == "":
		return Backend{}, invalid(op, "name is empty")
	case p.URL != nil && *p.URL == "":
		return Backend{}, invalid(op, "url is empty")
	case p.GPUIndices != nil && slices.ContainsFunc(*p.GPUIndices, func(i int) bool { return i < 0 }):
		return Backend{}, invalid(op, "negative GPU index in %v", *p.GPUIndices)
	}
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		u := tx.Backend.UpdateOneID(int(id)).
			SetNillableName(p.Name).
			SetNillableURL(p.URL).
			SetNillableMaxConcurrent(p.MaxConcurrent).
			SetNillablePriority(p.Priority).
			SetNillableGpuMemoryGB(p.GPUMemoryGB).
			SetNillableGpuType(p.GPUType)
		if p.NodeID != nil {
			if err := checkNode(ctx, tx, *p.NodeID); err != nil {
				return err
			}
			u.ClearNodeID()
			if *p.NodeID != 0 {
				u.SetNodeID(int(*p.NodeID))
			}
		}
		if p.GPUIndices != nil {
			if len(*p.GPUIndices) == 0 {
				u.ClearGpuIndices()
			} else {
				u.SetGpuIndices(slices.Clone(*p.GPUIndices))
			}
		}
		return u.Exec(ctx)
	})
	if err != nil {
		return Backend{}, dbErr(op, err)
	}
	return s.GetBackend(ctx, id)
}

// DeleteBackend removes a backend and its models.
func (s *Store) DeleteBackend(ctx context.Context, id int64) error {
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		if _, err := tx.Model.Delete().Where(model.BackendID(int(id))).Exec(ctx); err != nil {
			return err
		}
		return tx.Backend.DeleteOneID(int(id)).Exec(ctx)
	})
	return dbErr(fmt.Sprintf("delete backend %d", id), err)
}

func toBackend(b *ent.Backend) Backend {
	out := Backend{
		ID:                  int64(b.ID),
		Name:                b.Name,
		URL:                 b.URL,
		Engine:              string(b.Engine),
		Status:              string(b.Status),
		MaxConcurrent:       b.MaxConcurrent,
		Priority:            b.Priority,
		GPUMemoryGB:         b.GpuMemoryGB,
		GPUType:             b.GpuType,
		GPUIndices:          b.GpuIndices,
		Version:             b.Version,
		Simulated:           b.Simulated,
		ConsecutiveFailures: b.ConsecutiveFailures,
		LastHealthCheck:     utcPtr(b.LastHealthCheck),
		LastSuccess:         utcPtr(b.LastSuccess),
		LastError:           b.LastError,
		CreatedAt:           utc(b.CreatedAt),
		UpdatedAt:           utc(b.UpdatedAt),
	}
	if b.NodeID != nil {
		out.NodeID = int64(*b.NodeID)
	}
	if n := b.Edges.Node; n != nil {
		out.NodeName = n.Name
	}
	return out
}
