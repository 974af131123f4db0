package fairshare_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
)

func TestSharesFollowWeightsUnderContention(t *testing.T) {
	t.Parallel()
	noPenalty := fairshare.DefaultParams()
	noPenalty.FairnessWindow = 0
	noBonus := fairshare.DefaultParams()
	noBonus.WaitBonusPerSecond = 0
	fine := fairshare.DefaultParams()
	fine.Quantum = 64
	tests := []struct {
		name    string
		params  fairshare.Params
		weights map[int64]int
		// cost returns estimated and actual tokens.
		cost func(r *rand.Rand, user int64) (int64, int64)
	}{
		{name: "equal", params: fairshare.DefaultParams(), weights: map[int64]int{1: 1, 2: 1}},
		{name: "groups 1/2/3/10", params: fairshare.DefaultParams(), weights: map[int64]int{1: 1, 2: 2, 3: 3, 4: 10}},
		{name: "reference 3/2/1", params: fairshare.DefaultParams(), weights: map[int64]int{1: 3, 2: 2, 3: 1}},
		{name: "many users", params: fairshare.DefaultParams(), weights: map[int64]int{1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 3, 7: 10, 8: 1}},
		{name: "no penalty", params: noPenalty, weights: map[int64]int{1: 1, 2: 2, 3: 3, 4: 10}},
		{name: "no wait bonus", params: noBonus, weights: map[int64]int{1: 1, 2: 2, 3: 3, 4: 10}},
		{name: "small quantum", params: fine, weights: map[int64]int{1: 1, 2: 2, 3: 3, 4: 10}},
		{
			name: "different request sizes", params: fairshare.DefaultParams(), weights: map[int64]int{1: 1, 2: 3},
			cost: func(r *rand.Rand, u int64) (int64, int64) {
				if u == 1 {
					return 2000 + r.Int64N(2000), 0 // long
				}
				return 50 + r.Int64N(200), 0 // short
			},
		},
		{
			name: "estimates settled", params: fairshare.DefaultParams(), weights: map[int64]int{1: 1, 2: 2},
			cost: func(r *rand.Rand, u int64) (int64, int64) {
				est := 500 + r.Int64N(1000)
				if u == 1 {
					return est, est / 5 // heavy over-estimate: refunded at Settle
				}
				return est, est + est/2 // under-estimate: charged at Settle
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBacklog(t, tc.params, tc.weights)
			if tc.cost != nil {
				b.cost = func(r *rand.Rand, u int64) (int64, int64) {
					est, act := tc.cost(r, u)
					if act == 0 {
						act = est
					}
					return est, act
				}
			}
			users := make([]int64, 0, len(tc.weights))
			for u := range tc.weights {
				users = append(users, u)
			}
			b.run(2000, users...) // warm up: burst credits and start-up penalties fade
			b.reset()
			b.run(20000, users...)
			requireSharesFollowWeights(t, b.shares(), tc.weights, 0.05)
		})
	}
}

func TestLoneUserGetsAllCapacity(t *testing.T) {
	t.Parallel()
	b := newBacklog(t, fairshare.DefaultParams(), map[int64]int{1: 1, 2: 10, 3: 3})
	// Users 2 and 3 were busy a minute ago, so they are known and present in the
	// fairness window, but have nothing queued now.
	b.run(500, 1, 2, 3)
	for b.queued[2] > 0 || b.queued[3] > 0 {
		r, ok := b.pool.Next()
		require.True(t, ok)
		b.queued[r.User]--
	}
	b.reset()
	b.run(5000, 1)
	require.Equal(t, map[int64]int{1: 5000}, b.requests, "every slot goes to the only user with queued work")
	require.Equal(t, 0, b.pool.Len()-b.queued[1])
}

func TestNextIsWorkConserving(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := fairshare.DefaultParams()
	p.MaxQueuePerUser = 1000
	pool := newPool(t, p, clk)
	rng := rand.New(rand.NewPCG(7, 7))
	queued := map[string]bool{}
	var ids []string
	for i := range 20000 {
		clk.Advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
		switch op := rng.IntN(10); {
		case op < 4:
			id := fmt.Sprintf("q%d", i)
			_, err := pool.Enqueue(fairshare.Request{ID: id, User: rng.Int64N(20), Weight: 1 + rng.IntN(10), Cost: 1 + rng.Int64N(5000)})
			require.NoError(t, err)
			queued[id] = true
			ids = append(ids, id)
		case op < 6 && len(ids) > 0:
			id := ids[rng.IntN(len(ids))]
			require.Equal(t, queued[id], pool.Remove(id))
			delete(queued, id)
		default:
			peek, peekOK := pool.Peek()
			clk.Advance(time.Second) // Peek's answer holds while the pool is unchanged
			r, ok := pool.Next()
			require.Equal(t, len(queued) > 0, ok, "Next returns a request iff any is queued")
			require.Equal(t, peekOK, ok)
			if ok {
				require.Equal(t, peek.ID, r.ID)
				require.True(t, queued[r.ID], "dispatched %s once", r.ID)
				delete(queued, r.ID)
				pool.Settle(r.User, r.Cost, rng.Int64N(2*r.Cost+1))
			}
		}
		require.Equal(t, len(queued), pool.Len())
	}
}

func TestWaitBonusPreventsStarvation(t *testing.T) {
	t.Parallel()
	const (
		flood  = 1
		victim = 2
		big    = 16000 // tokens: 31 rounds of a weight-1 quantum
		step   = 10 * time.Second
	)
	// How long the big request of a weight-1 user waits while a weight-10 user keeps
	// 20 requests queued and one slot frees every step.
	waitFor := func(bonus float64) time.Duration {
		p := fairshare.DefaultParams()
		p.WaitBonusPerSecond = bonus
		b := newBacklog(t, p, map[int64]int{flood: 10, victim: 1})
		b.depth, b.step = 20, step
		b.cost = func(*rand.Rand, int64) (int64, int64) { return 500, 500 }
		b.run(50, flood) // the flood is under way
		_, err := b.pool.Enqueue(fairshare.Request{ID: "big", User: victim, Weight: 1, Cost: big, Payload: int64(big)})
		require.NoError(t, err)
		b.queued[victim]++
		for i := 0; b.queued[victim] > 0; i++ {
			require.Less(t, i, 10000, "the big request is never served")
			b.run(1, flood)
		}
		return time.Duration(b.requests[flood]-50) * step
	}
	withBonus := waitFor(fairshare.DefaultParams().WaitBonusPerSecond)
	// The bonus covers the whole cost after cost/bonus seconds, plus one step for a
	// slot to free.
	bound := time.Duration(float64(big)/fairshare.DefaultParams().WaitBonusPerSecond*float64(time.Second)) + step
	require.LessOrEqual(t, withBonus, bound)
	require.Greater(t, waitFor(0), 2*withBonus, "without the bonus the round robin alone takes much longer")
}

func TestFairnessWindowPenalisesHeavyUser(t *testing.T) {
	t.Parallel()
	const heavy, light = 1, 2
	others := []int64{3, 4, 5}
	b := newBacklog(t, fairshare.DefaultParams(), map[int64]int{heavy: 1, light: 1, 3: 1, 4: 1, 5: 1})
	b.cost = func(*rand.Rand, int64) (int64, int64) { return 1000, 1000 }
	b.step = 10 * time.Millisecond // all inside one window
	b.depth = 1

	penalty := func(user int64) float64 {
		for _, s := range b.pool.Stats() {
			if s.User == user {
				return s.Penalty
			}
		}
		t.Fatalf("user %d unknown", user)
		return 0
	}
	// Four light users used a little; then the heavy user runs alone. Its penalty
	// must grow (factor fall) with every request and never weaken.
	b.run(10, light)
	b.run(10, others...)
	prev := 1.0
	for range 200 {
		b.run(1, heavy)
		f := penalty(heavy)
		require.LessOrEqual(t, f, prev, "the penalty never weakens as usage grows")
		prev = f
	}
	require.Less(t, prev, 0.2, "a user with almost all recent usage is penalised hard")
	require.Equal(t, 1.0, penalty(light))

	// Both now compete with equal weights: the light user is served first and gets
	// most of the service until the window evens out.
	b.depth = 4
	b.reset()
	b.run(40, heavy, light)
	require.Greater(t, b.requests[light], 3*b.requests[heavy])
}

func TestPenaltyIsMonotoneInUsage(t *testing.T) {
	t.Parallel()
	// For every amount of past usage of user 1 (others fixed), the penalty factor of
	// user 1 is at most the factor for any smaller amount, and it is below 1 once
	// the usage passes the threshold.
	factor := func(usage int64) float64 {
		clk := newClock()
		pool := newPool(t, fairshare.DefaultParams(), clk)
		charge := func(user int64, w int, tokens int64) {
			pool.Charge(fairshare.Request{User: user, Weight: w, Cost: tokens})
			pool.Settle(user, tokens, tokens)
		}
		charge(2, 1, 20000)
		charge(3, 3, 20000)
		if usage > 0 {
			charge(1, 2, usage)
		}
		for _, s := range pool.Stats() {
			if s.User == 1 {
				return s.Penalty
			}
		}
		return 1
	}
	prev := 1.0
	for usage := int64(0); usage <= 2_000_000; usage += 10_000 {
		f := factor(usage)
		require.LessOrEqual(t, f, prev, "usage %d", usage)
		prev = f
	}
	// With all usage its own, user 1's ratio approaches present weight over its
	// weight (6/2): factor (1.5/3)^2.
	require.InDelta(t, 0.25, prev, 0.02)
	// Weighted fair share of user 1 is 2/6; threshold 1.5 → penalised above 50%.
	require.Equal(t, 1.0, factor(35000))
	require.Less(t, factor(45000), 1.0)
}

// closedLoop drives a pool as issue 19's live setup did: every user runs clients
// that each send a request, wait for its answer and send the next at once; the
// answer reaches the client (which queues its next request) before the release
// settles the slot. Requests declare far more output than they produce.
type closedLoop struct {
	pool     *fairshare.Pool
	clk      *clock
	rng      *rand.Rand
	weights  map[int64]int
	slots    int
	now      time.Duration
	service  time.Duration // to the first token
	perToken time.Duration
	cost     func(r *rand.Rand, user int64) (estimated, actual int64)
	events   []loopEvent
	seq      int
	served   []servedAt
	inflight int
}

type loopEvent struct {
	at       time.Duration
	settle   bool
	user     int64
	est, act int64
}

type servedAt struct {
	at     time.Duration
	user   int64
	tokens int64
}

// send is a client's request reaching the scheduler: placed at once (and
// charged) when nothing is queued and a slot is free, as the scheduler's fast
// path does, else queued.
func (c *closedLoop) send(t *testing.T, user int64, now time.Duration) {
	c.seq++
	est, act := c.cost(c.rng, user)
	r := fairshare.Request{ID: fmt.Sprint(c.seq), User: user, Weight: c.weights[user], Cost: est, Payload: act}
	if c.pool.Len() == 0 && c.inflight < c.slots {
		c.pool.Charge(r)
		c.start(r, now)
		return
	}
	_, err := c.pool.Enqueue(r)
	require.NoError(t, err)
}

// start runs a dispatched request: 50 ms to the first token and 10 ms per
// output token, as the engine simulator of issue 19, plus up to 10 % jitter.
func (c *closedLoop) start(r fairshare.Request, now time.Duration) {
	c.inflight++
	act := r.Payload.(int64)
	d := c.service + time.Duration(act)*c.perToken
	d += time.Duration(c.rng.Int64N(int64(d/10) + 1))
	c.push(loopEvent{at: now + d, user: r.User, est: r.Cost, act: act})
}

func (c *closedLoop) push(e loopEvent) {
	i := sort.Search(len(c.events), func(i int) bool { return c.events[i].at > e.at })
	c.events = slices.Insert(c.events, i, e)
}

func (c *closedLoop) dispatch(now time.Duration) {
	for c.inflight < c.slots {
		r, ok := c.pool.Next()
		if !ok {
			return
		}
		c.start(r, now)
	}
}

// run starts clients[u] clients of every user u at start[u] and runs until end.
func (c *closedLoop) run(t *testing.T, clients map[int64]int, start map[int64]time.Duration, end time.Duration) {
	now := c.now
	defer func() { c.now = now }()
	for _, u := range slices.Sorted(maps.Keys(clients)) {
		for range clients[u] {
			c.push(loopEvent{at: start[u], user: u, est: -1})
		}
	}
	for len(c.events) > 0 && c.events[0].at <= end {
		e := c.events[0]
		c.events = c.events[1:]
		c.clk.Advance(e.at - now)
		now = e.at
		switch {
		case e.est < 0: // a client starts
			c.send(t, e.user, now)
		case !e.settle: // the answer arrives: the client sends its next request
			c.served = append(c.served, servedAt{at: now, user: e.user, tokens: e.act})
			c.send(t, e.user, now)
			e.settle = true
			e.at = now + time.Duration(c.rng.Int64N(int64(5*time.Millisecond)))
			c.push(e)
			continue
		default:
			c.inflight--
			c.pool.Settle(e.user, e.est, e.act)
		}
		c.dispatch(now)
	}
}

func (c *closedLoop) tokens(from, to time.Duration) map[int64]int64 {
	out := map[int64]int64{}
	for _, s := range c.served {
		if s.at >= from && s.at < to {
			out[s.user] += s.tokens
		}
	}
	return out
}

// TestClosedLoopSharesFollowWeightsInEveryWindow is issue 19 in simulated time:
// closed-loop clients whose requests declare ten times the output they produce.
// Charged at their full estimate until they settle, the requests in flight held
// more credit than a window's whole service, and the shares of 1:3 users drifted
// to anything between 1.6 and 4 depending on who came first. Charged at the
// expected cost, the shares follow the weights within 5 % in every 20 s window.
func TestClosedLoopSharesFollowWeightsInEveryWindow(t *testing.T) {
	// A window holds a few thousand requests; the first seconds are left out,
	// while the newcomers' burst credits are spent.
	const warmup, window, windows = 20 * time.Second, 2 * time.Minute, 4
	for _, tc := range []struct {
		name    string
		weights map[int64]int
		cost    func(r *rand.Rand, user int64) (int64, int64)
	}{
		{"1:3 short answers", map[int64]int{1: 1, 2: 3}, func(*rand.Rand, int64) (int64, int64) { return 1020, 120 }},
		{"1:2:3:10 mixed answers", map[int64]int{1: 1, 2: 2, 3: 3, 4: 10}, func(r *rand.Rand, _ int64) (int64, int64) {
			if r.IntN(2) == 0 {
				return 1020, 40
			}
			return 1020, 420
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 3; seed++ {
				clk := newClock()
				c := &closedLoop{pool: newPool(t, fairshare.DefaultParams(), clk), clk: clk, rng: rand.New(rand.NewPCG(seed, 7)),
					weights: tc.weights, slots: 8, service: 20 * time.Millisecond, perToken: time.Millisecond, cost: tc.cost}
				clients, start := map[int64]int{}, map[int64]time.Duration{}
				for _, u := range slices.Sorted(maps.Keys(tc.weights)) {
					clients[u] = 12
					start[u] = time.Duration(c.rng.Int64N(int64(50 * time.Millisecond)))
				}
				c.run(t, clients, start, warmup+windows*window)
				for from := warmup; from < warmup+windows*window; from += window {
					tok := c.tokens(from, from+window)
					t.Logf("seed %d window from %s", seed, from)
					shares := map[int64]float64{}
					var total int64
					for _, v := range tok {
						total += v
					}
					for u, v := range tok {
						shares[u] = float64(v) / float64(total)
					}
					requireSharesFollowWeights(t, shares, tc.weights, 0.05)
				}
			}
		})
	}
}

// TestIssue19ColdStart replays issue 19 in simulated time: one backend with 4
// slots, 50 ms to the first token and 10 ms per token, answers of 100 tokens
// with no max_tokens (so the estimate is 1,007 tokens and the real cost 107),
// users of weights 1 and 3 with 12 closed-loop clients each, measured over the
// first 45 s as the issue did. Charging the full estimate gave 1.52, 3.11 and
// 1.48 depending on whose clients came first; the expected cost gives 2.4–2.8
// (the rest is the newcomers' burst credits) and 2.8–3.3 in every 15 s window
// after the first.
func TestIssue19ColdStart(t *testing.T) {
	t.Parallel()
	for _, first := range []int64{0, 1, 2} {
		clk := newClock()
		c := &closedLoop{pool: newPool(t, fairshare.DefaultParams(), clk), clk: clk, rng: rand.New(rand.NewPCG(uint64(first)+1, 7)),
			weights: map[int64]int{1: 1, 2: 3}, slots: 4, service: 50 * time.Millisecond, perToken: 10 * time.Millisecond,
			cost: func(*rand.Rand, int64) (int64, int64) { return 1007, 107 }}
		start := map[int64]time.Duration{1: 0, 2: 0}
		if first != 0 {
			start[3-first] = 20 * time.Millisecond // the other user's clients come 20 ms later
		}
		c.run(t, map[int64]int{1: 12, 2: 12}, start, 90*time.Second)
		ratio := func(from, to time.Duration) float64 {
			tok := c.tokens(from, to)
			return float64(tok[2]) / float64(tok[1])
		}
		cold := ratio(0, 45*time.Second)
		t.Logf("first %d: 45 s from a cold start %.2f", first, cold)
		require.InDelta(t, 2.7, cold, 0.45, "first %d: cold-start ratio", first)
		for from := 15 * time.Second; from < 90*time.Second; from += 15 * time.Second {
			require.InDelta(t, 3, ratio(from, from+15*time.Second), 0.4, "first %d: window from %s", first, from)
		}
	}
}
