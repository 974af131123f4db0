package cpclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Run keeps the session with the control plane until ctx ends: it says Hello,
// sends a heartbeat with the leases in flight at once and then at the interval
// the control plane's Welcome names, applies the control plane's pushes, and
// reconnects with exponential backoff and jitter when the stream breaks. It
// also retries failed releases in the background; after ctx ends it keeps
// retrying them for up to Config.DrainTimeout. Run returns nil when done.
func (c *Client) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	sessionDone := make(chan struct{})
	wg.Go(func() { c.releaseLoop(ctx, sessionDone) })
	c.sessionLoop(ctx)
	close(sessionDone)
	wg.Wait()
	return nil
}

func (c *Client) sessionLoop(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		established, err := c.session(ctx)
		if established {
			failures = 0
		}
		if ctx.Err() != nil {
			return
		}
		level := slog.LevelDebug
		if established || failures == 0 {
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "control-plane session ended; reconnecting", slog.Any("error", err), slog.Int("failures", failures))
		delay := c.backoff(failures)
		failures++
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff returns the delay before retry number n (from 0): exponential from
// BackoffBase up to BackoffMax, with full jitter over the upper half.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.BackoffBase
	for i := 0; i < n && d < c.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.BackoffMax)
	return d/2 + rand.N(d/2+1)
}

// session runs one session stream. established reports whether the control
// plane welcomed this replica.
func (c *Client) session(ctx context.Context) (established bool, err error) {
	// The stream outlives ctx by a moment at shutdown, to deliver the releases it
	// holds (closeSession); every return cancels it.
	sctx, cancel := context.WithCancel(c.outgoing(context.WithoutCancel(ctx)))
	defer cancel()
	// WaitForReady: while the control plane is down the call waits for the
	// connection instead of failing at once, so the session (and /readyz) is
	// back the moment the connection is, not after this loop's own backoff,
	// which would otherwise have grown through the outage's fast failures.
	// Until the control plane welcomes this replica the stream holds nothing to
	// deliver, so the end of ctx ends the wait for a connection (a control plane
	// that is down at shutdown must not hold the data plane forever).
	detach := context.AfterFunc(ctx, cancel)
	st, err := c.sessions.Session(sctx, grpc.WaitForReady(true))
	if err != nil {
		return false, fromStatus(ctx, err)
	}
	hello := &controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Hello{Hello: &controlplanev1.Hello{
		ReplicaId: c.cfg.ReplicaID, Version: c.cfg.Version,
	}}}
	if err := st.Send(hello); err != nil {
		_, rerr := st.Recv() // the real error is on the receive side
		return false, fromStatus(ctx, errors.Join(err, rerr))
	}
	first, err := st.Recv()
	if err != nil {
		return false, fromStatus(ctx, err)
	}
	welcome := first.GetWelcome()
	if welcome == nil {
		return false, fmt.Errorf("session: first message is %T, want a Welcome", first.GetKind())
	}
	if !detach() {
		return false, ctx.Err() // ended while being welcomed
	}
	interval := c.cfg.HeartbeatInterval
	if d := welcome.GetHeartbeatInterval().AsDuration(); d > 0 {
		interval = d
	}
	ls := newLiveSession(st, welcome.GetSessionAdmit())
	c.live.Store(ls)
	c.connected.Store(true)
	c.metrics.connected.Set(1)
	c.metrics.sessions.WithLabelValues("connected").Inc()
	c.log.Info("control-plane session established", slog.String("session_id", welcome.GetSessionId()),
		slog.Duration("heartbeat_interval", interval))
	defer func() {
		c.live.CompareAndSwap(ls, nil)
		ls.end()
		c.lostAt.Store(c.cfg.Now().UnixNano())
		c.connected.Store(false)
		c.metrics.connected.Set(0)
		c.metrics.sessions.WithLabelValues("broken").Inc()
	}()
	// The control plane may have restarted and lost its pushes: drop caches.
	c.catalog.invalidate()

	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := st.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if r := m.GetAdmitResult(); r != nil {
				if orphan := ls.deliver(r); orphan != nil {
					go c.releaseUnused(orphan)
				}
				continue
			}
			c.handle(m)
		}
	}()
	// stop ends the stream and waits for the receiver, which owns no other state.
	stop := func(err error) (bool, error) {
		cancel()
		<-recvErr //nolint:errcheck // the receiver's error is the echo of this cancel
		return true, err
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	// Releases sent on a broken session and never acknowledged go first.
	if err := c.sendReleases(ls, c.unacked.all()); err != nil {
		return stop(err)
	}
	if err := c.heartbeat(ls); err != nil {
		return stop(err)
	}
	batch := make([]*controlplanev1.ReleaseRequest, 0, maxReleaseBatch)
	for {
		select {
		case <-ctx.Done():
			if err := c.flushSession(ls, recvErr); err != nil {
				return true, err // the receiver has ended
			}
			return stop(nil)
		case err := <-recvErr:
			return true, fromStatus(ctx, err)
		case <-ticker.C:
			if err := c.heartbeat(ls); err != nil {
				return stop(err)
			}
		case req := <-c.outbox:
			// Releases are off the clients' path, so they wait a moment for company:
			// one message (and one write on each side) for all that arrive meanwhile.
			batch = append(batch[:0], req)
			linger := time.NewTimer(releaseLinger)
		more:
			for len(batch) < maxReleaseBatch {
				select {
				case r := <-c.outbox:
					batch = append(batch, r)
				case <-linger.C:
					break more
				case <-ctx.Done():
					break more
				}
			}
			linger.Stop()
			c.unacked.add(batch)
			if err := c.sendReleases(ls, batch); err != nil {
				return stop(err)
			}
		}
	}
}

// flushTimeout bounds how long a session being closed waits for the
// acknowledgements of the releases it holds.
const flushTimeout = 3 * time.Second

// flushSession delivers, at shutdown, the releases the session holds: it sends
// what waits in the outbox and waits (up to flushTimeout) for every sent release
// to be acknowledged. What remains goes to the unary path afterwards
// (handOverSessionReleases). It returns the stream's error when the receiver
// ended meanwhile (recvErr is then consumed).
func (c *Client) flushSession(st sessionSender, recvErr <-chan error) error {
	var batch []*controlplanev1.ReleaseRequest
	for {
		select {
		case r := <-c.outbox:
			batch = append(batch, r)
			continue
		default:
		}
		break
	}
	c.unacked.add(batch)
	if err := c.sendReleases(st, batch); err != nil {
		return nil // stop ends the stream; the rest is handed over
	}
	deadline := time.NewTimer(flushTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for c.unacked.len() > 0 {
		select {
		case err := <-recvErr:
			return fmt.Errorf("session ended while flushing releases: %w", err)
		case <-deadline.C:
			return nil
		case <-poll.C:
		}
	}
	return nil
}

// maxReleaseBatch bounds the releases of one Releases message (the control
// plane answers at most 1024 per message).
const maxReleaseBatch = 256

// releaseLinger is how long the first release of a batch waits for others. It
// holds the backend slot that long after the reply, which is negligible next to
// a generation, and saves a message per release under load.
const releaseLinger = 2 * time.Millisecond

// sendReleases sends releases over the session, maxReleaseBatch at a time; they
// must be in unacked already.
func (c *Client) sendReleases(st sessionSender, reqs []*controlplanev1.ReleaseRequest) error {
	for len(reqs) > 0 {
		n := min(len(reqs), maxReleaseBatch)
		msg := &controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Releases{
			Releases: &controlplanev1.Releases{Releases: reqs[:n]},
		}}
		if err := st.Send(msg); err != nil {
			return fmt.Errorf("send releases: %w", err)
		}
		c.metrics.releaseBatches.Inc()
		reqs = reqs[n:]
	}
	return nil
}

// unackedSet holds releases sent over a session and not yet acknowledged.
type unackedSet struct {
	mu sync.Mutex
	m  map[string]*controlplanev1.ReleaseRequest
}

func (u *unackedSet) add(reqs []*controlplanev1.ReleaseRequest) {
	u.mu.Lock()
	for _, r := range reqs {
		u.m[r.GetLeaseId()] = r
	}
	u.mu.Unlock()
}

// ack forgets ids and reports how many it held.
func (u *unackedSet) ack(ids []string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := u.m[id]; ok {
			delete(u.m, id)
			n++
		}
	}
	return n
}

func (u *unackedSet) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}

// all returns the releases held, oldest lease id order not guaranteed.
func (u *unackedSet) all() []*controlplanev1.ReleaseRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]*controlplanev1.ReleaseRequest, 0, len(u.m))
	for _, r := range u.m {
		out = append(out, r)
	}
	return out
}

// take returns and forgets every release held.
func (u *unackedSet) take() []*controlplanev1.ReleaseRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]*controlplanev1.ReleaseRequest, 0, len(u.m))
	for id, r := range u.m {
		out = append(out, r)
		delete(u.m, id)
	}
	return out
}

type sessionSender interface {
	Send(*controlplanev1.SessionRequest) error
}

func (c *Client) heartbeat(st sessionSender) error {
	beat := &controlplanev1.Heartbeat{LeaseIds: c.leases.list(), Leases: c.leases.refs()}
	if c.cfg.AuditSpool != nil {
		beat.AuditSpoolBytes, beat.AuditSpoolMaxBytes = c.cfg.AuditSpool()
	}
	hb := &controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Heartbeat{Heartbeat: beat}}
	if err := st.Send(hb); err != nil {
		return fmt.Errorf("send heartbeat: %w", err)
	}
	return nil
}

// handle applies one push from the control plane.
func (c *Client) handle(m *controlplanev1.SessionResponse) {
	switch k := m.GetKind().(type) {
	case *controlplanev1.SessionResponse_CatalogChanged:
		c.catalog.invalidate()
		c.metrics.sessions.WithLabelValues("catalog_changed").Inc()
	case *controlplanev1.SessionResponse_CredentialRevoked:
		// Catalogs are cached by credential digest; the push names only the key's
		// prefix, so drop them all (revocations are rare).
		c.catalog.invalidate()
		c.metrics.sessions.WithLabelValues("credential_revoked").Inc()
	case *controlplanev1.SessionResponse_HeartbeatAck:
		if unknown := k.HeartbeatAck.GetUnknownLeaseIds(); len(unknown) > 0 {
			c.leases.remove(unknown...)
		}
	case *controlplanev1.SessionResponse_ReleasesAck:
		settled, refused := k.ReleasesAck.GetSettledLeaseIds(), k.ReleasesAck.GetRefusedLeaseIds()
		c.unacked.ack(settled)
		c.unacked.ack(refused)
		c.leases.remove(settled...)
		c.leases.remove(refused...)
		c.metrics.releases.WithLabelValues("ok").Add(float64(len(settled)))
		if len(refused) > 0 {
			c.metrics.releases.WithLabelValues("refused").Add(float64(len(refused)))
			c.log.Warn("releases refused by the control plane", slog.Any("lease_ids", refused))
		}
	}
}

// releaseLoop retries releases that failed, one at a time, until each succeeds,
// is refused for good, or has been retried for ReleaseRetryFor. After ctx ends
// it keeps going for DrainTimeout.
func (c *Client) releaseLoop(ctx context.Context, sessionDone <-chan struct{}) {
	for {
		select {
		case req := <-c.pending:
			if !c.retryRelease(ctx, req) {
				c.requeue(req)
			}
		case <-ctx.Done():
			// The session's releases are handed over once it no longer sends any.
			<-sessionDone
			c.drain(ctx)
			return
		}
	}
}

func (c *Client) requeue(req *controlplanev1.ReleaseRequest) {
	select {
	case c.pending <- req:
	default:
		c.leases.remove(req.GetLeaseId())
		c.metrics.releases.WithLabelValues("dropped").Inc()
	}
}

func (c *Client) drain(ctx context.Context) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.DrainTimeout)
	defer cancel()
	c.handOverSessionReleases()
	for {
		select {
		case req := <-c.pending:
			if c.retryRelease(dctx, req) {
				continue
			}
			lost := 1 + len(c.pending)
			c.metrics.releases.WithLabelValues("dropped").Add(float64(lost))
			c.log.Error("shutting down with releases not settled; the control plane will expire their leases",
				slog.Int("releases", lost))
			return
		default:
			return
		}
	}
}

// handOverSessionReleases moves the releases the session holds (waiting to be
// sent, or sent and not acknowledged) to the unary retry queue. A release the
// control plane did settle answers "already settled" there: nothing counts
// twice.
func (c *Client) handOverSessionReleases() {
	// From now on Release takes the unary path: nothing can land in the outbox
	// after it has been emptied.
	c.outMu.Lock()
	c.outClosed = true
	c.outMu.Unlock()
	var reqs []*controlplanev1.ReleaseRequest
	for {
		select {
		case r := <-c.outbox:
			reqs = append(reqs, r)
			continue
		default:
		}
		break
	}
	reqs = append(reqs, c.unacked.take()...)
	// One immediate attempt each, a few at a time; what fails is retried with
	// backoff by drain.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, r := range reqs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := c.releaseOnce(context.Background(), r)
			switch {
			case err == nil:
				c.leases.remove(r.GetLeaseId())
				c.metrics.releases.WithLabelValues("ok").Inc()
			case !retryableRelease(err):
				c.leases.remove(r.GetLeaseId())
				c.metrics.releases.WithLabelValues("refused").Inc()
			default:
				c.requeue(r)
			}
		})
	}
	wg.Wait()
}

// retryRelease retries one release with backoff. It returns false when ctx
// ended before the release was settled one way or the other.
func (c *Client) retryRelease(ctx context.Context, req *controlplanev1.ReleaseRequest) bool {
	deadline := c.cfg.Now().Add(c.cfg.ReleaseRetryFor)
	for attempt := 0; ; attempt++ {
		t := time.NewTimer(c.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		err := c.releaseOnce(context.WithoutCancel(ctx), req)
		if err == nil {
			c.leases.remove(req.GetLeaseId())
			c.metrics.releases.WithLabelValues("retried_ok").Inc()
			return true
		}
		if !retryableRelease(err) || c.cfg.Now().After(deadline) {
			c.leases.remove(req.GetLeaseId())
			c.metrics.releases.WithLabelValues("dropped").Inc()
			c.log.Error("release lost; the control plane will settle the lease on expiry",
				slog.String("lease_id", req.GetLeaseId()), slog.Any("error", err))
			return true
		}
	}
}
