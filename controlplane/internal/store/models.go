package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/model"
)

// Model is one model as served by one backend.
type Model struct {
	ID          int64
	BackendID   int64
	BackendName string
	Name        string
	Family      string
	// ContextLength is the model's own maximum context window; 0 when unknown.
	ContextLength   int64
	Capabilities    []string
	Loaded          bool
	ParameterSize   string
	Quantization    string
	SizeBytes       int64
	EmbeddingLength int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// ModelSpec is one model as discovered on a backend.
type ModelSpec struct {
	Name            string
	Family          string
	ContextLength   int64
	Capabilities    []string
	Loaded          bool
	ParameterSize   string
	Quantization    string
	SizeBytes       int64
	EmbeddingLength int64
}

// SyncModels makes the backend's stored models equal to models, in one transaction:
// present ones are inserted or updated (matched by name; a later duplicate wins),
// absent ones deleted. An unknown backend is ErrNotFound.
func (s *Store) SyncModels(ctx context.Context, backendID int64, models []ModelSpec) error {
	op := fmt.Sprintf("sync models of backend %d", backendID)
	byName := make(map[string]ModelSpec, len(models))
	for _, m := range models {
		if m.Name == "" {
			return invalid(op, "model with an empty name")
		}
		byName[m.Name] = m
	}
	names := slices.Sorted(maps.Keys(byName))
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		if _, err := tx.Backend.Get(ctx, int(backendID)); err != nil {
			return err
		}
		del := tx.Model.Delete().Where(model.BackendID(int(backendID)))
		if len(names) > 0 {
			del.Where(model.NameNotIn(names...))
		}
		if _, err := del.Exec(ctx); err != nil {
			return err
		}
		if len(names) == 0 {
			return nil
		}
		builders := make([]*ent.ModelCreate, len(names))
		for i, name := range names {
			m := byName[name]
			builders[i] = tx.Model.Create().
				SetBackendID(int(backendID)).
				SetName(name).
				SetFamily(m.Family).
				SetContextLength(max(m.ContextLength, 0)).
				SetCapabilities(slices.Clone(m.Capabilities)).
				SetLoaded(m.Loaded).
				SetParameterSize(m.ParameterSize).
				SetQuantization(m.Quantization).
				SetSizeBytes(max(m.SizeBytes, 0)).
				SetEmbeddingLength(max(m.EmbeddingLength, 0))
		}
		return tx.Model.CreateBulk(builders...).
			OnConflictColumns(model.FieldBackendID, model.FieldName).
			UpdateNewValues().
			Exec(ctx)
	})
	return dbErr(op, err)
}

// ListModels returns every model on every backend, ordered by backend and name.
func (s *Store) ListModels(ctx context.Context) ([]Model, error) {
	rows, err := s.c(ctx).Model.Query().
		WithBackend().
		Order(ent.Asc(model.FieldBackendID), ent.Asc(model.FieldName)).
		All(ctx)
	if err != nil {
		return nil, dbErr("list models", err)
	}
	out := make([]Model, len(rows))
	for i, m := range rows {
		out[i] = Model{
			ID:              int64(m.ID),
			BackendID:       int64(m.BackendID),
			Name:            m.Name,
			Family:          m.Family,
			ContextLength:   m.ContextLength,
			Capabilities:    m.Capabilities,
			Loaded:          m.Loaded,
			ParameterSize:   m.ParameterSize,
			Quantization:    m.Quantization,
			SizeBytes:       m.SizeBytes,
			EmbeddingLength: m.EmbeddingLength,
			CreatedAt:       utc(m.CreatedAt),
			UpdatedAt:       utc(m.UpdatedAt),
		}
		if b := m.Edges.Backend; b != nil {
			out[i].BackendName = b.Name
		}
	}
	return out, nil
}
