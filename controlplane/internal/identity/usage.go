package identity

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// finalFlushTimeout bounds the flush Run does when it stops.
const finalFlushTimeout = 5 * time.Second

// RecordUse counts one use of a key, in memory; Run writes the counts.
func (s *Service) RecordUse(keyID int64) {
	now := s.now()
	s.usageMu.Lock()
	u := s.usage[keyID]
	u.Count++
	if now.After(u.LastUsed) {
		u.LastUsed = now
	}
	s.usage[keyID] = u
	s.usageMu.Unlock()
}

// FlushUsage writes the counted uses in one batch. On failure the counts are kept
// for the next flush.
func (s *Service) FlushUsage(ctx context.Context) error {
	s.usageMu.Lock()
	pending := s.usage
	s.usage = make(map[int64]store.KeyUse, len(pending))
	s.usageMu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	if err := s.st.RecordKeyUse(ctx, pending); err != nil {
		s.usageMu.Lock()
		for id, u := range s.usage {
			p := pending[id]
			p.Count += u.Count
			if u.LastUsed.After(p.LastUsed) {
				p.LastUsed = u.LastUsed
			}
			pending[id] = p
		}
		s.usage = pending
		s.usageMu.Unlock()
		return fmt.Errorf("flush API key usage: %w", err)
	}
	return nil
}

// Run flushes usage every FlushInterval until ctx ends, then once more.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.FlushUsage(ctx); err != nil {
				s.log.WarnContext(ctx, "flush API key usage", slog.Any("error", err))
			}
		case <-ctx.Done():
			s.stopRefreshes()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			defer cancel()
			if err := s.FlushUsage(fctx); err != nil {
				s.log.ErrorContext(ctx, "final flush of API key usage", slog.Any("error", err))
			}
			return nil
		}
	}
}
