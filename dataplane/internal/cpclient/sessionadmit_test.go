package cpclient_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

// TestSessionAdmitGranted: with the session up, an admission is a message on
// it (no unary call), and its lease is renewed and released like any other.
func TestSessionAdmitGranted(t *testing.T) {
	t.Parallel()
	h := sessionHarness(t)
	grant, err := h.client.Admit(context.Background(), admitReq())
	require.NoError(t, err)
	require.Equal(t, "http://gpu1:11434", grant.Lease.BackendURL)
	require.Equal(t, 1, h.fake.SessionAdmits())
	require.Equal(t, "dp-test", h.fake.AdmitMessages()[0].GetReplicaId())
	require.Equal(t, []string{grant.Lease.ID}, h.client.InFlight())
	require.NoError(t, h.client.Release(context.Background(), relay.Release{LeaseID: grant.Lease.ID, Outcome: relay.OutcomeSuccess}))
	h.fake.WaitReleases(t, 1)
	require.Eventually(t, func() bool { return len(h.client.InFlight()) == 0 }, 5*time.Second, 5*time.Millisecond)
	require.Empty(t, h.fake.Unreleased())
}

// TestSessionAdmitQueuedThenGranted: an admission blocks while the control
// plane holds it, and a watching caller hears its queue updates first.
func TestSessionAdmitQueuedThenGranted(t *testing.T) {
	t.Parallel()
	h := sessionHarness(t)
	h.fake.SetQueueUpdates(relay.QueueUpdate{Position: 3, EstimatedWait: 2 * time.Second}, relay.QueueUpdate{Position: 1})
	release := h.fake.HoldAdmits()
	type result struct {
		grant   relay.Grant
		err     error
		updates []relay.QueueUpdate
	}
	done := make(chan result, 1)
	go func() {
		var updates []relay.QueueUpdate
		g, err := h.client.AdmitWatch(context.Background(), admitReq(), func(u relay.QueueUpdate) { updates = append(updates, u) })
		done <- result{g, err, updates}
	}()
	h.fake.WaitFor(t, 0, "the admission", func() bool { return len(h.fake.Admits()) == 1 })
	select {
	case r := <-done:
		t.Fatalf("admission ended while held: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	r := <-done
	require.NoError(t, r.err)
	require.NotEmpty(t, r.grant.Lease.ID)
	require.Equal(t, []relay.QueueUpdate{{Position: 3, EstimatedWait: 2 * time.Second}, {Position: 1}}, r.updates)
	require.Equal(t, 1, h.fake.SessionAdmits())
	require.Zero(t, h.fake.AdmitStreams(), "no AdmitStream call: the session carried it")
}

// TestSessionAdmitCancelledWhileQueued: the caller going away sends a cancel
// that takes the admission off the control plane's queue.
func TestSessionAdmitCancelledWhileQueued(t *testing.T) {
	t.Parallel()
	h := sessionHarness(t)
	defer h.fake.HoldAdmits()()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := h.client.Admit(ctx, admitReq())
		errc <- err
	}()
	h.fake.WaitFor(t, 0, "the admission", func() bool { return len(h.fake.Admits()) == 1 })
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	h.fake.WaitFor(t, 0, "the control plane to drop it", func() bool { return h.fake.CancelledAdmits() == 1 })
	require.Equal(t, 1, h.fake.OpenSessions(), "a cancel does not break the session")
	require.Empty(t, h.client.InFlight())
}

// TestSessionAdmitTimeout: Config.AdmitTimeout bounds an admission on the
// session as on the unary call (a queue timeout), and the control plane is
// told the deadline too.
func TestSessionAdmitTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *cpclient.Config) { c.AdmitTimeout = 80 * time.Millisecond })
	h.run(t)
	require.Eventually(t, h.client.Connected, 5*time.Second, 5*time.Millisecond)
	defer h.fake.HoldAdmits()()
	start := time.Now()
	_, err := h.client.Admit(context.Background(), admitReq())
	var ce *cpclient.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, relay.ReasonQueueTimeout, ce.Reason)
	require.Less(t, time.Since(start), 3*time.Second)
	require.Equal(t, 1, h.fake.SessionAdmits())
	h.fake.WaitFor(t, 0, "the control plane to give up too", func() bool { return h.fake.CancelledAdmits() == 1 })
}

// TestSessionBreaksMidAdmit: an admission waiting on a session that breaks
// fails as a unary call to a vanished control plane does (unreachable), and
// no lease is left behind on either side.
func TestSessionBreaksMidAdmit(t *testing.T) {
	t.Parallel()
	h := sessionHarness(t)
	release := h.fake.HoldAdmits()
	defer release()
	errc := make(chan error, 1)
	go func() {
		_, err := h.client.Admit(context.Background(), admitReq())
		errc <- err
	}()
	h.fake.WaitFor(t, 0, "the admission", func() bool { return len(h.fake.Admits()) == 1 })
	h.fake.Stop()
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("the admission outlived its session")
	}
	var ce *cpclient.Error
	require.ErrorAs(t, err, &ce)
	require.True(t, ce.Unreachable(), "%v", err)
	require.Empty(t, h.client.InFlight())
	require.Empty(t, h.fake.Unreleased(), "the control plane granted nothing")
}

// TestSessionAdmitFailsOver: with a failover wait, an admission whose session
// broke is sent again and granted by the control plane that comes back.
func TestSessionAdmitFailsOver(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *cpclient.Config) { c.FailoverWait = 20 * time.Second; c.SessionReleases = true })
	h.run(t)
	require.Eventually(t, h.client.Connected, 5*time.Second, 5*time.Millisecond)
	release := h.fake.HoldAdmits()
	errc := make(chan error, 1)
	go func() {
		_, err := h.client.Admit(context.Background(), admitReq())
		errc <- err
	}()
	h.fake.WaitFor(t, 0, "the admission", func() bool { return len(h.fake.Admits()) == 1 })
	h.fake.Stop()
	release()
	time.Sleep(200 * time.Millisecond)
	h.fake.Restart(t)
	select {
	case err := <-errc:
		require.NoError(t, err, "the admission went through to the control plane that came back")
	case <-time.After(20 * time.Second):
		t.Fatal("the admission did not go through after the control plane came back")
	}
	require.Len(t, h.fake.Admits(), 2, "sent again after the break")
}

// TestUnaryAdmitWhereTheSessionCannotCarryIt: a control plane whose Welcome
// does not offer session admissions (an older one) gets unary Admit calls, and
// its session is not broken by a message it would not understand; so does any
// control plane with Config.UnaryAdmit.
func TestUnaryAdmitWhereTheSessionCannotCarryIt(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ olderCP, unaryAdmit bool }{
		"older control plane": {olderCP: true},
		"UnaryAdmit":          {unaryAdmit: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *cpclient.Config) { c.UnaryAdmit = tc.unaryAdmit })
			if tc.olderCP {
				h.fake.DisableSessionAdmit()
			}
			h.run(t)
			require.Eventually(t, h.client.Connected, 5*time.Second, 5*time.Millisecond)
			_, err := h.client.Admit(context.Background(), admitReq())
			require.NoError(t, err)
			require.Len(t, h.fake.Admits(), 1)
			require.Zero(t, h.fake.SessionAdmits())
			require.Equal(t, 1, h.fake.OpenSessions())
		})
	}
}

// TestSessionAdmitsConcurrent: many admissions share the session at once,
// each answered with its own lease, and every lease is settled exactly once.
func TestSessionAdmitsConcurrent(t *testing.T) {
	t.Parallel()
	h := sessionHarness(t)
	const n = 64
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			req := admitReq()
			req.RequestID = "r" + strconv.Itoa(i)
			g, err := h.client.Admit(context.Background(), req)
			if err != nil {
				errs <- err
				return
			}
			require.Equal(t, req.RequestID, g.Lease.RequestID, "each answer reaches its own caller")
			ids[i] = g.Lease.ID
			errs <- h.client.Release(context.Background(), relay.Release{LeaseID: g.Lease.ID, Outcome: relay.OutcomeSuccess})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		require.False(t, seen[id], "lease %s granted twice", id)
		seen[id] = true
	}
	require.Equal(t, n, h.fake.SessionAdmits())
	h.fake.WaitReleases(t, n)
	require.Empty(t, h.fake.Unreleased())
}
