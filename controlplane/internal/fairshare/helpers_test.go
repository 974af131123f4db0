package fairshare_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
)

// clock is a manual clock for a Pool.
type clock struct{ t time.Time }

func newClock() *clock { return &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func newPool(t testing.TB, p fairshare.Params, c *clock) *fairshare.Pool {
	t.Helper()
	pool, err := fairshare.NewPool(p, c.Now)
	require.NoError(t, err)
	return pool
}

// backlog drives a pool as a cluster with a fixed number of slots would: every
// step releases the oldest in-flight request (settling it), dispatches one request
// and tops every user's queue up to depth. It reports tokens served per user.
type backlog struct {
	t        *testing.T
	pool     *fairshare.Pool
	clk      *clock
	rng      *rand.Rand
	weights  map[int64]int
	depth    int
	slots    int
	cost     func(r *rand.Rand, user int64) (estimated, actual int64)
	step     time.Duration
	inflight []flight
	served   map[int64]int64 // actual tokens
	requests map[int64]int
	queued   map[int64]int
	seq      int
}

type flight struct {
	user           int64
	estimated, act int64
}

func newBacklog(t *testing.T, p fairshare.Params, weights map[int64]int) *backlog {
	t.Helper()
	clk := newClock()
	return &backlog{
		t: t, pool: newPool(t, p, clk), clk: clk, rng: rand.New(rand.NewPCG(1, 2)),
		weights: weights, depth: 4, slots: 8, step: 100 * time.Millisecond,
		cost: func(r *rand.Rand, _ int64) (int64, int64) {
			c := 100 + r.Int64N(1400)
			return c, c
		},
		served: map[int64]int64{}, requests: map[int64]int{}, queued: map[int64]int{},
	}
}

// fill tops up the queue of every user in users.
func (b *backlog) fill(users ...int64) {
	for _, u := range users {
		for b.queued[u] < b.depth {
			b.seq++
			est, act := b.cost(b.rng, u)
			_, err := b.pool.Enqueue(fairshare.Request{
				ID: fmt.Sprintf("r%d", b.seq), User: u, Weight: b.weights[u], Cost: est, Payload: act,
			})
			require.NoError(b.t, err)
			b.queued[u]++
		}
	}
}

// run performs n dispatches while keeping users backlogged.
func (b *backlog) run(n int, users ...int64) {
	for range n {
		b.fill(users...)
		if len(b.inflight) >= b.slots {
			f := b.inflight[0]
			b.inflight = b.inflight[1:]
			b.pool.Settle(f.user, f.estimated, f.act)
		}
		r, ok := b.pool.Next()
		require.True(b.t, ok, "work conservation: requests are queued")
		b.queued[r.User]--
		act := r.Payload.(int64)
		b.inflight = append(b.inflight, flight{user: r.User, estimated: r.Cost, act: act})
		b.served[r.User] += act
		b.requests[r.User]++
		b.clk.Advance(b.step)
	}
}

// shares returns each user's fraction of the served tokens.
func (b *backlog) shares() map[int64]float64 {
	var total int64
	for _, v := range b.served {
		total += v
	}
	out := map[int64]float64{}
	for u, v := range b.served {
		out[u] = float64(v) / float64(total)
	}
	return out
}

func (b *backlog) reset() {
	b.served = map[int64]int64{}
	b.requests = map[int64]int{}
}

// requireSharesFollowWeights checks every user's share against its weighted share
// within tol (relative).
func requireSharesFollowWeights(t *testing.T, shares map[int64]float64, weights map[int64]int, tol float64) {
	t.Helper()
	var sum int
	for _, w := range weights {
		sum += w
	}
	for u, w := range weights {
		want := float64(w) / float64(sum)
		got := shares[u]
		t.Logf("user %d weight %d: share %.4f want %.4f (ratio %.4f)", u, w, got, want, got/want)
		require.InDelta(t, 1, got/want, tol, "user %d (weight %d): share %.4f, want %.4f", u, w, got, want)
	}
}
