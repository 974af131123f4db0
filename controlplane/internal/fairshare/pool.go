package fairshare

import (
	"fmt"
	"math"
	"time"
)

// Request is one request waiting for a backend slot of the pool's model.
type Request struct {
	// ID identifies the request; it must be unique among the queued requests.
	ID string
	// User is the principal the request is charged to.
	User int64
	// Weight is the user's fair-share weight (values below 1 count as 1). The latest
	// request's weight applies to all of the user's requests.
	Weight int
	// Cost is the estimated number of tokens (prompt plus maximum output); values
	// below 1 count as 1. Settle corrects it at release.
	Cost int64
	// Enqueued is when the request arrived; the zero time means "now".
	Enqueued time.Time
	// Payload is carried untouched, for the caller's own bookkeeping (for example
	// the scheduler's waiter). The Pool never looks at it.
	Payload any
}

// entry is a queued request, linked into its user's FIFO and the pool's arrival list.
type entry struct {
	req          Request
	u            *user
	prev, next   *entry // the user's queue
	aprev, anext *entry // the pool's arrival order
	indexed      bool   // present in Pool.byID
}

// Pool is the fair-share queue of one model. It is not safe for concurrent use: the
// caller serialises calls (see the package documentation).
type Pool struct {
	prm Params
	now func() time.Time

	users map[int64]*user
	byID  map[string]*entry
	free  []*entry // recycled entries, so that steady state does not allocate

	first, last *entry // queued requests in arrival order
	queued      int
	queuedCost  int64
	// queuedExpected is the queued requests' cost at their users' cost ratios.
	queuedExpected float64

	drr
	win   window
	burst burstClock

	// The choice of Peek, valid until the next mutation.
	peeked      *entry
	peekedTurn  bool
	peekedValid bool
}

// NewPool returns an empty pool. now is the clock (nil means time.Now).
func NewPool(p Params, now func() time.Time) (*Pool, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("new fair-share pool: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	pl := &Pool{
		prm:   p,
		now:   now,
		users: make(map[int64]*user),
		byID:  make(map[string]*entry),
	}
	pl.ratio = 1
	t := now()
	pl.win.init(p.FairnessWindow, t)
	pl.burst.last = t
	return pl, nil
}

// Params returns the pool's parameters.
func (p *Pool) Params() Params { return p.prm }

// Len is the number of queued requests.
func (p *Pool) Len() int { return p.queued }

// Enqueue queues r and returns its estimated 1-based position (1 = dispatched
// next). It fails with ErrInvalidRequest, ErrDuplicateID, ErrModelQueueFull or
// ErrUserQueueFull, and then changes nothing.
func (p *Pool) Enqueue(r Request) (int, error) {
	switch {
	case r.ID == "":
		return 0, fmt.Errorf("enqueue: %w: empty ID", ErrInvalidRequest)
	case p.byID[r.ID] != nil:
		return 0, fmt.Errorf("enqueue %q: %w", r.ID, ErrDuplicateID)
	}
	if err := p.Check(r.User); err != nil {
		return 0, fmt.Errorf("enqueue %q: %w", r.ID, err)
	}
	now := p.tick()
	e := p.push(r, now)
	e.indexed = true
	p.byID[r.ID] = e
	return p.position(e), nil
}

// Check reports whether a request of user would be refused for a queue limit
// (ErrModelQueueFull or ErrUserQueueFull) without queueing anything, for callers
// whose enqueue step cannot fail.
func (p *Pool) Check(user int64) error {
	if p.queued >= p.prm.MaxQueuePerModel {
		return fmt.Errorf("%w (%d queued)", ErrModelQueueFull, p.queued)
	}
	if u := p.users[user]; u != nil && u.queued >= p.prm.MaxQueuePerUser {
		return fmt.Errorf("%w (%d queued by the user)", ErrUserQueueFull, u.queued)
	}
	return nil
}

// Remove takes a queued request off the pool (client gone, timed out elsewhere) and
// reports whether it was queued. It charges nothing.
func (p *Pool) Remove(id string) bool {
	e := p.byID[id]
	if e == nil {
		return false
	}
	now := p.tick()
	p.unlink(e, now)
	p.recycle(e)
	return true
}

// Peek returns the request Next would dispatch, without dispatching it. Until the
// pool changes, repeated Peeks and the following Next agree even if time passes, so
// a scheduler can try to place the head and leave it queued when no slot fits.
func (p *Pool) Peek() (Request, bool) {
	now := p.tick()
	e, _ := p.choice(now)
	if e == nil {
		return Request{}, false
	}
	return e.req, true
}

// Next dispatches the next request when a slot frees: WDRR over the users' queues,
// unless the longest-waiting head has earned enough wait bonus to go first. It
// returns false only when nothing is queued (work conservation). The estimated cost
// is charged now; call Settle once the slot is released.
func (p *Pool) Next() (Request, bool) {
	now := p.tick()
	e, inTurn := p.choice(now)
	if e == nil {
		return Request{}, false
	}
	req := e.req
	p.dispatch(e, inTurn, now)
	return req, true
}

// Charge records a request that the caller dispatched without queueing it (the
// fast path when the pool is empty and a slot is free). It is accounted like Enqueue
// followed by Next; call Settle at release as for any other request. Queue limits
// and ID uniqueness do not apply.
func (p *Pool) Charge(r Request) {
	now := p.tick()
	e := p.push(r, now)
	u := e.u
	p.dispatch(e, u.head == e && p.heap[0] == u, now)
}

// Settle corrects the charge of a dispatched request of user with its real cost,
// in tokens, when its slot is released: the deficit and the usage window move by
// actual minus what the request was charged at dispatch (its estimate times the
// user's cost ratio; a refund never lifts the credit above one quantum plus the
// head's cost), and the ratio learns from actual/estimated. Call it exactly once
// per request returned by Next or given to Charge; estimated must be the Cost the
// request was dispatched with.
func (p *Pool) Settle(user int64, estimated, actual int64) {
	p.tick()
	u := p.users[user]
	if u == nil {
		u = p.newUser(user, 1)
	}
	estimated, actual = clampCost(estimated), clampCost(actual)
	charged := u.settled(estimated)
	if u.inflight > 0 {
		u.inflight--
	}
	if delta := float64(actual) - charged; delta > 0 {
		p.win.add(u, int64(math.Round(delta)))
		u.deficit = max(u.deficit-delta, -p.debtLimit(u))
	} else if delta < 0 {
		p.win.add(u, int64(math.Round(delta)))
		p.refund(u, -delta)
	}
	p.learn(u, estimated, actual)
	if !u.active {
		u.deficit = min(u.deficit, 0) // credit is not kept out of the ring
	} else {
		p.requantum(u)
		p.rekey(u)
	}
	p.win.presence(u)
	p.invalidate()
}

// Expire removes the requests that have waited Params.QueueTimeout or longer,
// oldest first, and appends them to dst. The scheduler may instead time out its
// waiters itself and call Remove.
func (p *Pool) Expire(dst []Request) []Request {
	if p.prm.QueueTimeout <= 0 {
		return dst
	}
	now := p.tick()
	for p.first != nil && now.Sub(p.first.req.Enqueued) >= p.prm.QueueTimeout {
		e := p.first
		dst = append(dst, e.req)
		p.unlink(e, now)
		p.recycle(e)
	}
	return dst
}

// tick reads the clock once per call and advances the time-driven state.
func (p *Pool) tick() time.Time {
	now := p.now()
	p.burst.advance(now, len(p.heap) >= 2)
	if p.win.advance(now) {
		p.sweep()
	}
	return now
}

// push queues r behind its user's other requests and returns the entry.
func (p *Pool) push(r Request, now time.Time) *entry {
	r.Cost = clampCost(r.Cost)
	r.Weight = max(r.Weight, 1)
	if r.Enqueued.IsZero() {
		r.Enqueued = now
	}
	u := p.users[r.User]
	if u == nil {
		u = p.newUser(r.User, r.Weight)
	} else if u.weight != r.Weight {
		p.setWeight(u, r.Weight)
	}
	e := p.alloc()
	e.req, e.u = r, u
	// Link into the user's FIFO.
	e.prev = u.tail
	if u.tail != nil {
		u.tail.next = e
	} else {
		u.head = e
	}
	u.tail = e
	u.queued++
	u.queuedCost += r.Cost
	// Link into the arrival order.
	e.aprev = p.last
	if p.last != nil {
		p.last.anext = e
	} else {
		p.first = e
	}
	p.last = e
	p.queued++
	p.queuedCost += r.Cost
	p.queuedExpected += float64(r.Cost) * u.ratio

	if !u.active {
		p.join(u, now)
	} else if u.head == e {
		p.rekey(u)
	}
	p.win.presence(u)
	p.invalidate()
	return e
}

// unlink takes e out of both lists and updates its user's place in the round robin.
func (p *Pool) unlink(e *entry, now time.Time) {
	u := e.u
	wasHead := u.head == e
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		u.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		u.tail = e.prev
	}
	u.queued--
	u.queuedCost -= e.req.Cost
	if e.aprev != nil {
		e.aprev.anext = e.anext
	} else {
		p.first = e.anext
	}
	if e.anext != nil {
		e.anext.aprev = e.aprev
	} else {
		p.last = e.aprev
	}
	p.queued--
	p.queuedCost -= e.req.Cost
	p.queuedExpected -= float64(e.req.Cost) * u.ratio
	if p.queued == 0 {
		p.queuedExpected = 0 // no rounding drift survives an empty pool
	}
	if e.indexed {
		delete(p.byID, e.req.ID)
	}
	switch {
	case u.queued == 0:
		p.leave(u)
	case wasHead:
		// The next request starts its wait at the head now.
		p.newHead(u, now)
		p.rekey(u)
	}
	p.win.presence(u)
	p.invalidate()
}

func (p *Pool) alloc() *entry {
	if n := len(p.free); n > 0 {
		e := p.free[n-1]
		p.free = p.free[:n-1]
		return e
	}
	return &entry{}
}

// recycle keeps at most MaxQueuePerModel spare entries.
func (p *Pool) recycle(e *entry) {
	*e = entry{}
	if len(p.free) < p.prm.MaxQueuePerModel {
		p.free = append(p.free, e)
	}
}

func (p *Pool) invalidate() { p.peekedValid = false }

// choice returns the entry to dispatch next and whether it is dispatched in turn,
// reusing Peek's answer while the pool has not changed.
func (p *Pool) choice(now time.Time) (*entry, bool) {
	if !p.peekedValid {
		p.peeked, p.peekedTurn = p.choose(now)
		p.peekedValid = true
	}
	return p.peeked, p.peekedTurn
}

func clampCost(c int64) int64 { return max(c, 1) }
