package scheduler

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
)

// FairShare is the Policy that orders each model's waiters by token-weighted
// deficit round robin over per-user queues (package fairshare): one pool per model,
// so users' shares are computed per model pool. Capacity is offered first to the
// model whose next request has waited longest. The Queue's lock serialises every
// call, and a pool needs no lock of its own.
type FairShare struct {
	params fairshare.Params
	now    func() time.Time
	pools  map[string]*fairshare.Pool
}

// NewFairShare returns an empty fair-share policy with the given parameters.
func NewFairShare(p fairshare.Params, now func() time.Time) (*FairShare, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &FairShare{params: p, now: now, pools: make(map[string]*fairshare.Pool)}, nil
}

// pool returns the model's pool, creating it on first use. Pools are kept while
// empty so that the users' recent usage (the fairness window) survives idle gaps.
func (f *FairShare) pool(model string) *fairshare.Pool {
	p := f.pools[model]
	if p == nil {
		// Parameters were validated in NewFairShare, so NewPool cannot fail.
		p, _ = fairshare.NewPool(f.params, f.now)
		f.pools[model] = p
	}
	return p
}

// requestID names a waiter inside its pool: the Queue's arrival number is unique
// even when one client request id is retried.
func requestID(w *Waiter) string { return strconv.FormatUint(w.seq, 36) }

func (f *FairShare) request(t Ticket, id string, payload any) fairshare.Request {
	return fairshare.Request{ID: id, User: t.UserID, Weight: max(t.Weight, 1), Cost: max(t.Cost, 1), Enqueued: t.Enqueued, Payload: payload}
}

// Push queues w behind its user's earlier requests; it refuses a user who already
// has MaxQueuePerUser requests waiting for the model.
func (f *FairShare) Push(w *Waiter) (int, error) {
	pos, err := f.pool(w.ticket.Model).Enqueue(f.request(w.ticket, requestID(w), w))
	if err != nil {
		return 0, fmt.Errorf("fair-share queue: %w", err)
	}
	return pos, nil
}

// Remove withdraws a waiter that gave up.
func (f *FairShare) Remove(w *Waiter) {
	if p := f.pools[w.ticket.Model]; p != nil {
		p.Remove(requestID(w))
	}
}

// Head returns the waiter the pool would dispatch next.
func (f *FairShare) Head(model string) *Waiter {
	p := f.pools[model]
	if p == nil {
		return nil
	}
	r, ok := p.Peek()
	if !ok {
		return nil
	}
	return r.Payload.(*Waiter)
}

// Pop dispatches the head (charging its estimated cost to its user).
func (f *FairShare) Pop(model string) {
	if p := f.pools[model]; p != nil {
		p.Next()
	}
}

// Len is the number of waiters of model.
func (f *FairShare) Len(model string) int {
	if p := f.pools[model]; p != nil {
		return p.Len()
	}
	return 0
}

// Models lists the models with waiters, the one whose head waited longest first.
func (f *FairShare) Models(dst []string) []string {
	start := len(dst)
	for m, p := range f.pools {
		if p.Len() > 0 {
			dst = append(dst, m)
		}
	}
	slices.SortFunc(dst[start:], func(a, b string) int {
		ha, hb := f.Head(a), f.Head(b)
		if c := ha.ticket.Enqueued.Compare(hb.ticket.Enqueued); c != 0 {
			return c
		}
		switch {
		case ha.seq < hb.seq:
			return -1
		case ha.seq > hb.seq:
			return 1
		}
		return 0
	})
	return dst
}

// Charge bills a ticket granted without queueing like a dispatched one.
func (f *FairShare) Charge(t Ticket) {
	f.pool(t.Model).Charge(f.request(t, t.RequestID, nil))
}

// Settle replaces the estimated cost of a finished ticket by its real cost.
func (f *FairShare) Settle(t Ticket, cost int64) {
	if p := f.pools[t.Model]; p != nil {
		p.Settle(t.UserID, max(t.Cost, 1), cost)
	}
}

// Stats returns each model's per-user fair-share state, for the admin queue view.
func (f *FairShare) Stats() map[string][]fairshare.UserStats {
	out := make(map[string][]fairshare.UserStats, len(f.pools))
	for m, p := range f.pools {
		out[m] = p.Stats()
	}
	return out
}

// Position estimates where a waiter stands in its model's pool (1-based).
func (f *FairShare) Position(w *Waiter) int {
	if p := f.pools[w.ticket.Model]; p != nil {
		return p.Position(requestID(w))
	}
	return 0
}
