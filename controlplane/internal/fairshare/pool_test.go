package fairshare_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
)

// drain dispatches everything and returns the IDs in dispatch order.
func drain(pool *fairshare.Pool) []string {
	var ids []string
	for {
		r, ok := pool.Next()
		if !ok {
			return ids
		}
		ids = append(ids, r.ID)
	}
}

func enqueueAll(t *testing.T, pool *fairshare.Pool, reqs ...fairshare.Request) {
	t.Helper()
	for _, r := range reqs {
		_, err := pool.Enqueue(r)
		require.NoError(t, err)
	}
}

func userStats(t *testing.T, pool *fairshare.Pool, user int64) fairshare.UserStats {
	t.Helper()
	for _, s := range pool.Stats() {
		if s.User == user {
			return s
		}
	}
	t.Fatalf("user %d unknown", user)
	return fairshare.UserStats{}
}

func TestRemoveAtAnyPosition(t *testing.T) {
	t.Parallel()
	reqs := func() []fairshare.Request {
		var out []fairshare.Request
		for i := range 4 {
			out = append(out, fairshare.Request{ID: fmt.Sprintf("a%d", i), User: 1, Weight: 1, Cost: 100})
		}
		out = append(out, fairshare.Request{ID: "b0", User: 2, Weight: 1, Cost: 100})
		return out
	}
	tests := []struct {
		name   string
		remove []string
	}{
		{name: "head", remove: []string{"a0"}},
		{name: "middle", remove: []string{"a2"}},
		{name: "tail", remove: []string{"a3"}},
		{name: "a user's only request", remove: []string{"b0"}},
		{name: "all of a user", remove: []string{"a1", "a0", "a3", "a2"}},
		{name: "everything", remove: []string{"b0", "a3", "a0", "a2", "a1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			ref := newPool(t, fairshare.DefaultParams(), clk)
			enqueueAll(t, ref, reqs()...)
			want := drain(ref)

			pool := newPool(t, fairshare.DefaultParams(), clk)
			enqueueAll(t, pool, reqs()...)
			removed := map[string]bool{}
			for _, id := range tc.remove {
				require.True(t, pool.Remove(id))
				require.False(t, pool.Remove(id), "removing twice")
				require.Zero(t, pool.Position(id))
				removed[id] = true
			}
			require.Equal(t, 5-len(tc.remove), pool.Len())
			var rest []string
			for _, id := range want {
				if !removed[id] {
					rest = append(rest, id)
				}
			}
			require.Equal(t, rest, drain(pool), "the others keep their order")
			require.Zero(t, pool.Len())
		})
	}
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		pool := newPool(t, fairshare.DefaultParams(), newClock())
		require.False(t, pool.Remove("nope"))
	})
}

func TestQueueLimits(t *testing.T) {
	t.Parallel()
	p := fairshare.DefaultParams()
	p.MaxQueuePerUser = 2
	p.MaxQueuePerModel = 3
	pool := newPool(t, p, newClock())
	req := func(id string, user int64) fairshare.Request {
		return fairshare.Request{ID: id, User: user, Weight: 1, Cost: 10}
	}
	enqueueAll(t, pool, req("a", 1), req("b", 1))
	require.ErrorIs(t, pool.Check(1), fairshare.ErrUserQueueFull)
	require.NoError(t, pool.Check(2))
	tests := []struct {
		name string
		req  fairshare.Request
		want error
	}{
		{name: "user full", req: req("c", 1), want: fairshare.ErrUserQueueFull},
		{name: "duplicate", req: req("a", 2), want: fairshare.ErrDuplicateID},
		{name: "no id", req: req("", 2), want: fairshare.ErrInvalidRequest},
	}
	for _, tc := range tests {
		_, err := pool.Enqueue(tc.req)
		require.ErrorIs(t, err, tc.want, tc.name)
	}
	enqueueAll(t, pool, req("c", 2))
	_, err := pool.Enqueue(req("d", 3))
	require.ErrorIs(t, err, fairshare.ErrModelQueueFull)
	require.ErrorIs(t, pool.Check(3), fairshare.ErrModelQueueFull)
	require.Equal(t, 3, pool.Len(), "refusals change nothing")

	// Space frees when requests leave.
	require.True(t, pool.Remove("a"))
	enqueueAll(t, pool, req("e", 1))
	_, ok := pool.Next()
	require.True(t, ok)
	enqueueAll(t, pool, req("f", 3))
}

func TestSettleCorrectsEstimates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		estimate, actual  int64
		wantDeficitChange int64
	}{
		{name: "over-estimate refunded", estimate: 1000, actual: 200, wantDeficitChange: 800},
		{name: "under-estimate charged", estimate: 200, actual: 1000, wantDeficitChange: -800},
		{name: "exact", estimate: 500, actual: 500, wantDeficitChange: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool := newPool(t, fairshare.DefaultParams(), newClock())
			// The user stays queued, so its deficit is kept (not reset on leaving).
			enqueueAll(t, pool,
				fairshare.Request{ID: "1", User: 7, Weight: 1, Cost: tc.estimate},
				fairshare.Request{ID: "2", User: 7, Weight: 1, Cost: 100_000})
			r, ok := pool.Next()
			require.True(t, ok)
			require.Equal(t, "1", r.ID)
			before := userStats(t, pool, 7)
			require.Equal(t, tc.estimate, before.RecentTokens, "the estimate is charged at dispatch")
			require.Equal(t, 1, before.InFlight)

			pool.Settle(7, tc.estimate, tc.actual)
			after := userStats(t, pool, 7)
			require.Equal(t, tc.wantDeficitChange, after.Deficit-before.Deficit)
			require.Equal(t, tc.actual, after.RecentTokens, "the window holds the real cost")
			require.Zero(t, after.InFlight)
		})
	}
}

func TestPositionEstimate(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := fairshare.DefaultParams()
	p.MaxQueuePerUser = 200
	pool := newPool(t, p, clk)
	// One user alone: its requests are dispatched in order.
	for i := range 5 {
		pos, err := pool.Enqueue(fairshare.Request{ID: fmt.Sprintf("a%d", i), User: 1, Weight: 1, Cost: 600})
		require.NoError(t, err)
		require.Equal(t, i+1, pos)
	}
	require.Equal(t, 3, pool.Position("a2"))
	require.True(t, pool.Remove("a1"))
	require.Equal(t, 2, pool.Position("a2"), "positions move up when a request leaves")

	// Two users of weights 1 and 3 in steady state (start-up credits spent): the
	// estimate of a new request of the light user is close to where it goes.
	for i := range 100 {
		enqueueAll(t, pool, fairshare.Request{ID: fmt.Sprintf("h%d", i), User: 2, Weight: 3, Cost: 600})
	}
	for i := range 40 {
		enqueueAll(t, pool, fairshare.Request{ID: fmt.Sprintf("x%d", i), User: 1, Weight: 1, Cost: 600})
	}
	for range 60 {
		_, ok := pool.Next()
		require.True(t, ok)
		clk.Advance(time.Second)
	}
	for i := range 26 { // drop most of user 1's backlog, keeping a few ahead
		require.True(t, pool.Remove(fmt.Sprintf("x%d", 39-i)))
	}
	estimates := map[string]int{}
	for i := range 3 {
		id := fmt.Sprintf("y%d", i)
		pos, err := pool.Enqueue(fairshare.Request{ID: id, User: 1, Weight: 1, Cost: 600})
		require.NoError(t, err)
		estimates[id] = pos
	}
	order := drain(pool)
	for id, est := range estimates {
		actual := indexOf(order, id) + 1
		assert.InEpsilon(t, actual, est, 0.15, "%s estimated at %d, dispatched at %d", id, est, actual)
	}
	require.Zero(t, pool.Position("a0"))
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestPositionOfInteractiveBehindPenalisedBatch(t *testing.T) {
	t.Parallel()
	clk := newClock()
	pool := newPool(t, fairshare.DefaultParams(), clk)
	// A batch user has used the pool alone and keeps 16 long requests queued.
	for i := range 40 {
		pool.Charge(fairshare.Request{User: 1, Weight: 1, Cost: 3000})
		pool.Settle(1, 3000, 3000)
		clk.Advance(time.Second)
		_ = i
	}
	for i := range 16 {
		enqueueAll(t, pool, fairshare.Request{ID: fmt.Sprintf("batch%d", i), User: 1, Weight: 1, Cost: 3000})
	}
	pos, err := pool.Enqueue(fairshare.Request{ID: "chat", User: 2, Weight: 1, Cost: 700})
	require.NoError(t, err)
	require.Equal(t, 1, pos)
	r, ok := pool.Next()
	require.True(t, ok)
	require.Equal(t, "chat", r.ID, "the interactive request goes first")
}

func TestExpire(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := fairshare.DefaultParams()
	p.QueueTimeout = 10 * time.Second
	pool := newPool(t, p, clk)
	enqueueAll(t, pool, fairshare.Request{ID: "old", User: 1, Cost: 10})
	clk.Advance(6 * time.Second)
	enqueueAll(t, pool, fairshare.Request{ID: "mid", User: 2, Cost: 10}, fairshare.Request{ID: "new", User: 1, Cost: 10})
	require.Empty(t, pool.Expire(nil))
	clk.Advance(4 * time.Second)
	got := pool.Expire(nil)
	require.Len(t, got, 1)
	require.Equal(t, "old", got[0].ID)
	clk.Advance(6 * time.Second)
	got = pool.Expire(got[:0])
	require.Equal(t, []string{"mid", "new"}, []string{got[0].ID, got[1].ID})
	require.Zero(t, pool.Len())

	p.QueueTimeout = 0
	off := newPool(t, p, clk)
	enqueueAll(t, off, fairshare.Request{ID: "x", User: 1, Cost: 10})
	clk.Advance(time.Hour)
	require.Empty(t, off.Expire(nil), "QueueTimeout 0 never expires")
}

func TestBurstCredits(t *testing.T) {
	t.Parallel()
	// A busy user has spent its start-up credits; a new user arrives with four
	// 800-token requests. With burst credits (2048 per unit weight, plus its 512
	// quantum) its first three fit at once.
	order := func(p fairshare.Params) []string {
		clk := newClock()
		pool := newPool(t, p, clk)
		for i := range 20 {
			enqueueAll(t, pool, fairshare.Request{ID: fmt.Sprintf("a%d", i), User: 1, Weight: 1, Cost: 1000})
		}
		for range 5 {
			_, ok := pool.Next()
			require.True(t, ok)
			clk.Advance(time.Second)
		}
		for i := range 4 {
			enqueueAll(t, pool, fairshare.Request{ID: fmt.Sprintf("b%d", i), User: 2, Weight: 1, Cost: 800})
		}
		return drain(pool)
	}
	p := fairshare.DefaultParams()
	require.Equal(t, []string{"b0", "b1", "b2"}, order(p)[:3], "the newcomer bursts")
	off := p
	off.BurstCredits = 0
	require.GreaterOrEqual(t, indexOf(order(off), "b2"), 4, "without credits it takes turns")

	clk := newClock()
	pool := newPool(t, p, clk)
	enqueueAll(t, pool, fairshare.Request{ID: "x", User: 2, Weight: 1, Cost: 800})
	_, ok := pool.Next()
	require.True(t, ok)
	// Credits were spent on joining; they come back while the pool is uncontended...
	pool.Settle(2, 800, 800)
	require.Zero(t, userStats(t, pool, 2).BurstCredits)
	clk.Advance(4 * time.Second)
	require.Equal(t, int64(p.BurstAccrual*4), userStats(t, pool, 2).BurstCredits)
	clk.Advance(time.Minute)
	require.Equal(t, p.BurstCredits, userStats(t, pool, 2).BurstCredits, "capped")

	// ...and decay fast while it is contended.
	for i := range 50 {
		enqueueAll(t, pool,
			fairshare.Request{ID: fmt.Sprintf("c%d", i), User: 3, Weight: 1, Cost: 500},
			fairshare.Request{ID: fmt.Sprintf("d%d", i), User: 4, Weight: 1, Cost: 500})
	}
	clk.Advance(p.BurstHalfLife)
	require.InDelta(t, p.BurstCredits/2, userStats(t, pool, 2).BurstCredits, 1)
	clk.Advance(10 * p.BurstHalfLife)
	require.Less(t, userStats(t, pool, 2).BurstCredits, p.BurstCredits/1000)
}

func TestChargeMatchesEnqueueNext(t *testing.T) {
	t.Parallel()
	clk := newClock()
	fast := newPool(t, fairshare.DefaultParams(), clk)
	slow := newPool(t, fairshare.DefaultParams(), clk)
	for i := range 50 {
		r := fairshare.Request{ID: fmt.Sprintf("r%d", i), User: int64(i % 3), Weight: 1 + i%3, Cost: int64(100 + 97*i)}
		fast.Charge(r)
		enqueueAll(t, slow, r)
		_, ok := slow.Next()
		require.True(t, ok)
		fast.Settle(r.User, r.Cost, r.Cost/2)
		slow.Settle(r.User, r.Cost, r.Cost/2)
		clk.Advance(time.Second)
	}
	require.Equal(t, slow.Stats(), fast.Stats())
}

func TestParamsValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, fairshare.DefaultParams().Validate())
	tests := []struct {
		name string
		mod  func(*fairshare.Params)
	}{
		{"quantum", func(p *fairshare.Params) { p.Quantum = 0 }},
		{"debt", func(p *fairshare.Params) { p.MaxDebt = -1 }},
		{"half-life", func(p *fairshare.Params) { p.BurstHalfLife = 0 }},
		{"window", func(p *fairshare.Params) { p.FairnessWindow = time.Millisecond }},
		{"threshold", func(p *fairshare.Params) { p.PenaltyThreshold = 0.5 }},
		{"exponent", func(p *fairshare.Params) { p.PenaltyExponent = 0 }},
		{"min factor", func(p *fairshare.Params) { p.MinPenaltyFactor = 0 }},
		{"bonus", func(p *fairshare.Params) { p.WaitBonusPerSecond = -1 }},
		{"per user", func(p *fairshare.Params) { p.MaxQueuePerUser = 0 }},
		{"per model", func(p *fairshare.Params) { p.MaxQueuePerModel = 0 }},
		{"timeout", func(p *fairshare.Params) { p.QueueTimeout = -1 }},
	}
	for _, tc := range tests {
		p := fairshare.DefaultParams()
		tc.mod(&p)
		_, err := fairshare.NewPool(p, nil)
		require.ErrorIs(t, err, fairshare.ErrInvalidParams, tc.name)
		require.ErrorIs(t, p.Validate(), fairshare.ErrInvalidParams, tc.name)
	}
	off := fairshare.DefaultParams()
	off.FairnessWindow, off.BurstCredits, off.BurstHalfLife, off.WaitBonusPerSecond = 0, 0, 0, 0
	require.NoError(t, off.Validate(), "features switch off with 0")
}

func TestResolveWeight(t *testing.T) {
	t.Parallel()
	groups := fairshare.DefaultGroupWeights()
	require.Equal(t, map[string]int{"admin": 10, "faculty": 3, "staff": 2, "student": 1}, groups)
	tests := []struct {
		group, override, want int
	}{
		{group: groups["faculty"], override: 0, want: 3},
		{group: groups["student"], override: 5, want: 5},
		{group: 0, override: 0, want: 1},
		{group: -2, override: -1, want: 1},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, fairshare.ResolveWeight(tc.group, tc.override), "%+v", tc)
	}
}
