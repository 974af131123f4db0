package scheduler_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
)

// fakeClock is a settable time source.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newFairQueue(t *testing.T, prm fairshare.Params, opts scheduler.Options) (*scheduler.Queue, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	policy, err := scheduler.NewFairShare(prm, clk.Now)
	require.NoError(t, err)
	opts.Now = clk.Now
	opts.Registerer = prometheus.NewRegistry()
	q, err := scheduler.New(policy, opts)
	require.NoError(t, err)
	return q, clk
}

func TestNewFairShareRejectsBadParams(t *testing.T) {
	t.Parallel()
	prm := fairshare.DefaultParams()
	prm.Quantum = 0
	_, err := scheduler.NewFairShare(prm, nil)
	require.ErrorIs(t, err, fairshare.ErrInvalidParams)
}

// TestFairShareWeightedOrder: with one slot, a weight-3 user gets three grants
// for every one of a weight-1 user, in tokens.
func TestFairShareWeightedOrder(t *testing.T) {
	t.Parallel()
	prm := fairshare.DefaultParams()
	prm.BurstCredits = 0 // no head start for newcomers: pure round robin
	q, _ := newFairQueue(t, prm, scheduler.Options{})
	pick := over(backend{1, 1})
	held, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m", UserID: 9, Weight: 1, Cost: 512}, pick)
	require.NoError(t, err)

	type res struct {
		user int64
		g    scheduler.Grant
	}
	out := make(chan res, 64)
	queued := 0
	for _, u := range []struct {
		id     int64
		weight int
	}{{1, 1}, {3, 3}} {
		for range 12 {
			go func() {
				g, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m", UserID: u.id, Weight: u.weight, Cost: 512}, pick)
				if assert.NoError(t, err) {
					out <- res{u.id, g}
				}
			}()
			queued++
			waitDepth(t, q, "m", queued)
		}
	}
	served := map[int64]int{}
	for range 16 {
		q.Release(held, 512)
		r := <-out
		served[r.user]++
		held = r.g
	}
	require.Equal(t, map[int64]int{1: 4, 3: 12}, served)
	q.Release(held, 512)
	for range 8 {
		r := <-out
		q.Release(r.g, 512)
	}
}

// TestFairShareUserQueueLimit: a user over MaxQueuePerUser is refused with
// ErrQueueFull and a Retry-After, and another user still queues.
func TestFairShareUserQueueLimit(t *testing.T) {
	t.Parallel()
	prm := fairshare.DefaultParams()
	prm.MaxQueuePerUser = 2
	q, _ := newFairQueue(t, prm, scheduler.Options{RetryAfter: 4 * time.Second})
	pick := over(backend{1, 1})
	g, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m", UserID: 1}, pick)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for i := range 2 {
		go func() { _, _ = q.Acquire(ctx, scheduler.Ticket{Model: "m", UserID: 1}, pick) }()
		waitDepth(t, q, "m", i+1)
	}
	_, err = q.Acquire(t.Context(), scheduler.Ticket{Model: "m", UserID: 1}, pick)
	require.ErrorIs(t, err, scheduler.ErrQueueFull)
	require.ErrorIs(t, err, fairshare.ErrUserQueueFull)
	var qe *scheduler.QueueError
	require.ErrorAs(t, err, &qe)
	require.Equal(t, 4*time.Second, qe.RetryAfter())
	require.Contains(t, err.Error(), "user queue full")

	go func() { _, _ = q.Acquire(ctx, scheduler.Ticket{Model: "m", UserID: 2}, pick) }()
	waitDepth(t, q, "m", 3)
	cancel()
	waitDepth(t, q, "m", 0)
	q.Release(g, 0)
}

// TestSnapshot shows waiting and in-flight tickets per model, user and backend,
// with the policy's per-user state.
func TestSnapshot(t *testing.T) {
	t.Parallel()
	q, clk := newFairQueue(t, fairshare.DefaultParams(), scheduler.Options{})
	pick := over(backend{1, 1})
	g1, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "a", UserID: 1, Weight: 3, Cost: 100}, pick)
	require.NoError(t, err)
	g2, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "b", UserID: 2, Weight: 1, Cost: 100}, over(backend{2, 4}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	enqueued := clk.Now()
	go func() { _, _ = q.Acquire(ctx, scheduler.Ticket{Model: "a", UserID: 2, Weight: 1, Cost: 100}, pick) }()
	waitDepth(t, q, "a", 1)
	clk.Advance(3 * time.Second)
	go func() { _, _ = q.Acquire(ctx, scheduler.Ticket{Model: "a", UserID: 2, Weight: 1, Cost: 100}, pick) }()
	waitDepth(t, q, "a", 2)

	snap := q.Snapshot()
	require.Equal(t, fairshare.DefaultParams().FairnessWindow, snap.FairnessWindow)
	require.Equal(t, []scheduler.ModelLoad{
		{Model: "a", Waiting: 2, InFlight: 1, Oldest: enqueued},
		{Model: "b", InFlight: 1},
	}, snap.Models)
	require.Equal(t, []scheduler.BackendLoad{{BackendID: 1, InFlight: 1}, {BackendID: 2, InFlight: 1}}, snap.Backends)
	require.Len(t, snap.Users, 2)
	u1, u2 := snap.Users[0], snap.Users[1]
	assert.Equal(t, int64(1), u1.UserID)
	assert.Equal(t, 3, u1.Weight)
	assert.Equal(t, 0, u1.Waiting)
	assert.Equal(t, 1, u1.InFlight)
	assert.Equal(t, int64(100), u1.RecentTokens)
	assert.Equal(t, int64(2), u2.UserID)
	assert.Equal(t, 1, u2.Weight)
	assert.Equal(t, 2, u2.Waiting)
	assert.Equal(t, 1, u2.InFlight)

	cancel()
	waitDepth(t, q, "a", 0)
	q.Release(g1, 40)
	q.Release(g2, 40)
	snap = q.Snapshot()
	require.Empty(t, snap.Models)
	require.Empty(t, snap.Backends)
	for _, u := range snap.Users {
		assert.Zero(t, u.Waiting+u.InFlight, "user %d", u.UserID)
	}
}

// TestGrantCarriesDeficit: a grant reports the user's credit just before it was
// charged, as the pool shows it (refreshed at most every 100 ms).
func TestGrantCarriesDeficit(t *testing.T) {
	t.Parallel()
	q, clk := newFairQueue(t, fairshare.DefaultParams(), scheduler.Options{})
	pick := over(backend{1, 1})
	held, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m", UserID: 9, Weight: 1, Cost: 10}, pick)
	require.NoError(t, err)
	require.Zero(t, held.Deficit, "an unknown user has no credit yet")
	out := make(chan scheduler.Grant, 2)
	for i, user := range []int64{1, 2} {
		go func() {
			g, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m", UserID: user, Weight: int(user), Cost: 3000}, pick)
			if assert.NoError(t, err) {
				out <- g
			}
		}()
		waitDepth(t, q, "m", i+1)
	}
	for range 2 {
		clk.Advance(time.Second)
		want := map[int64]int64{}
		for _, u := range q.Snapshot().Users {
			want[u.UserID] = u.Deficit
		}
		q.Release(held, 10)
		held = <-out
		require.Equal(t, want[held.Ticket.UserID], held.Deficit, "user %d", held.Ticket.UserID)
	}
	q.Release(held, 10)
}

// TestAdopt counts slots granted before a restart, over the backend's limit if
// need be, until they are released.
func TestAdopt(t *testing.T) {
	t.Parallel()
	q, _ := newFairQueue(t, fairshare.DefaultParams(), scheduler.Options{})
	pick := over(backend{1, 1})
	a1 := q.Adopt(scheduler.Ticket{RequestID: "old-1", Model: "m", UserID: 5}, 1)
	a2 := q.Adopt(scheduler.Ticket{RequestID: "old-2", Model: "m", UserID: 5}, 1)
	require.Equal(t, 2, q.InFlight(1))
	snap := q.Snapshot()
	require.Equal(t, []scheduler.ModelLoad{{Model: "m", InFlight: 2}}, snap.Models)

	waiting := enqueue(t, t.Context(), q, "m", 1, pick)
	q.Release(a1, 300)
	select {
	case r := <-waiting:
		t.Fatalf("granted while the backend was still full: %+v", r)
	default:
	}
	q.Release(a2, 300)
	r := <-waiting
	require.NoError(t, r.err)
	q.Release(r.g, 0)
	require.Zero(t, q.InFlight(1))
	for _, u := range q.Snapshot().Users {
		if u.UserID == 5 {
			require.Equal(t, int64(600), u.RecentTokens, "adopted usage is charged at its real cost")
		}
	}
}
