package scheduler

import (
	"context"
	"time"
)

// DefaultUpdateInterval is the default Options.UpdateInterval.
const DefaultUpdateInterval = 500 * time.Millisecond

// holdAlpha is the weight of the newest release in a model's mean hold time.
const holdAlpha = 0.2

// Progress is a waiting ticket's place in its model's queue.
type Progress struct {
	// Position is the estimated 1-based place (1 = next to be dispatched).
	Position int
	// EstimatedWait is the time until dispatch at the model's recent rate: the
	// position times the mean time a slot of the model is held, divided by the
	// slots in flight. Zero until one of the model's slots has been released.
	EstimatedWait time.Duration
}

// Positioner is implemented by policies that can estimate a waiter's position
// (FairShare and FIFO). The Queue calls it with its lock held.
type Positioner interface {
	Position(w *Waiter) int
}

// AcquireWatch is Acquire that reports the ticket's progress while it waits:
// once when it is queued, then whenever the position or the estimate changes,
// at most once per Options.UpdateInterval. A ticket placed at once reports
// nothing. report runs on the caller's goroutine without the Queue's lock; it
// must not block for long (a slow report delays the grant's return, not the
// grant).
func (q *Queue) AcquireWatch(ctx context.Context, t Ticket, pick Picker, report func(Progress)) (Grant, error) {
	return q.acquire(ctx, t, pick, report)
}

// progress is w's place now; pos is the fallback for policies that cannot
// estimate it. The caller holds q.mu.
func (q *Queue) progress(w *Waiter, pos int) Progress {
	if p, ok := q.policy.(Positioner); ok {
		if n := p.Position(w); n > 0 {
			pos = n
		}
	}
	pr := Progress{Position: pos}
	if hold, ok := q.holds[w.ticket.Model]; ok {
		slots := max(q.modelLoad[w.ticket.Model], 1)
		pr.EstimatedWait = (time.Duration(pos) * hold / time.Duration(slots)).Round(time.Millisecond)
	}
	return pr
}

// learnHold folds a released grant's hold time into its model's mean. The
// caller holds q.mu.
func (q *Queue) learnHold(g Grant, now time.Time) {
	if g.Ticket.Enqueued.IsZero() {
		return
	}
	held := now.Sub(g.Ticket.Enqueued.Add(g.Waited))
	if held <= 0 {
		return
	}
	mean, ok := q.holds[g.Ticket.Model]
	if !ok {
		q.holds[g.Ticket.Model] = held
		return
	}
	q.holds[g.Ticket.Model] = mean + time.Duration(holdAlpha*float64(held-mean))
}

// watch reports w's progress every UpdateInterval when it changed, until w is
// done (done true), ctx ends (cancelled true) or timeout fires (both false).
func (q *Queue) watch(ctx context.Context, w *Waiter, first Progress, timeout <-chan time.Time, report func(Progress)) (cancelled, done bool) {
	report(first)
	last := first
	// The update timer runs on the queue's clock, like the queue timeout.
	tick, stop := q.opts.After(q.opts.UpdateInterval)
	defer func() { stop() }()
	for {
		select {
		case <-w.done:
			return false, true
		case <-ctx.Done():
			return true, false
		case <-timeout:
			return false, false
		case <-tick:
			stop()
			tick, stop = q.opts.After(q.opts.UpdateInterval)
			q.mu.Lock()
			finished := w.finished
			p := q.progress(w, last.Position)
			q.mu.Unlock()
			if !finished && p != last {
				report(p)
				last = p
			}
		}
	}
}

// Position is the place of a FIFO waiter in its model's list (1-based).
func (f *FIFO) Position(w *Waiter) int {
	n := 0
	for x := w; x != nil; x = x.prev {
		n++
	}
	return n
}
