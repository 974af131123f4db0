package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/backend"
)

// lastErrorMax bounds the stored last error, which comes from the network.
const lastErrorMax = 1024

// HealthRecord is the outcome of one health check.
type HealthRecord struct {
	// Status is healthy, unhealthy or unknown. It is not applied while the backend
	// is disabled or draining.
	Status string
	// Version is the engine's version; empty leaves the stored one.
	Version   string
	LastError string
	Simulated bool
	CheckedAt time.Time
	// Success sets LastSuccess to CheckedAt.
	Success             bool
	ConsecutiveFailures int
}

// SetBackendStatus sets a backend's status, administrative or not.
func (s *Store) SetBackendStatus(ctx context.Context, id int64, status string) (Backend, error) {
	op := fmt.Sprintf("set backend %d status %q", id, status)
	st := backend.Status(status)
	if err := backend.StatusValidator(st); err != nil {
		return Backend{}, invalid(op, "unknown status (want healthy, unhealthy, disabled, draining or unknown)")
	}
	if err := s.c(ctx).Backend.UpdateOneID(int(id)).SetStatus(st).Exec(ctx); err != nil {
		return Backend{}, dbErr(op, err)
	}
	return s.GetBackend(ctx, id)
}

// RecordHealth stores the outcome of a health check. The status is applied only
// when the backend is neither disabled nor draining, in the same transaction, so a
// check racing an operator never undoes the operator's choice.
func (s *Store) RecordHealth(ctx context.Context, id int64, h HealthRecord) error {
	op := fmt.Sprintf("record health of backend %d", id)
	st := backend.Status(h.Status)
	if h.Status != "" {
		if err := backend.StatusValidator(st); err != nil {
			return invalid(op, "unknown status %q", h.Status)
		}
	}
	lastErr := h.LastError
	if len(lastErr) > lastErrorMax {
		lastErr = strings.ToValidUTF8(lastErr[:lastErrorMax], "")
	}
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		u := tx.Backend.UpdateOneID(int(id)).
			SetLastError(lastErr).
			SetSimulated(h.Simulated).
			SetConsecutiveFailures(max(h.ConsecutiveFailures, 0))
		if h.Version != "" {
			u.SetVersion(h.Version)
		}
		if !h.CheckedAt.IsZero() {
			u.SetLastHealthCheck(h.CheckedAt.UTC())
			if h.Success {
				u.SetLastSuccess(h.CheckedAt.UTC())
			}
		}
		if err := u.Exec(ctx); err != nil {
			return err
		}
		if h.Status == "" {
			return nil
		}
		return tx.Backend.Update().
			Where(backend.ID(int(id)), backend.StatusNotIn(backend.StatusDisabled, backend.StatusDraining)).
			SetStatus(st).
			Exec(ctx)
	})
	return dbErr(op, err)
}
