package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Options.
const (
	DefaultMaxQueuePerModel = 1000
	DefaultQueueTimeout     = 150 * time.Second
	DefaultRetryAfter       = 5 * time.Second
)

// Load reports exact in-flight counts to a Picker.
type Load interface {
	// InFlight is the number of slots granted and not yet released on a backend.
	InFlight(backendID int64) int
}

// Picker chooses a backend for a ticket, given the current load. It returns ok
// false when every backend it could use is full (the ticket keeps waiting) and a
// non-nil error when the ticket can never be placed (the ticket fails with it). It
// runs with the Queue's lock held: it must be quick and must not call the Queue.
type Picker func(load Load) (backendID int64, ok bool, err error)

// Grant is a slot held on a backend, from Acquire until Release.
type Grant struct {
	BackendID int64
	Ticket    Ticket
	// Position is the ticket's 1-based place in its model's queue when it was
	// enqueued; 0 when it was placed at once.
	Position int
	// Waited is the time from Acquire to the grant.
	Waited time.Duration
	// Deficit is the user's fair-share credit in the model's pool, in tokens, just
	// before the grant (0 for policies that keep none).
	Deficit int64
}

// Options configure a Queue. Zero values take the defaults.
type Options struct {
	// MaxQueuePerModel bounds each model's queue (default 1000).
	MaxQueuePerModel int
	// QueueTimeout is the longest a ticket waits for a slot (default 150 s).
	QueueTimeout time.Duration
	// RetryAfter is what refusals suggest to the client (default 5 s).
	RetryAfter time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// After starts a timer on the same clock as Now: c receives once d has
	// passed, and stop cancels it (default: a time.Timer).
	After func(d time.Duration) (c <-chan time.Time, stop func() bool)
	// Registerer receives the queue's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives debug events (default: discard).
	Logger *slog.Logger
	// UpdateInterval is the shortest time between two progress reports of one
	// waiting ticket (AcquireWatch; default 500 ms).
	UpdateInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxQueuePerModel <= 0 {
		o.MaxQueuePerModel = DefaultMaxQueuePerModel
	}
	if o.QueueTimeout <= 0 {
		o.QueueTimeout = DefaultQueueTimeout
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = DefaultRetryAfter
	}
	if o.UpdateInterval <= 0 {
		o.UpdateInterval = DefaultUpdateInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = realAfter
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// realAfter is Options.After on the real clock.
func realAfter(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// counts is the in-flight map as a Load; read with the Queue lock held.
type counts map[int64]int

func (c counts) InFlight(backendID int64) int { return c[backendID] }

// dec decrements c[k], forgetting it at zero.
func dec[K comparable](c map[K]int, k K) {
	if n := c[k]; n > 1 {
		c[k] = n - 1
	} else {
		delete(c, k)
	}
}

// Queue grants backend slots to tickets in the order its Policy chooses. It is safe
// for concurrent use.
type Queue struct {
	opts    Options
	metrics *metrics

	mu       sync.Mutex
	policy   Policy
	shares   Shares // policy, when it keeps per-user state; else nil
	inflight counts
	// In-flight slots per model and per user, for the queue view.
	modelLoad map[string]int
	userLoad  map[int64]int
	// Waiters of each model in arrival order (oldest first), for the queue view.
	arrivals map[string]*arrivalList
	// holds is each model's mean slot hold time, for progress estimates.
	holds   map[string]time.Duration
	seq     uint64
	scratch []string
}

// New returns a Queue ordered by policy.
func New(policy Policy, opts Options) (*Queue, error) {
	opts = opts.withDefaults()
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("scheduler metrics: %w", err)
	}
	shares, _ := policy.(Shares)
	return &Queue{
		opts: opts, metrics: m, policy: policy, shares: shares,
		inflight:  make(counts),
		modelLoad: make(map[string]int),
		userLoad:  make(map[int64]int),
		arrivals:  make(map[string]*arrivalList),
		holds:     make(map[string]time.Duration),
	}, nil
}

// Acquire blocks until pick places t on a backend, and returns the grant. It fails
// with a *QueueError (ErrQueueFull, ErrQueueTimeout), with the Picker's error, or
// with the context's error when ctx ends first; a ticket that fails holds nothing
// and is no longer queued.
func (q *Queue) Acquire(ctx context.Context, t Ticket, pick Picker) (Grant, error) {
	return q.acquire(ctx, t, pick, nil)
}

func (q *Queue) acquire(ctx context.Context, t Ticket, pick Picker, report func(Progress)) (Grant, error) {
	if err := ctx.Err(); err != nil {
		return Grant{}, fmt.Errorf("wait for a backend slot: %w", err)
	}
	t.Enqueued = q.opts.Now()
	q.mu.Lock()
	waiting := q.policy.Len(t.Model)
	if waiting == 0 {
		// Nobody of this model is ahead: place the ticket at once if a slot is free.
		id, ok, err := pick(q.inflight)
		if err != nil {
			q.mu.Unlock()
			return Grant{}, err
		}
		if ok {
			g := Grant{BackendID: id, Ticket: t, Deficit: q.deficit(t)}
			q.policy.Charge(t)
			q.hold(g)
			q.mu.Unlock()
			return g, nil
		}
	}
	if waiting >= q.opts.MaxQueuePerModel {
		q.mu.Unlock()
		q.metrics.rejected.Inc()
		return Grant{}, &QueueError{Kind: ErrQueueFull, Model: t.Model, Waiting: waiting, After: q.opts.RetryAfter}
	}
	q.seq++
	w := &Waiter{ticket: t, seq: q.seq, pick: pick, done: make(chan struct{})}
	pos, err := q.policy.Push(w)
	if err != nil {
		q.mu.Unlock()
		q.metrics.rejected.Inc()
		return Grant{}, &QueueError{Kind: ErrQueueFull, Model: t.Model, Waiting: waiting, After: q.opts.RetryAfter, Cause: err}
	}
	q.arrival(t.Model).push(w)
	q.metrics.depth(t.Model).Set(float64(q.policy.Len(t.Model)))
	var first Progress
	if report != nil {
		first = q.progress(w, pos)
	}
	q.mu.Unlock()
	return q.wait(ctx, w, pos, first, report)
}

// wait blocks a queued waiter until it is granted, fails, times out or is cancelled.
func (q *Queue) wait(ctx context.Context, w *Waiter, pos int, first Progress, report func(Progress)) (Grant, error) {
	expired, stop := q.opts.After(q.opts.QueueTimeout)
	defer stop()
	var cancelled bool
	if report != nil {
		var done bool
		if cancelled, done = q.watch(ctx, w, first, expired, report); done {
			return q.finish(w, pos)
		}
	} else {
		select {
		case <-w.done:
			return q.finish(w, pos)
		case <-ctx.Done():
			cancelled = true
		case <-expired:
		}
	}
	q.mu.Lock()
	if w.finished {
		// Granted or failed while we were giving up.
		q.mu.Unlock()
		if cancelled && w.err == nil {
			q.Release(w.grant, 0) // nobody will use the slot
			q.metrics.observeWait("cancelled", w.grant.Waited)
			return Grant{}, fmt.Errorf("wait for a backend slot: %w", ctx.Err())
		}
		return q.finish(w, pos)
	}
	model := w.ticket.Model
	q.policy.Remove(w)
	q.unqueue(w)
	w.finished = true
	q.metrics.depth(model).Set(float64(q.policy.Len(model)))
	// A removed head may have been the only thing blocking its model.
	q.dispatchLocked()
	q.mu.Unlock()

	waited := q.opts.Now().Sub(w.ticket.Enqueued)
	if cancelled {
		q.metrics.observeWait("cancelled", waited)
		return Grant{}, fmt.Errorf("wait for a backend slot: %w", ctx.Err())
	}
	q.metrics.observeWait("timeout", waited)
	q.opts.Logger.Debug("queue timeout", slog.String("model", model),
		slog.String("request_id", w.ticket.RequestID), slog.Duration("waited", waited))
	return Grant{}, &QueueError{Kind: ErrQueueTimeout, Model: model, Waited: waited, After: q.opts.RetryAfter}
}

// finish returns the outcome a dispatcher recorded for w.
func (q *Queue) finish(w *Waiter, pos int) (Grant, error) {
	if w.err != nil {
		q.metrics.observeWait("failed", q.opts.Now().Sub(w.ticket.Enqueued))
		return Grant{}, w.err
	}
	g := w.grant
	g.Position = pos
	q.metrics.observeWait("granted", g.Waited)
	return g, nil
}

// Release frees the slot of g and offers it to the waiters. cost is the tokens the
// request really used (for token-weighted policies). Call it once per grant.
func (q *Queue) Release(g Grant, cost int64) {
	q.mu.Lock()
	dec(q.inflight, g.BackendID)
	dec(q.modelLoad, g.Ticket.Model)
	dec(q.userLoad, g.Ticket.UserID)
	q.learnHold(g, q.opts.Now())
	q.policy.Settle(g.Ticket, cost)
	q.dispatchLocked()
	q.mu.Unlock()
}

// Kick re-evaluates every waiter, e.g. after the registry changed.
func (q *Queue) Kick() {
	q.mu.Lock()
	q.dispatchLocked()
	q.mu.Unlock()
}

// InFlight is the number of slots held on a backend.
func (q *Queue) InFlight(backendID int64) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.inflight[backendID]
}

// Depth is the number of tickets waiting for model.
func (q *Queue) Depth(model string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.policy.Len(model)
}

// dispatchLocked offers free capacity to the heads of the waiting models, in the
// policy's order, until no head can be placed. A head that cannot be placed blocks
// its own model only.
func (q *Queue) dispatchLocked() {
	q.scratch = q.policy.Models(q.scratch[:0])
	if len(q.scratch) == 0 {
		return
	}
	now := q.opts.Now()
	for _, model := range q.scratch {
		changed := false
		for {
			w := q.policy.Head(model)
			if w == nil {
				break
			}
			id, ok, err := w.pick(q.inflight)
			if err == nil && !ok {
				break
			}
			var deficit int64
			if err == nil {
				deficit = q.deficit(w.ticket)
			}
			q.policy.Pop(model)
			q.unqueue(w)
			changed = true
			w.finished = true
			if err != nil {
				w.err = err
			} else {
				w.grant = Grant{BackendID: id, Ticket: w.ticket, Waited: now.Sub(w.ticket.Enqueued), Deficit: deficit}
				q.hold(w.grant)
			}
			close(w.done)
		}
		if changed {
			q.metrics.depth(model).Set(float64(q.policy.Len(model)))
		}
	}
	clear(q.scratch)
}
