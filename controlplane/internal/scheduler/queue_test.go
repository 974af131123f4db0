package scheduler_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
)

type backend struct {
	id    int64
	slots int
}

// over picks the first backend with a free slot.
func over(backends ...backend) scheduler.Picker {
	return func(l scheduler.Load) (int64, bool, error) {
		for _, b := range backends {
			if l.InFlight(b.id) < b.slots {
				return b.id, true, nil
			}
		}
		return 0, false, nil
	}
}

func newQueue(t *testing.T, opts scheduler.Options) (*scheduler.Queue, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	q, err := scheduler.New(scheduler.NewFIFO(), opts)
	require.NoError(t, err)
	return q, reg
}

func waitDepth(t *testing.T, q *scheduler.Queue, model string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return q.Depth(model) == n }, 5*time.Second, time.Millisecond,
		"queue depth of %s never reached %d", model, n)
}

type result struct {
	i   int
	g   scheduler.Grant
	err error
}

// enqueue starts n waiters one after the other, so that their arrival order is known.
func enqueue(t *testing.T, ctx context.Context, q *scheduler.Queue, model string, n int, pick scheduler.Picker) <-chan result {
	t.Helper()
	out := make(chan result, n)
	base := q.Depth(model)
	for i := range n {
		go func() {
			g, err := q.Acquire(ctx, scheduler.Ticket{RequestID: "r", Model: model}, pick)
			out <- result{i: i, g: g, err: err}
		}()
		waitDepth(t, q, model, base+i+1)
	}
	return out
}

func TestAcquireImmediate(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, scheduler.Options{})
	g, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m"}, over(backend{7, 1}))
	require.NoError(t, err)
	require.Equal(t, int64(7), g.BackendID)
	require.Zero(t, g.Position)
	require.Equal(t, 1, q.InFlight(7))
	q.Release(g, 10)
	require.Zero(t, q.InFlight(7))
}

func TestFIFOOrderAndCapacity(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, scheduler.Options{})
	pick := over(backend{1, 1})
	first, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m"}, pick)
	require.NoError(t, err)

	const n = 8
	results := enqueue(t, t.Context(), q, "m", n, pick)
	held := first
	for want := range n {
		require.Equal(t, 1, q.InFlight(1))
		q.Release(held, 0)
		r := <-results
		require.NoError(t, r.err)
		require.Equal(t, want, r.i, "waiters must be served in arrival order")
		require.Equal(t, want+1, r.g.Position)
		held = r.g
	}
	q.Release(held, 0)
	require.Zero(t, q.InFlight(1))
	require.Zero(t, q.Depth("m"))
}

func TestHeadIsNotOvertaken(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, scheduler.Options{})
	g1, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m"}, over(backend{1, 1}))
	require.NoError(t, err)
	g2, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m"}, over(backend{2, 1}))
	require.NoError(t, err)

	headCtx, cancelHead := context.WithCancel(t.Context())
	head := enqueue(t, headCtx, q, "m", 1, over(backend{1, 1})) // only backend 1 will do
	later := enqueue(t, t.Context(), q, "m", 1, over(backend{1, 1}, backend{2, 1}))
	other := enqueue(t, t.Context(), q, "other", 1, over(backend{2, 1}))

	// Backend 2 frees: the later ticket of m could use it but must not pass the head;
	// the other model's ticket gets it.
	q.Release(g2, 0)
	r := <-other
	require.NoError(t, r.err)
	require.Equal(t, int64(2), r.g.BackendID)
	require.Equal(t, 2, q.Depth("m"))

	q.Release(r.g, 0)
	require.Equal(t, 2, q.Depth("m"), "the head blocks its model while it cannot be placed")

	cancelHead()
	require.ErrorIs(t, (<-head).err, context.Canceled)
	r = <-later
	require.NoError(t, r.err, "removing the head unblocks the next ticket")
	require.Equal(t, int64(2), r.g.BackendID)
	q.Release(r.g, 0)
	q.Release(g1, 0)
	require.Zero(t, q.InFlight(1)+q.InFlight(2))
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	q, reg := newQueue(t, scheduler.Options{MaxQueuePerModel: 2, RetryAfter: 3 * time.Second})
	pick := over(backend{1, 1})
	g, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m"}, pick)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	waiting := enqueue(t, ctx, q, "m", 2, pick)

	_, err = q.Acquire(t.Context(), scheduler.Ticket{Model: "m"}, pick)
	require.ErrorIs(t, err, scheduler.ErrQueueFull)
	var ra interface{ RetryAfter() time.Duration }
	require.ErrorAs(t, err, &ra)
	require.Equal(t, 3*time.Second, ra.RetryAfter())
	require.Equal(t, 1.0, metricValue(t, reg, "mindrouter_queue_full_total", nil))

	cancel()
	for range 2 {
		require.ErrorIs(t, (<-waiting).err, context.Canceled)
	}
	q.Release(g, 0)
}

func TestQueueTimeout(t *testing.T) {
	t.Parallel()
	// In a synctest bubble the queue's default clock is the bubble's: the
	// 150 s timeout passes at once, and exactly.
	synctest.Test(t, func(t *testing.T) {
		q, _ := newQueue(t, scheduler.Options{QueueTimeout: 150 * time.Second})
		pick := over(backend{1, 1})
		g, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m"}, pick)
		require.NoError(t, err)

		start := time.Now()
		_, err = q.Acquire(t.Context(), scheduler.Ticket{Model: "m"}, pick)
		require.ErrorIs(t, err, scheduler.ErrQueueTimeout)
		require.Equal(t, 150*time.Second, time.Since(start))
		var qe *scheduler.QueueError
		require.ErrorAs(t, err, &qe)
		require.Equal(t, scheduler.DefaultRetryAfter, qe.RetryAfter())
		require.Zero(t, q.Depth("m"))
		q.Release(g, 0)
		require.Zero(t, q.InFlight(1))
	})
}

// manualClock is a clock that moves only when told, with timers on it.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []manualTimer
}

type manualTimer struct {
	at time.Time
	c  chan time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, manualTimer{at: c.now.Add(d), c: ch})
	return ch, func() bool { return true }
}

// pending is the number of timers not yet fired.
func (c *manualClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves the clock and fires the timers that are due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(c.now) {
			kept = append(kept, tm)
			continue
		}
		tm.c <- c.now
	}
	c.timers = kept
}

// TestQueueTimeoutFollowsTheInjectedClock: the queue's timeout runs on the
// clock it was given, as its wait times do.
func TestQueueTimeoutFollowsTheInjectedClock(t *testing.T) {
	t.Parallel()
	clk := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	q, _ := newQueue(t, scheduler.Options{QueueTimeout: time.Minute, Now: clk.Now, After: clk.After})
	pick := over(backend{1, 1})
	g, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m"}, pick)
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m"}, pick)
		errc <- err
	}()
	waitDepth(t, q, "m", 1)
	require.Eventually(t, func() bool { return clk.pending() == 1 }, 5*time.Second, time.Millisecond)
	clk.Advance(59 * time.Second)
	select {
	case err := <-errc:
		t.Fatalf("timed out before its time on the injected clock: %v", err)
	default:
	}
	clk.Advance(time.Second)
	require.ErrorIs(t, <-errc, scheduler.ErrQueueTimeout)
	q.Release(g, 0)
}

func TestCancelRemovesWaiter(t *testing.T) {
	t.Parallel()
	q, reg := newQueue(t, scheduler.Options{})
	pick := over(backend{1, 1})
	g, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m"}, pick)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	waiting := enqueue(t, ctx, q, "m", 3, pick)
	require.Equal(t, 3.0, metricValue(t, reg, "mindrouter_queue_depth", map[string]string{"model": "m"}))

	cancel()
	for range 3 {
		require.ErrorIs(t, (<-waiting).err, context.Canceled)
	}
	require.Zero(t, q.Depth("m"))
	require.Zero(t, metricValue(t, reg, "mindrouter_queue_depth", map[string]string{"model": "m"}))
	q.Release(g, 0)
	require.Zero(t, q.InFlight(1))
}

func TestPickerErrorFailsWaiterOnKick(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, scheduler.Options{})
	g, err := q.Acquire(t.Context(), scheduler.Ticket{Model: "m"}, over(backend{1, 1}))
	require.NoError(t, err)

	gone := errors.New("model removed")
	var mu sync.Mutex
	removed := false
	pick := func(l scheduler.Load) (int64, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		if removed {
			return 0, false, gone
		}
		return over(backend{1, 1})(l)
	}
	waiting := enqueue(t, t.Context(), q, "m", 1, pick)
	mu.Lock()
	removed = true
	mu.Unlock()
	q.Kick()
	require.ErrorIs(t, (<-waiting).err, gone)
	require.Zero(t, q.Depth("m"))
	q.Release(g, 0)
}

// TestNoLeakUnderChurn races grants against cancellations and timeouts: whatever
// happens, every slot comes back and the capacity is never exceeded.
func TestNoLeakUnderChurn(t *testing.T) {
	t.Parallel()
	q, _ := newQueue(t, scheduler.Options{QueueTimeout: 20 * time.Millisecond})
	backends := []backend{{1, 2}, {2, 3}}
	var mu sync.Mutex
	var maxSeen int
	pick := func(l scheduler.Load) (int64, bool, error) {
		id, ok, err := over(backends...)(l)
		mu.Lock()
		maxSeen = max(maxSeen, l.InFlight(1)+l.InFlight(2))
		mu.Unlock()
		return id, ok, err
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), time.Duration(rand.IntN(5000))*time.Microsecond)
			defer cancel()
			g, err := q.Acquire(ctx, scheduler.Ticket{Model: []string{"a", "b"}[i%2]}, pick)
			if err != nil {
				return
			}
			time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
			q.Release(g, 1)
		})
	}
	wg.Wait()
	require.Zero(t, q.InFlight(1))
	require.Zero(t, q.InFlight(2))
	require.Zero(t, q.Depth("a")+q.Depth("b"))
	require.LessOrEqual(t, maxSeen, 5)
}

// metricValue reads one series of a gauge or counter from a registry (0 when absent).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
