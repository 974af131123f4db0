package quota

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRateWindowBoundary(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxConcurrentPerUser: -1})
	p := principal(1, 0, 3)
	for _, at := range []time.Duration{0, 10 * time.Second, 0} { // t=0s, 10s, 10s
		h.clock.Advance(at)
		_, err := h.reserve(p, 1)
		require.NoError(t, err)
	}
	steps := []struct {
		advance time.Duration
		ok      bool
		after   time.Duration
	}{
		{advance: 10 * time.Second, after: 40 * time.Second},                  // t=20s: the t=0s request leaves at 60s
		{advance: 39*time.Second + 500*time.Millisecond, after: time.Second},  // t=59.5s: ceil(0.5s)
		{advance: 500*time.Millisecond - time.Nanosecond, after: time.Second}, // t=60s-1ns
		{advance: time.Nanosecond, ok: true},                                  // t=60s: exactly a minute later it has left
		{advance: 0, after: 10 * time.Second},                                 // t=60s: full again until the t=10s ones leave
		{advance: 10 * time.Second, ok: true},                                 // t=70s: both t=10s requests have left
		{advance: 0, ok: true},                                                // t=70s
		{advance: 0, after: 50 * time.Second},                                 // t=70s: 60s, 70s, 70s in the window
	}
	for i, st := range steps {
		h.clock.Advance(st.advance)
		_, err := h.reserve(p, 1)
		if st.ok {
			require.NoError(t, err, "step %d", i)
			continue
		}
		requireLimit(t, err, ErrRateLimited, st.after)
	}
}

func TestRateMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	p := principal(1, 0, 2)
	for range 2 {
		_, err := h.reserve(p, 1)
		require.NoError(t, err)
	}
	_, err := h.reserve(p, 1)
	requireLimit(t, err, ErrRateLimited, time.Minute)
	require.EqualError(t, err, "Rate limit exceeded: 2 requests per minute (current: 2)")
	assert.Equal(t, 1.0, h.metric(t, "mindrouter_quota_refusals_total", "reason", "rate_limited"))
}

func TestRefusalRollsBackRate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxConcurrentPerUser: 1})
	p := principal(1, 1000, 2)
	first, err := h.reserve(p, 100)
	require.NoError(t, err)

	// Refused by the concurrency cap after the rate check passed: no slot taken.
	_, err = h.reserve(p, 100)
	requireLimit(t, err, ErrConcurrencyLimited, time.Second)
	// Refused by the budget: no slot taken either.
	h.settle(p, first, 100, 100, 0)
	_, err = h.reserve(p, 1000)
	requireLimit(t, err, ErrQuotaExhausted, time.Hour)
	require.Equal(t, 1, h.m.Usage(1).RequestsInWindow)

	// So the second request of the minute still fits, and the third does not.
	second, err := h.reserve(p, 100)
	require.NoError(t, err)
	h.settle(p, second, 100, 100, 0)
	_, err = h.reserve(p, 100)
	requireLimit(t, err, ErrRateLimited, time.Minute)
	require.Equal(t, 2, h.m.Usage(1).RequestsInWindow)
}

func TestRetryAttemptIsNotANewRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	p := principal(1, 0, 1)
	ctx := context.Background()
	res := Reservation{RequestID: "r1", Tokens: 10}
	require.NoError(t, h.m.Reserve(ctx, p, res))
	// The first attempt failed on its backend and was released; the retry keeps
	// the request id.
	h.m.Settle(p, Settlement{Reservation: res, Granted: true})
	require.NoError(t, h.m.Reserve(ctx, p, res))
	// Overlapping attempts each hold their reservation.
	require.NoError(t, h.m.Reserve(ctx, p, res))
	u := h.m.Usage(1)
	require.Equal(t, int64(20), u.Reserved)
	require.Equal(t, 2, u.InFlight)
	require.Equal(t, 1, u.RequestsInWindow)
	h.m.Settle(p, Settlement{Reservation: res, Granted: true, PromptTokens: 4})
	h.m.Settle(p, Settlement{Reservation: res, Granted: true, PromptTokens: 6})
	h.m.Settle(p, Settlement{Reservation: res, Granted: true, PromptTokens: 6})
	u = h.m.Usage(1)
	require.Zero(t, u.Reserved)
	require.Zero(t, u.InFlight)
	require.Equal(t, int64(10), u.TokensUsed)

	// A different request is a new one.
	_, err := h.reserve(p, 1)
	requireLimit(t, err, ErrRateLimited, time.Minute)
}

func TestKeyRate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	k10 := Account{UserID: 1, APIKeyID: 10, RPMLimit: 3, KeyRPMLimit: 1}
	k11 := Account{UserID: 1, APIKeyID: 11, RPMLimit: 3}
	_, err := h.reserve(k10, 1)
	require.NoError(t, err)
	_, err = h.reserve(k10, 1)
	requireLimit(t, err, ErrRateLimited, time.Minute)
	require.EqualError(t, err, "Rate limit exceeded: 1 requests per minute for this API key (current: 1)")
	_, err = h.reserve(k11, 1)
	require.NoError(t, err)
	h.clock.Advance(30 * time.Second)
	_, err = h.reserve(k11, 1)
	require.NoError(t, err)
	// The user's own limit covers all keys.
	_, err = h.reserve(k11, 1)
	requireLimit(t, err, ErrRateLimited, 30*time.Second)
	require.Equal(t, 3, h.m.Usage(1).RequestsInWindow)
}

func TestRateLimitChanges(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxConcurrentPerUser: -1})
	for range 5 {
		_, err := h.reserve(principal(1, 0, 10), 1)
		require.NoError(t, err)
	}
	// Lowered below the requests in the window: refused until enough leave.
	_, err := h.reserve(principal(1, 0, 3), 1)
	requireLimit(t, err, ErrRateLimited, time.Minute)
	// Raised again.
	_, err = h.reserve(principal(1, 0, 20), 1)
	require.NoError(t, err)
	// Unlimited.
	for range 100 {
		_, err = h.reserve(principal(1, 0, 0), 1)
		require.NoError(t, err)
	}
}

// TestWindowMatchesNaiveLog drives the window with random arrivals and limits
// and compares every decision with a plain list of accepted request times.
func TestWindowMatchesNaiveLog(t *testing.T) {
	t.Parallel()
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var w window
		var log []int64
		now := int64(0)
		limit := 1 + rng.IntN(20)
		for i := range 5000 {
			now += rng.Int64N(int64(10 * time.Second))
			if rng.IntN(500) == 0 && i > 0 {
				// Only raise limits: lowering one forgets old requests on purpose.
				limit += rng.IntN(10)
			}
			inWindow := 0
			var oldest int64 = -1
			for j := len(log) - 1; j >= 0 && now-log[j] < int64(rpmWindow); j-- {
				inWindow++
				oldest = log[j]
			}
			ok, wait := w.allow(now, limit)
			wantOK := inWindow < limit
			require.Equal(t, wantOK, ok, "seed %d step %d", seed, i)
			require.Equal(t, inWindow, w.count(now), "seed %d step %d", seed, i)
			if !ok {
				// The oldest of the newest limit requests decides.
				k := log[len(log)-limit]
				require.LessOrEqual(t, oldest, k)
				require.Equal(t, k+int64(rpmWindow)-now, wait, "seed %d step %d", seed, i)
				continue
			}
			w.add(now, limit)
			log = append(log, now)
			require.LessOrEqual(t, len(w.ts), limit)
		}
	}
}
