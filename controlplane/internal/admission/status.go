package admission

import (
	"context"
	"sync"
	"time"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Fleet is the registry's backend and node counts for the public status page.
type Fleet struct {
	BackendsTotal, BackendsHealthy, BackendsDisabled, BackendsDraining, CircuitsOpen int
	NodesTotal, NodesOnline                                                          int
}

// FleetFunc counts the fleet now.
type FleetFunc func(ctx context.Context) (Fleet, error)

// StatusService implements controlplanev1.StatusServiceServer over a Server:
// the cluster's health, catalog and served tokens, for the data planes'
// public status page. It names no user, key or address.
type StatusService struct {
	controlplanev1.UnimplementedStatusServiceServer
	s     *Server
	fleet FleetFunc
	total *cachedTotal
}

var _ controlplanev1.StatusServiceServer = (*StatusService)(nil)

// NewStatusService returns the status service of s; fleet counts backends and
// nodes (nil: none are counted).
func NewStatusService(s *Server, fleet FleetFunc) *StatusService {
	return &StatusService{s: s, fleet: fleet}
}

// TotalFunc returns every token ever served (the store's sum of lifetime
// token counts).
type TotalFunc func(ctx context.Context) (int64, error)

// TotalTTL is how long the status service reuses the all-time token total
// before it asks TotalFunc again.
const TotalTTL = 30 * time.Second

// WithTotal makes the status answer carry the all-time token total, read
// through total at most once per TotalTTL (the public page polls every 2 s
// per browser; the aggregate reads one row per user).
func (st *StatusService) WithTotal(total TotalFunc) *StatusService {
	st.total = &cachedTotal{read: total, ttl: TotalTTL, now: st.s.opts.Now}
	return st
}

// GetClusterStatus returns the cluster now.
func (st *StatusService) GetClusterStatus(ctx context.Context, _ *controlplanev1.GetClusterStatusRequest) (*controlplanev1.GetClusterStatusResponse, error) {
	resp := &controlplanev1.GetClusterStatusResponse{Models: st.s.reg.Catalog()}
	if st.fleet != nil {
		f, err := st.fleet(ctx)
		if err != nil {
			return nil, err
		}
		resp.BackendsTotal, resp.BackendsHealthy = int32(f.BackendsTotal), int32(f.BackendsHealthy)
		resp.BackendsDisabled, resp.BackendsDraining = int32(f.BackendsDisabled), int32(f.BackendsDraining)
		resp.CircuitsOpen, resp.NodesTotal, resp.NodesOnline = int32(f.CircuitsOpen), int32(f.NodesTotal), int32(f.NodesOnline)
	}
	if qs, ok := st.s.sched.(QueueSnapshotter); ok {
		for _, m := range qs.Snapshot().Models {
			resp.Queued += int32(m.Waiting)
		}
	}
	resp.InFlight = int32(st.s.leases.count())
	resp.TokensToday, resp.TokensPerSecond = st.s.served.read(st.s.opts.Now())
	if st.total != nil {
		resp.TokensTotal = st.total.get(ctx)
	}
	if g := st.s.opts.Gate; g != nil {
		resp.OfflineMessage, resp.Offline = g.Offline()
	}
	return resp, nil
}

// servedWindow is how far back tokens per second look.
const servedWindow = 60

// servedTokens counts settled tokens: the day's total (UTC) and a minute of
// completion tokens in one-second buckets. Settling is on the release path, so
// it costs one short lock and no allocation.
type servedTokens struct {
	mu      sync.Mutex
	day     int64 // days since the epoch, UTC
	today   int64
	buckets [servedWindow]int64
	secs    [servedWindow]int64 // the second each bucket holds
}

func (t *servedTokens) add(now time.Time, prompt, completion int64) {
	sec := now.Unix()
	day := sec / 86400
	i := sec % servedWindow
	t.mu.Lock()
	if day != t.day {
		t.day, t.today = day, 0
	}
	t.today += prompt + completion
	if t.secs[i] != sec {
		t.secs[i], t.buckets[i] = sec, 0
	}
	t.buckets[i] += completion
	t.mu.Unlock()
}

// read returns the day's tokens and the completion tokens per second over the
// last servedWindow seconds.
func (t *servedTokens) read(now time.Time) (today int64, perSecond float64) {
	sec := now.Unix()
	t.mu.Lock()
	defer t.mu.Unlock()
	if sec/86400 == t.day {
		today = t.today
	}
	var sum int64
	for i := range t.buckets {
		if sec-t.secs[i] < servedWindow {
			sum += t.buckets[i]
		}
	}
	return today, float64(sum) / servedWindow
}

// cachedTotal is the all-time token total, read at most once per ttl. A
// failed read keeps the last value (the status page must not fail for it)
// and is retried on the next call after the ttl.
type cachedTotal struct {
	read TotalFunc
	ttl  time.Duration
	now  func() time.Time

	mu    sync.Mutex
	value int64
	at    time.Time
}

func (c *cachedTotal) get(ctx context.Context) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !c.at.IsZero() && now.Sub(c.at) < c.ttl {
		return c.value
	}
	c.at = now
	if v, err := c.read(ctx); err == nil {
		c.value = v
	}
	return c.value
}
