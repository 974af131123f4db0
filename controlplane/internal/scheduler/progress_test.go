package scheduler_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
)

// watchQueue returns a queue of one slot under the named policy.
func watchQueue(t *testing.T, policy string, interval time.Duration) *scheduler.Queue {
	t.Helper()
	var p scheduler.Policy = scheduler.NewFIFO()
	if policy == "fairshare" {
		fs, err := scheduler.NewFairShare(fairshare.DefaultParams(), time.Now)
		require.NoError(t, err)
		p = fs
	}
	q, err := scheduler.New(p, scheduler.Options{UpdateInterval: interval})
	require.NoError(t, err)
	return q
}

func TestAcquireWatchReportsDecreasingPosition(t *testing.T) {
	for _, policy := range []string{"fifo", "fairshare"} {
		t.Run(policy, func(t *testing.T) {
			// In a bubble the sleeps that give each grant a hold time advance
			// the fake clock once every goroutine waits: no real waiting.
			synctest.Test(t, func(t *testing.T) {
				q := watchQueue(t, policy, 10*time.Millisecond)
				pick := over(backend{id: 1, slots: 1})
				ctx := context.Background()
				// One user, so that fair share keeps arrival order as FIFO does.
				tk := scheduler.Ticket{RequestID: "r", Model: "m"}
				first, err := q.Acquire(ctx, tk, pick)
				require.NoError(t, err)
				ahead := enqueue(t, ctx, q, "m", 2, pick)

				reports := make(chan scheduler.Progress, 16)
				got := make(chan result, 1)
				go func() {
					g, err := q.AcquireWatch(ctx, tk, pick, func(p scheduler.Progress) { reports <- p })
					got <- result{g: g, err: err}
				}()
				p := <-reports
				assert.Equal(t, scheduler.Progress{Position: 3}, p, "no slot released yet: no estimate")

				time.Sleep(30 * time.Millisecond)
				q.Release(first, 10)
				prev := p
				for want := 2; want >= 1; want-- {
					p = <-reports
					assert.Equal(t, want, p.Position)
					assert.Positive(t, p.EstimatedWait, "a slot was released: the estimate follows its hold time")
					assert.Less(t, p.Position, prev.Position)
					prev = p
					r := <-ahead
					require.NoError(t, r.err)
					time.Sleep(30 * time.Millisecond)
					q.Release(r.g, 10)
				}
				r := <-got
				require.NoError(t, r.err)
				assert.Equal(t, 3, r.g.Position, "the grant keeps the position at enqueue")
				assert.Empty(t, reports, "no report after the grant")
				q.Release(r.g, 10)
			})
		})
	}
}

func TestAcquireWatchRateLimitsReports(t *testing.T) {
	// In a bubble, the sleep past the report interval returns once every
	// goroutine waits, so the watcher has reported whatever it would.
	synctest.Test(t, func(t *testing.T) {
		q := watchQueue(t, "fifo", 300*time.Millisecond)
		pick := over(backend{id: 1, slots: 1})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tk := scheduler.Ticket{RequestID: "r", Model: "m", Cost: 1, Weight: 1}
		held, err := q.Acquire(ctx, tk, pick)
		require.NoError(t, err)
		ahead := enqueue(t, ctx, q, "m", 5, pick)

		var reports []scheduler.Progress
		got := make(chan error, 1)
		go func() {
			_, err := q.AcquireWatch(ctx, tk, pick, func(p scheduler.Progress) { reports = append(reports, p) })
			got <- err
		}()
		waitDepth(t, q, "m", 6)
		// Five dispatches in quick succession change the position five times.
		q.Release(held, 1)
		for range 4 {
			r := <-ahead
			require.NoError(t, r.err)
			q.Release(r.g, 1)
		}
		time.Sleep(400 * time.Millisecond)
		cancel()
		require.ErrorIs(t, <-got, context.Canceled)
		assert.Equal(t, 0, q.Depth("m"), "a cancelled watcher leaves the queue")
		require.Len(t, reports, 2, "the first report, then one per interval however often the position changed: %v", reports)
		assert.Equal(t, 6, reports[0].Position)
		assert.Equal(t, 1, reports[1].Position, "all five ahead were dispatched")
	})
}
