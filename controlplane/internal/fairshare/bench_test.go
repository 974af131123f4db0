package fairshare_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
)

// BenchmarkEnqueueNext measures one scheduling cycle — Enqueue, Next and Settle —
// with every user backlogged (two requests queued each) and the clock moving 1 ms
// per cycle, so the per-bucket sweep of all users is included.
func BenchmarkEnqueueNext(b *testing.B) {
	for _, users := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			clk := newClock()
			p := fairshare.DefaultParams()
			p.MaxQueuePerModel = 4 * users
			pool, err := fairshare.NewPool(p, clk.Now)
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]string, 64*users) // recycled: a request is long gone when its ID returns
			for i := range ids {
				ids[i] = "req-" + strconv.Itoa(i)
			}
			weights := []int{1, 2, 3, 10}
			seq := 0
			enqueue := func(user int64) {
				r := fairshare.Request{
					ID: ids[seq%len(ids)], User: user, Weight: weights[user%4],
					Cost: 200 + int64(seq%7)*300,
				}
				seq++
				if _, err := pool.Enqueue(r); err != nil {
					b.Fatal(err)
				}
			}
			for range 2 {
				for u := range users {
					enqueue(int64(u))
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				clk.Advance(time.Millisecond)
				r, ok := pool.Next()
				if !ok {
					b.Fatal("empty pool")
				}
				pool.Settle(r.User, r.Cost, r.Cost-r.Cost/4)
				enqueue(r.User)
			}
		})
	}
}

// BenchmarkPosition measures the queue-position estimate of a request deep in a
// user's queue.
func BenchmarkPosition(b *testing.B) {
	clk := newClock()
	pool, err := fairshare.NewPool(fairshare.DefaultParams(), clk.Now)
	if err != nil {
		b.Fatal(err)
	}
	for u := range 100 {
		for i := range 8 {
			if _, err := pool.Enqueue(fairshare.Request{ID: fmt.Sprintf("%d-%d", u, i), User: int64(u), Weight: 1 + u%4, Cost: 500}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if pool.Position("50-7") == 0 {
			b.Fatal("not queued")
		}
	}
}
