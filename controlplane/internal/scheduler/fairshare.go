package scheduler

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
)

var _ Shares = (*FairShare)(nil)

// FairShare is the Policy that orders each model's waiters by token-weighted
// deficit round robin over per-user queues (package fairshare): one pool per model,
// so users' shares are computed per model pool. Capacity is offered first to the
// model whose next request has waited longest. The Queue's lock serialises every
// call, and a pool needs no lock of its own.
type FairShare struct {
	params fairshare.Params
	now    func() time.Time
	pools  map[string]*pool
}

// deficitRefresh bounds the age of the snapshot Deficit reads.
const deficitRefresh = 100 * time.Millisecond

// pool is one model's fair-share pool with the snapshot Deficit reads.
type pool struct {
	*fairshare.Pool
	// The snapshot: users in ascending order and each one's state.
	users   []int64
	stats   []userState
	statsAt time.Time
}

// userState is what the snapshot keeps of a user.
type userState struct {
	deficit int64
	weight  int
}

// NewFairShare returns an empty fair-share policy with the given parameters.
func NewFairShare(p fairshare.Params, now func() time.Time) (*FairShare, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("new fair-share policy: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &FairShare{params: p, now: now, pools: make(map[string]*pool)}, nil
}

// pool returns the model's pool, creating it on first use. Pools are kept while
// empty so that the users' recent usage (the fairness window) survives idle gaps.
func (f *FairShare) pool(model string) *pool {
	p := f.pools[model]
	if p == nil {
		// Parameters were validated in NewFairShare, so NewPool cannot fail.
		fp, _ := fairshare.NewPool(f.params, f.now)
		p = &pool{Pool: fp}
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

// Charge bills a ticket granted without queueing like a dispatched one. A ticket
// without a weight (an adopted lease) keeps the weight the pool knows for its user.
func (f *FairShare) Charge(t Ticket) {
	p := f.pool(t.Model)
	if t.Weight <= 0 {
		t.Weight = 1
		if s, ok := p.user(t.UserID, f.now()); ok {
			t.Weight = s.weight
		}
	}
	p.Charge(f.request(t, t.RequestID, nil))
}

// Settle replaces the estimated cost of a finished ticket by its real cost.
func (f *FairShare) Settle(t Ticket, cost int64) {
	if p := f.pools[t.Model]; p != nil {
		p.Settle(t.UserID, max(t.Cost, 1), cost)
	}
}

// Deficit is the user's credit in model's pool, in tokens. It reads a snapshot of
// the pool's per-user state that is refreshed at most every deficitRefresh: the
// pool offers no per-user lookup, and its Stats is O(users), too slow for every
// grant. The value is therefore up to deficitRefresh old.
func (f *FairShare) Deficit(model string, user int64) int64 {
	p := f.pools[model]
	if p == nil {
		return 0
	}
	s, _ := p.user(user, f.now())
	return s.deficit
}

// user returns a user's state from the pool's snapshot, refreshing it when it is
// deficitRefresh old.
func (p *pool) user(id int64, now time.Time) (userState, bool) {
	if p.users == nil || now.Sub(p.statsAt) >= deficitRefresh || now.Before(p.statsAt) {
		p.users, p.stats = p.users[:0], p.stats[:0]
		for _, s := range p.Stats() { // ordered by user
			p.users = append(p.users, s.User)
			p.stats = append(p.stats, userState{deficit: s.Deficit, weight: s.Weight})
		}
		if p.users == nil {
			p.users = []int64{}
		}
		p.statsAt = now
	}
	i, ok := slices.BinarySearch(p.users, id)
	if !ok {
		return userState{}, false
	}
	return p.stats[i], true
}

// Users appends every known user's state, summed over the model pools: weight is
// the largest, penalty the smallest. O(users × models).
func (f *FairShare) Users(dst []UserShare) []UserShare {
	byUser := make(map[int64]int)
	for _, p := range f.pools {
		for _, s := range p.Stats() {
			i, ok := byUser[s.User]
			if !ok {
				i = len(dst)
				byUser[s.User] = i
				dst = append(dst, UserShare{UserID: s.User, Penalty: 1})
			}
			u := &dst[i]
			u.Weight = max(u.Weight, s.Weight)
			u.Deficit += s.Deficit
			u.BurstCredits += s.BurstCredits
			u.RecentTokens += s.RecentTokens
			u.Penalty = min(u.Penalty, s.Penalty)
		}
	}
	return dst
}

// FairnessWindow is the pools' recent-usage window.
func (f *FairShare) FairnessWindow() time.Duration { return f.params.FairnessWindow }

// Position estimates where a waiter stands in its model's pool (1-based).
func (f *FairShare) Position(w *Waiter) int {
	if p := f.pools[w.ticket.Model]; p != nil {
		return p.Position(requestID(w))
	}
	return 0
}

// NewFairShareQueue returns a Queue whose waiters are ordered by fair share with
// parameters p. The pools never refuse before the queue's own per-model limit:
// p.MaxQueuePerModel follows opts.MaxQueuePerModel (after its default).
func NewFairShareQueue(p fairshare.Params, opts Options) (*Queue, error) {
	opts = opts.withDefaults()
	p.MaxQueuePerModel = opts.MaxQueuePerModel
	fs, err := NewFairShare(p, opts.Now)
	if err != nil {
		return nil, err
	}
	return New(fs, opts)
}
