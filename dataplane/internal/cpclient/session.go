package cpclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

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
	wg.Go(func() { c.releaseLoop(ctx) })
	c.sessionLoop(ctx)
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
	sctx, cancel := context.WithCancel(c.outgoing(ctx))
	defer cancel()
	st, err := c.sessions.Session(sctx)
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
	interval := c.cfg.HeartbeatInterval
	if d := welcome.GetHeartbeatInterval().AsDuration(); d > 0 {
		interval = d
	}
	c.connected.Store(true)
	c.metrics.connected.Set(1)
	c.metrics.sessions.WithLabelValues("connected").Inc()
	c.log.Info("control-plane session established", slog.String("session_id", welcome.GetSessionId()),
		slog.Duration("heartbeat_interval", interval))
	defer func() {
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
			c.handle(m)
		}
	}()
	// stop ends the stream and waits for the receiver, which owns no other state.
	stop := func(err error) (bool, error) {
		cancel()
		<-recvErr
		return true, err
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	if err := c.heartbeat(st); err != nil {
		return stop(err)
	}
	for {
		select {
		case <-ctx.Done():
			return stop(nil)
		case err := <-recvErr:
			return true, fromStatus(ctx, err)
		case <-ticker.C:
			if err := c.heartbeat(st); err != nil {
				return stop(err)
			}
		}
	}
}

type sessionSender interface {
	Send(*controlplanev1.SessionRequest) error
}

func (c *Client) heartbeat(st sessionSender) error {
	hb := &controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Heartbeat{Heartbeat: &controlplanev1.Heartbeat{
		LeaseIds: c.leases.list(),
		Leases:   c.leases.refs(),
	}}}
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
	}
}

// releaseLoop retries releases that failed, one at a time, until each succeeds,
// is refused for good, or has been retried for ReleaseRetryFor. After ctx ends
// it keeps going for DrainTimeout.
func (c *Client) releaseLoop(ctx context.Context) {
	for {
		select {
		case req := <-c.pending:
			if !c.retryRelease(ctx, req) {
				c.requeue(req)
			}
		case <-ctx.Done():
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
