package e2e

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// The fair-share suite on real processes: control plane, data plane, the engine
// simulator and plain HTTP clients. It asserts token shares, never latencies, so
// that a loaded machine only makes it slower. Windows start once every user of
// the window has been backlogged for a while (the newcomers' burst credits are
// spent by then) and end before any of them stops.

// fairSim is the simulated engine of the suite: fast, and every answer is as
// long as the request's max_tokens.
func fairSim() enginesim.Config {
	return enginesim.Config{
		Models: []enginesim.ModelSpec{{Name: "sim-fair", ContextLength: 8192}},
		TTFT:   2 * time.Millisecond, InterTokenDelay: 200 * time.Microsecond, CompletionTokens: 4096,
	}
}

// Request sizes (max_tokens): equal, or alternating short and long answers so
// that counting requests instead of tokens would be visibly wrong.
func equalSize(int) int { return 96 }
func mixedSize(i int) int {
	if i%2 == 0 {
		return 16
	}
	return 160
}

// requireWeightedShares checks that the token shares of users over [from, to)
// follow their weights within 5 % (relative) and logs the weight-normalised
// Jain index.
func requireWeightedShares(t *testing.T, r *fairRig, name string, from, to time.Time, weights map[string]int) {
	t.Helper()
	tok := r.tokensBetween(from, to)
	var total int64
	var wsum int
	for u, w := range weights {
		total += tok[u]
		wsum += w
	}
	t.Logf("%s (%.1f s): %s Jain %.4f, %d tokens", name, to.Sub(from).Seconds(), shareReport(tok, weights), jain(tok, weights), total)
	require.Positive(t, total, name)
	for u, w := range weights {
		got := float64(tok[u]) / float64(total)
		want := float64(w) / float64(wsum)
		require.InDelta(t, 1, got/want, 0.05, "%s: %s has %.2f%% of the tokens, want %.2f%%", name, u, 100*got, 100*want)
	}
}

// Windows are measured in tokens served, not seconds, so that a slow machine
// gets longer windows rather than noisier ones. A phase warms up for twice the
// burst credits its new users bring (2,048 tokens per unit of weight), and a
// window ends a second before anything changes, so that the answers it cuts
// are finished (and counted) by then.
const (
	burstPerWeight = 2048
	phaseLimit     = 90 * time.Second
	settle         = time.Second
)

// TestFairShareLive runs closed- and open-loop clients of users whose weights
// come from per-user overrides and from groups, with equal and mixed answer
// sizes, and users arriving and leaving mid-run.
func TestFairShareLive(t *testing.T) {
	t.Parallel()
	r := startFairRig(t, fairSim(), 4)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	forever := time.Now().Add(time.Hour)

	t.Run("1:3 overrides, closed loop, an open-loop user comes and goes", func(t *testing.T) {
		light, heavy := r.user("o-light", "student", 1), r.user("o-heavy", "student", 3)
		weights := map[string]int{light.name: 1, heavy.name: 3}
		pctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		t0 := time.Now()
		r.closedLoop(pctx, &wg, light, 8, t0, forever, equalSize, false, 0)
		r.closedLoop(pctx, &wg, heavy, 8, t0, forever, equalSize, true, 0)
		from := r.untilTokens(t0, 2*4*burstPerWeight, phaseLimit)
		to := r.untilTokens(from, 30000, phaseLimit)
		// An open-loop user of weight 2 (the staff group) asks for more than
		// its share, then leaves.
		open := r.user("o-open", "staff", 0)
		octx, leave := context.WithCancel(pctx)
		var owg sync.WaitGroup
		r.openLoop(octx, &owg, open, 10*time.Millisecond, time.Now().Add(settle), forever, equalSize, false)
		from2 := r.untilTokens(to.Add(settle), 2*2*burstPerWeight, phaseLimit)
		to2 := r.untilTokens(from2, 30000, phaseLimit)
		time.Sleep(settle)
		leave()
		owg.Wait()
		from3 := time.Now().Add(settle)
		to3 := r.untilTokens(from3, 30000, phaseLimit)
		time.Sleep(settle)
		stop()
		wg.Wait()
		requireWeightedShares(t, r, "1:3 alone", from, to, weights)
		requireWeightedShares(t, r, "1:3 beside an open-loop user", from2, to2, weights)
		requireWeightedShares(t, r, "1:3 after it left", from3, to3, weights)
	})

	t.Run("1:2:3:10 from groups, closed loop, mixed sizes", func(t *testing.T) {
		weights := map[string]int{}
		pctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		t0 := time.Now()
		for _, g := range []struct {
			group  string
			weight int
		}{{"student", 1}, {"staff", 2}, {"faculty", 3}, {"admin", 10}} {
			u := r.user("g-"+g.group, g.group, 0)
			weights[u.name] = g.weight
			// Clients in proportion to the weight keep every queue non-empty.
			r.closedLoop(pctx, &wg, u, 4+2*g.weight, t0, forever, mixedSize, true, 0)
		}
		from := r.untilTokens(t0, 2*16*burstPerWeight, phaseLimit)
		to := r.untilTokens(from, 120000, phaseLimit)
		time.Sleep(settle)
		stop()
		wg.Wait()
		requireWeightedShares(t, r, "1:2:3:10", from, to, weights)
	})
}

// TestInteractiveWaitLive is the paper's scenario on real processes: a batch
// user keeps 16 long requests going on 4 slots while interactive users send
// short streamed requests with think time. It reports the interactive queue
// waits (send to first byte) under fair share and under FIFO against the batch
// requests' mean service time, and asserts only what a loaded machine cannot
// blur: fair share at least halves the FIFO median.
func TestInteractiveWaitLive(t *testing.T) {
	t.Parallel()
	type result struct{ p50, p95, service time.Duration }
	run := func(policy string) result {
		cfg := fairSim()
		cfg.InterTokenDelay = time.Millisecond
		r := startFairRig(t, cfg, 4, "-scheduler", policy)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		batch := r.user(policy+"-batch", "faculty", 0)
		var chatters []fairUser
		for _, g := range []string{"student", "staff", "admin"} {
			chatters = append(chatters, r.user(policy+"-"+g, g, 0))
		}
		var wg sync.WaitGroup
		t0 := time.Now()
		t1, t2 := t0.Add(3*time.Second), t0.Add(18*time.Second)
		r.closedLoop(ctx, &wg, batch, 16, t0, t2, func(int) int { return 400 }, true, 0)
		for _, u := range chatters {
			r.closedLoop(ctx, &wg, u, 1, t1, t2, func(int) int { return 16 }, true, 300*time.Millisecond)
		}
		wg.Wait()
		var waits []time.Duration
		for _, u := range chatters {
			waits = append(waits, r.waits(u.name, t1, t2)...)
		}
		slices.Sort(waits)
		r.mu.Lock()
		var sum time.Duration
		var n int
		for _, a := range r.answers {
			if a.user == batch.name && !a.sent.Before(t1) {
				sum += a.done.Sub(a.first)
				n++
			}
		}
		r.mu.Unlock()
		require.NotEmpty(t, waits)
		require.Positive(t, n)
		res := result{p50: percentile(waits, 0.5), p95: percentile(waits, 0.95), service: sum / time.Duration(n)}
		t.Logf("%s: %d interactive requests, wait p50 %s p95 %s; %d batch requests, mean service %s",
			policy, len(waits), res.p50, res.p95, n, res.service)
		return res
	}
	fair := run("wdrr")
	fifo := run("fifo")
	require.Less(t, 2*fair.p50, fifo.p50, "fair share at least halves the interactive median wait")
}
