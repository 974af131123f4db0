package fairshare

import (
	"math"
	"time"
)

// user is the fair-share state of one principal in one pool.
//
// The round robin is lazy: instead of visiting users one by one and adding a
// quantum at each visit, a user's deficit is stored as of round base, and in any
// later round x it is deficit + (x-base)*q. The round in which the head of the
// user's queue fits is therefore computed, and users sit in a heap keyed by
// (round, seq), where seq is the user's place in the ring (joining users go to the
// tail). Popping the heap visits users in exactly the order a classic deficit round
// robin would, in O(log n) however many rounds pass without a fit.
type user struct {
	id     int64
	weight int
	factor float64 // usage-window penalty, in (0, 1]
	q      float64 // credit per round: Quantum * weight * factor

	// Round robin.
	active  bool    // has queued requests (is in the ring)
	seq     uint64  // place in the ring
	base    int64   // round at which deficit is stored
	deficit float64 // tokens of credit (negative: debt) as of round base
	round   int64   // heap key: the round whose visit dispatches the head
	heapIdx int

	// Active users ordered by how long their head has been the head.
	headSince    time.Time
	hprev, hnext *user

	head, tail *entry
	queued     int
	queuedCost int64
	inflight   int // dispatched, not yet settled

	// Expected cost: the requests are charged their estimate times ratio, the
	// running mean of real over estimated cost of the user's settled requests.
	// flightEst and flightCharged sum the estimates and the charges of the
	// requests in flight, so that Settle takes back what was charged.
	ratio                    float64
	samples                  int
	flightEst, flightCharged float64

	// Usage window.
	win      [windowBuckets]int64
	winTotal int64
	present  bool // counts towards the window's present weight

	// Burst credits, as of the marks of the pool's burst clock.
	credits            float64
	idleMark, busyMark float64
}

// drr is the pool-wide round-robin state.
type drr struct {
	heap    []*user
	round   int64  // round of the last in-turn dispatch (the cursor)
	cursor  uint64 // seq of the user visited last
	nextSeq uint64
	oldest  *user // active user whose head has waited longest
	newest  *user
	sumQ    float64 // sum of q over active users (for Position)
	// ratio is the pool's running mean of real over estimated cost: the cost
	// ratio a new user starts with.
	ratio   float64
	samples int
}

func (p *Pool) newUser(id int64, weight int) *user {
	u := &user{id: id, weight: max(weight, 1), factor: 1, heapIdx: -1, ratio: p.ratio}
	u.credits = float64(p.prm.BurstCredits) * float64(u.weight) // idle forever: full
	u.idleMark, u.busyMark = p.burst.idle, p.burst.busy
	p.users[id] = u
	return u
}

func (p *Pool) debtLimit(u *user) float64 { return float64(p.prm.MaxDebt) * float64(u.weight) }

// materialise moves u's stored deficit to round x (x >= u.base).
func (p *Pool) materialise(u *user, x int64) {
	u.deficit += float64(x-u.base) * u.q
	u.base = x
}

// join puts u at the tail of the ring with its quantum for the current round, its
// remaining debt (forgiven by the rounds that passed while it was away) and its
// burst credits.
func (p *Pool) join(u *user, now time.Time) {
	carry := min(0, u.deficit+float64(p.round-u.base)*u.q)
	carry = max(carry, -p.debtLimit(u))
	credits := p.burst.take(u, p.prm)
	u.factor = p.win.factor(u, p.prm)
	u.q = float64(p.prm.Quantum) * float64(u.weight) * u.factor
	u.base = p.round
	u.deficit = carry + u.q + credits
	p.nextSeq++
	u.seq = p.nextSeq
	u.active = true
	p.sumQ += u.q
	u.headSince = now
	p.appendHead(u)
	u.round = p.fit(u)
	p.heapPush(u)
}

// leave takes u out of the ring. Unused credit is dropped (classic DRR); debt stays.
func (p *Pool) leave(u *user) {
	p.heapRemove(u)
	p.unlinkHead(u)
	u.active = false
	p.sumQ -= u.q
	if len(p.heap) == 0 {
		p.sumQ = 0 // no drift survives an empty ring
	}
	u.deficit = min(u.deficit, 0)
	p.burst.park(u)
}

// newHead records that u's head changed now: it goes to the back of the wait order.
func (p *Pool) newHead(u *user, now time.Time) {
	u.headSince = now
	p.unlinkHead(u)
	p.appendHead(u)
}

// requantum refreshes u's penalty factor and quantum. The deficit is first
// materialised at the current round so that past rounds keep the old rate.
func (p *Pool) requantum(u *user) {
	f := p.win.factor(u, p.prm)
	q := float64(p.prm.Quantum) * float64(u.weight) * f
	u.factor = f
	if q == u.q {
		return
	}
	p.materialise(u, p.round)
	p.sumQ += q - u.q
	u.q = q
}

// setWeight applies a new weight to u (the latest request's weight wins).
func (p *Pool) setWeight(u *user, w int) {
	if u.present {
		p.win.presentWeight += int64(w - u.weight)
	}
	u.weight = w
	if u.active {
		p.requantum(u)
		p.rekey(u)
	}
}

// fit returns the round whose visit of u dispatches u's head, never earlier than
// the cursor: (round, seq) must not sort before (p.round, p.cursor).
func (p *Pool) fit(u *user) int64 {
	r := u.base
	if need := u.expected(u.head.req.Cost) - u.deficit; need > 0 {
		r += int64(math.Ceil(need / u.q))
	}
	if r < p.round || (r == p.round && u.seq < p.cursor) {
		r = p.round
		if u.seq < p.cursor {
			r++ // its visit of this round is over
		}
	}
	return r
}

func (p *Pool) rekey(u *user) {
	u.round = p.fit(u)
	p.heapFix(u)
}

// choose returns the entry to dispatch next and whether it is the round robin's
// own choice (in turn) rather than a wait-bonus dispatch.
func (p *Pool) choose(now time.Time) (*entry, bool) {
	if len(p.heap) == 0 {
		return nil, false
	}
	top := p.heap[0]
	if o := p.oldest; p.prm.WaitBonusPerSecond > 0 && o != top {
		age := now.Sub(o.headSince).Seconds()
		lack := o.expected(o.head.req.Cost) - (o.deficit + float64(p.round-o.base)*o.q)
		// The bonus is in estimated tokens, like the costs users declare: scaled by
		// the user's cost ratio, it bounds the wait in seconds whatever the ratio.
		if p.prm.WaitBonusPerSecond*age*o.ratio >= lack {
			return o.head, false
		}
	}
	return top.head, true
}

// dispatch charges e's estimated cost to its user and takes it off the queue. An
// in-turn dispatch moves the cursor to the user's visit; an out-of-turn one spends
// the user's credit of the current round and may leave it in debt.
func (p *Pool) dispatch(e *entry, inTurn bool, now time.Time) {
	u := e.u
	if inTurn {
		p.round, p.cursor = u.round, u.seq
		p.materialise(u, u.round)
	} else {
		p.materialise(u, p.round)
	}
	charge := u.expected(e.req.Cost)
	u.deficit = max(u.deficit-charge, -p.debtLimit(u))
	u.inflight++
	u.flightEst += float64(e.req.Cost)
	u.flightCharged += charge
	p.win.add(u, int64(math.Round(charge)))
	p.requantum(u)
	p.unlink(e, now)
	p.recycle(e)
}

// expected is what a request of estimated cost is charged at dispatch: the
// estimate scaled by the user's ratio of real to estimated cost, at least 1 token.
func (u *user) expected(cost int64) float64 { return max(1, math.Ceil(float64(cost)*u.ratio)) }

// settled takes a request of estimated cost out of u's flight and returns what it
// was charged: its part of the charges in flight, in proportion to its estimate
// (exact while the ratio did not change; the sums stay exact in any case).
func (u *user) settled(estimated int64) float64 {
	if u.inflight <= 1 || u.flightEst <= float64(estimated) {
		c := u.flightCharged
		if u.flightEst <= 0 {
			c = float64(estimated) // nothing recorded (settled twice, or unknown)
		}
		u.flightEst, u.flightCharged = 0, 0
		return c
	}
	c := u.flightCharged * float64(estimated) / u.flightEst
	u.flightEst -= float64(estimated)
	u.flightCharged -= c
	return c
}

// learn moves u's ratio, and more slowly the pool's, towards actual/estimated of
// a request that ran (a request cancelled before it produced anything teaches
// nothing).
func (p *Pool) learn(u *user, estimated, actual int64) {
	rate := p.prm.CostLearningRate
	if rate <= 0 || actual <= 1 {
		return
	}
	r := min(max(float64(actual)/float64(estimated), minCostRatio), maxCostRatio)
	// The first samples count as a plain mean, so that a new user is charged
	// its own ratio after its first request rather than after a dozen.
	u.samples++
	step := max(rate, 1/float64(u.samples)) * (r - u.ratio)
	u.ratio += step
	p.queuedExpected += float64(u.queuedCost) * step
	p.samples++
	p.ratio += max(rate/4, 1/float64(p.samples)) * (r - p.ratio)
}

// refund gives u back credit it was overcharged at dispatch, but never beyond
// what starts a visit of the round robin: one quantum plus its head's cost.
// Credit from refunds beyond that would let a user that is being served keep
// its turn while the others earn nothing (rounds advance only when no head
// fits): an over-declaring closed-loop user would hold the cluster for many
// seconds.
func (p *Pool) refund(u *user, tokens float64) {
	u.deficit += tokens
	if !u.active {
		return
	}
	ceiling := u.q + u.expected(u.head.req.Cost)
	if now := u.deficit + float64(p.round-u.base)*u.q; now > ceiling {
		u.deficit -= now - ceiling
	}
}

// The bounds of a user's cost ratio: a request is never charged less than 1/64
// of its estimate nor more than twice it at dispatch (Settle corrects either way).
const (
	minCostRatio = 1.0 / 64
	maxCostRatio = 2.0
)

// sweep runs at every usage-bucket boundary: it expires old usage, folds the
// burst credits of idle users (so that accrual and decay are ordered to within a
// bucket) and forgets users that have nothing queued, nothing in flight and no
// recent usage.
func (p *Pool) sweep() {
	for id, u := range p.users {
		p.win.expire(u)
		if !u.active {
			u.credits = p.burst.credits(u, p.prm)
			u.idleMark, u.busyMark = p.burst.idle, p.burst.busy
		}
		p.win.presence(u)
		if !u.present && !u.active && u.inflight == 0 {
			delete(p.users, id)
		}
	}
}

// The wait order: a doubly linked list of active users by headSince. A head only
// ever changes "now", so appending keeps the list sorted.

func (p *Pool) appendHead(u *user) {
	u.hprev, u.hnext = p.newest, nil
	if p.newest != nil {
		p.newest.hnext = u
	} else {
		p.oldest = u
	}
	p.newest = u
}

func (p *Pool) unlinkHead(u *user) {
	if u.hprev != nil {
		u.hprev.hnext = u.hnext
	} else if p.oldest == u {
		p.oldest = u.hnext
	}
	if u.hnext != nil {
		u.hnext.hprev = u.hprev
	} else if p.newest == u {
		p.newest = u.hprev
	}
	u.hprev, u.hnext = nil, nil
}
