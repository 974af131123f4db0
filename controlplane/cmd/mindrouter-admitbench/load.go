package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/mindrouter/mindrouter/controlplane/internal/server"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// result is one run's figures.
type result struct {
	mode      string
	admits    int
	errors    int
	wall      time.Duration
	admitLat  []time.Duration // sorted
	relLat    []time.Duration // sorted
	cpuPct    float64         // process CPU time over wall time, in % of one core
	queuedPct float64         // share of admissions that waited in a queue
}

func (r result) rate() float64 { return float64(r.admits) / r.wall.Seconds() }

// pct returns the q-quantile of sorted latencies (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// recorder collects latencies from many goroutines into preallocated storage.
type recorder struct {
	admit, rel []time.Duration
	na, nr     atomic.Int64
	errs       atomic.Int64
	queued     atomic.Int64
	// late guards what arrives after the callers stopped (session release acks):
	// once sealed by result, nothing more is recorded.
	late   sync.RWMutex
	sealed bool
}

func newRecorder(capacity int) *recorder {
	return &recorder{admit: make([]time.Duration, capacity), rel: make([]time.Duration, capacity)}
}

func (r *recorder) add(dst []time.Duration, n *atomic.Int64, d time.Duration) {
	if i := n.Add(1) - 1; i < int64(len(dst)) {
		dst[i] = d
	}
}

// addLate records a release latency from outside the callers (a session's ack),
// unless the result was already taken.
func (r *recorder) addLate(d time.Duration, failed bool) {
	r.late.RLock()
	defer r.late.RUnlock()
	switch {
	case r.sealed:
	case failed:
		r.errs.Add(1)
	default:
		r.add(r.rel, &r.nr, d)
	}
}

func (r *recorder) result(mode string, wall time.Duration, cpu time.Duration) result {
	r.late.Lock()
	r.sealed = true
	r.late.Unlock()
	na, nr := min(int(r.na.Load()), len(r.admit)), min(int(r.nr.Load()), len(r.rel))
	res := result{
		mode: mode, admits: na, errors: int(r.errs.Load()), wall: wall,
		admitLat: slices.Clone(r.admit[:na]), relLat: slices.Clone(r.rel[:nr]),
		cpuPct: 100 * cpu.Seconds() / wall.Seconds(),
	}
	if na > 0 {
		res.queuedPct = 100 * float64(r.queued.Load()) / float64(na)
	}
	slices.Sort(res.admitLat)
	slices.Sort(res.relLat)
	return res
}

// client is a data-plane replica's view: gRPC connections that carry the cluster
// token, used round robin.
type client struct {
	conns []*grpc.ClientConn
	apis  []controlplanev1.AdmissionServiceClient
	keys  []string // one API key per user
	seq   atomic.Uint64
	// floor replaces Admit+Release by two ListModels calls (see floorPair).
	floor bool
	// sessions, when set, carry the releases (one per connection, as one data
	// plane replica each); otherwise each release is a unary Release call.
	sessions []*sessionReleaser
	// stop ends the sessions.
	stop context.CancelFunc
}

func dial(ctx context.Context, addr string, conns, users int, floor, session bool) (*client, error) {
	ctx, cancel := context.WithCancel(ctx)
	c := &client{floor: floor, stop: cancel}
	for i := range users {
		c.keys = append(c.keys, userKey(i))
	}
	for range conns {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			c.close()
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		c.conns = append(c.conns, cc)
		c.apis = append(c.apis, controlplanev1.NewAdmissionServiceClient(cc))
		if session && !floor {
			s, err := openSession(ctx, cc, fmt.Sprintf("bench-replica-%d", len(c.conns)))
			if err != nil {
				c.close()
				return nil, err
			}
			c.sessions = append(c.sessions, s)
		}
	}
	return c, nil
}

func (c *client) close() {
	c.stop()
	for _, cc := range c.conns {
		_ = cc.Close()
	}
}

// one runs Admit then Release for a new request, measuring each from start (the
// intended send time in the open loop), and records them.
func (c *client) one(ctx context.Context, rec *recorder, start time.Time, hold time.Duration, measure bool) {
	n := c.seq.Add(1)
	conn := n % uint64(len(c.apis))
	api := c.apis[conn]
	replica := "bench-replica"
	if c.sessions != nil {
		replica = c.sessions[conn].replica
	}
	req := &controlplanev1.AdmitRequest{
		RequestId: "bench-" + strconv.FormatUint(n, 36), Credential: c.keys[n%uint64(len(c.keys))], Model: benchModel,
		Operation: controlplanev1.Operation_OPERATION_CHAT, PromptTokensEstimate: 200, MaxOutputTokens: 300,
		Attempt: 1, ReplicaId: replica, Endpoint: "/v1/chat/completions",
	}
	if c.floor {
		c.floorPair(ctx, api, req.GetCredential(), rec, start, measure)
		return
	}
	resp, err := api.Admit(ctx, req)
	admitted := time.Now()
	if err != nil {
		if measure && ctx.Err() == nil {
			rec.errs.Add(1)
		}
		return
	}
	if measure {
		rec.add(rec.admit, &rec.na, admitted.Sub(start))
		if resp.GetQueuePosition() > 0 {
			rec.queued.Add(1)
		}
	}
	if hold > 0 {
		time.Sleep(hold)
	}
	relStart := time.Now()
	rel := &controlplanev1.ReleaseRequest{
		LeaseId: resp.GetLease().GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
		Usage:     &controlplanev1.Usage{PromptTokens: 200, CompletionTokens: 150},
		RequestId: req.GetRequestId(), BackendId: resp.GetLease().GetBackendId(),
		UserId: resp.GetLease().GetPrincipal().GetUserId(), Model: benchModel,
	}
	if c.sessions != nil {
		// As the data plane: handed to the session, acknowledged later.
		c.sessions[conn].release(pendingRelease{req: rel, start: relStart, rec: rec, measure: measure})
		return
	}
	_, err = api.Release(context.WithoutCancel(ctx), rel)
	if !measure {
		return
	}
	if err != nil {
		rec.errs.Add(1)
		return
	}
	rec.add(rec.rel, &rec.nr, time.Since(relStart))
}

// floorPair stands in for Admit+Release with two ListModels calls: the same
// server, interceptors and authentication with next to no handler work, which is
// the floor that admission's own cost adds to.
func (c *client) floorPair(ctx context.Context, api controlplanev1.AdmissionServiceClient, key string, rec *recorder, start time.Time, measure bool) {
	req := &controlplanev1.ListModelsRequest{Credential: key}
	if _, err := api.ListModels(ctx, req); err != nil {
		if measure && ctx.Err() == nil {
			rec.errs.Add(1)
		}
		return
	}
	if measure {
		rec.add(rec.admit, &rec.na, time.Since(start))
	}
	second := time.Now()
	if _, err := api.ListModels(ctx, req); err != nil {
		if measure {
			rec.errs.Add(1)
		}
		return
	}
	if measure {
		rec.add(rec.rel, &rec.nr, time.Since(second))
	}
}

// clusterCtx carries the cluster token on every call.
func clusterCtx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, server.ClusterTokenHeader, clusterToken)
}

// closedLoop runs workers that each send the next request as soon as the last one
// is released, for warmup then duration.
func closedLoop(ctx context.Context, c *client, cfg config) result {
	ctx = clusterCtx(ctx)
	rec := newRecorder(int(cfg.duration.Seconds()*50_000) + 1024)
	var measuring atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range cfg.workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c.one(ctx, rec, time.Now(), cfg.hold, measuring.Load())
			}
		})
	}
	time.Sleep(cfg.warmup)
	cpu0, t0 := cpuTime(), time.Now()
	measuring.Store(true)
	time.Sleep(cfg.duration)
	measuring.Store(false)
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	close(stop)
	wg.Wait()
	return rec.result(fmt.Sprintf("closed, %d workers", cfg.workers), wall, cpu)
}

// openLoop sends requests at a fixed rate whatever the answers, and measures each
// Admit from the time it was meant to be sent: a stalled server is charged for
// every request it delayed (no coordinated omission). A pool of callers takes the
// scheduled send times from a queue that holds a second of them, so the load
// generator spends no time growing fresh goroutine stacks.
func openLoop(ctx context.Context, c *client, cfg config) result {
	ctx = clusterCtx(ctx)
	rec := newRecorder(int(cfg.duration.Seconds()*float64(cfg.rate)*1.2) + 1024)
	interval := time.Second / time.Duration(cfg.rate)
	type job struct {
		intended time.Time
		measure  bool
	}
	jobs := make(chan job, cfg.rate)
	var wg sync.WaitGroup
	for range cfg.callers {
		wg.Go(func() {
			for j := range jobs {
				c.one(ctx, rec, j.intended, cfg.hold, j.measure)
			}
		})
	}
	send := func(until time.Time, measure bool) {
		next := time.Now()
		for next.Before(until) {
			now := time.Now()
			for ; !next.After(now) && next.Before(until); next = next.Add(interval) {
				jobs <- job{next, measure}
			}
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	}
	send(time.Now().Add(cfg.warmup), false)
	cpu0, t0 := cpuTime(), time.Now()
	send(t0.Add(cfg.duration), true)
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	close(jobs)
	wg.Wait()
	return rec.result(fmt.Sprintf("open, %d/s", cfg.rate), wall, cpu)
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
