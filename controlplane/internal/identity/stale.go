package identity

import (
	"errors"
	"log/slog"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// DefaultMaxStale is how long after its row was last read a cached key keeps
// working while the database is unreachable. An hour rides out restarts,
// fail-overs and most maintenance of the database. It bounds what stale serving
// can cost: revocations and user changes made through this control plane apply
// at once whatever the database's state (they evict or fence the entry), so a
// stale entry only misses a change made elsewhere (another control plane, or the
// database directly) while this one could not read it.
const DefaultMaxStale = time.Hour

// staleProbeInterval spaces the background reads of a key's row that probe
// whether the database is back, while stale entries are being served.
const staleProbeInterval = time.Second

// usableStale returns d's entry if it may stand in for a read of its row that
// failed: it exists (a revocation evicts it), was not invalidated by a change
// of its user or group, and was read less than MaxStale ago. tooOld reports an
// entry refused for its age alone.
func (s *Service) usableStale(d digest, now time.Time) (v *verified, tooOld bool) {
	v = s.cache.stale(d)
	if v == nil || v.invalidated {
		return nil, false
	}
	if !now.Before(v.readAt.Add(s.maxStale)) {
		return nil, true
	}
	return v, false
}

// serveStale answers from an expired entry while the database is known to be
// unreachable, without waiting for it; a background read (refreshIfDue) ends
// the outage for this process when it succeeds.
func (s *Service) serveStale(credential string, d digest, now time.Time) (*verified, bool) {
	if s.dbDownSince.Load() == 0 {
		return nil, false
	}
	v, _ := s.usableStale(d, now)
	if v == nil {
		return nil, false
	}
	s.refreshIfDue(credential, d, now)
	s.metrics.staleServed.Inc()
	return v, true
}

// refreshIfDue starts a background read of a key's row (refreshSoon), but
// while the database is unreachable at most one per staleProbeInterval for all
// keys, so that busy keys do not hammer a database that is down.
func (s *Service) refreshIfDue(credential string, d digest, now time.Time) {
	if s.dbDownSince.Load() != 0 {
		next := s.nextProbe.Load()
		if now.UnixNano() < next || !s.nextProbe.CompareAndSwap(next, now.Add(staleProbeInterval).UnixNano()) {
			return
		}
	}
	s.refreshSoon(credential, d)
}

// unreachable reports whether err says that the database could not be read.
func unreachable(err error) bool { return errors.Is(err, store.ErrUnavailable) }

// noteRead records the outcome of a read of a key's row: a failure to reach the
// database starts an outage (stale entries are served from then on), any answer
// from the database ends it.
func (s *Service) noteRead(err error) {
	switch {
	case err == nil || errors.Is(err, store.ErrNotFound):
		if since := s.dbDownSince.Swap(0); since != 0 {
			s.log.Info("database reachable again; cached API keys are read afresh",
				slog.Duration("unreachable_for", s.now().Sub(time.Unix(0, since))))
		}
	case unreachable(err):
		if s.dbDownSince.CompareAndSwap(0, s.now().UnixNano()) {
			s.log.Warn("database unreachable; keys read in the last max_stale keep working from the cache",
				slog.Duration("max_stale", s.maxStale), slog.Any("error", err))
		}
	}
}

// unreachableFor is how long the database has been unreachable; 0 when the
// last read of a key's row succeeded.
func (s *Service) unreachableFor() time.Duration {
	since := s.dbDownSince.Load()
	if since == 0 {
		return 0
	}
	return max(s.now().Sub(time.Unix(0, since)), 0)
}
