package quota

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// UsageStore persists usage records. The database layer implements it over the
// quotas table; MemoryStore is the in-memory one.
type UsageStore interface {
	// LoadUsage returns every stored record.
	LoadUsage(ctx context.Context) ([]Record, error)
	// SaveUsage writes records, inserting or replacing each user's row. The
	// records hold absolute values, so saving one twice is harmless.
	SaveUsage(ctx context.Context, records []Record) error
}

// Load restores usage from the store; without a store it does nothing. Call it
// before the manager serves: a loaded record replaces the user's used and
// lifetime tokens and period, keeping reservations in flight.
func (m *Manager) Load(ctx context.Context) error {
	if m.opts.Store == nil {
		return nil
	}
	recs, err := m.opts.Store.LoadUsage(ctx)
	if err != nil {
		m.metrics.storeErrors.Inc()
		return fmt.Errorf("quota: load usage: %w", err)
	}
	for _, r := range recs {
		sh := m.shard(r.UserID)
		sh.mu.Lock()
		now := m.now()
		// A period without a start, or one starting in the future (a clock that
		// was ahead), starts now.
		start := now
		if !r.PeriodStart.IsZero() {
			start = min(int64(r.PeriodStart.Sub(m.epoch)), now)
		}
		u := sh.users[r.UserID]
		if u == nil {
			u = newUser(r.UserID, start, m.opts.Period)
			sh.users[r.UserID] = u
		}
		u.used, u.lifetime, u.periodStart = max(r.TokensUsed, 0), max(r.LifetimeTokensUsed, 0), start
		u.period = m.opts.Period
		if r.PeriodDays > 0 {
			u.period = time.Duration(r.PeriodDays) * 24 * time.Hour
		}
		sh.mu.Unlock()
	}
	return nil
}

// Run writes changed usage to the store every FlushInterval, and once more when
// ctx ends; it returns the error of that last write. Without a store it returns
// at once.
func (m *Manager) Run(ctx context.Context) error {
	if m.opts.Store == nil {
		return nil
	}
	t := time.NewTicker(m.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			defer cancel()
			return m.Flush(fctx)
		case <-t.C:
			if err := m.Flush(ctx); err != nil {
				m.opts.Logger.Warn("quota: save usage", slog.Any("error", err))
			}
		}
	}
}

// Flush writes the usage changed since the last flush, in batches; records whose
// batch failed are written again by the next flush.
func (m *Manager) Flush(ctx context.Context) error {
	if m.opts.Store == nil {
		return nil
	}
	var recs []Record
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for _, u := range sh.users {
			if u.dirty {
				recs = append(recs, m.record(u))
				u.dirty = false
			}
		}
		sh.mu.Unlock()
	}
	var first error
	for len(recs) > 0 {
		n := min(len(recs), flushBatch)
		batch := recs[:n]
		recs = recs[n:]
		if err := m.opts.Store.SaveUsage(ctx, batch); err != nil {
			m.metrics.storeErrors.Inc()
			m.redirty(batch)
			m.redirty(recs)
			if first == nil {
				first = fmt.Errorf("quota: save usage of %d users: %w", len(batch)+len(recs), err)
			}
			break
		}
	}
	return first
}

// redirty marks the users of records that were not saved as changed.
func (m *Manager) redirty(recs []Record) {
	for _, r := range recs {
		sh := m.shard(r.UserID)
		sh.mu.Lock()
		if u := sh.users[r.UserID]; u != nil {
			u.dirty = true
		}
		sh.mu.Unlock()
	}
}
