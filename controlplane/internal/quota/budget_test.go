package quota

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		budget    int64
		used      int64 // charged first by one request settled with this usage
		inFlight  int64 // then held by one unsettled reservation
		tokens    int64
		wantErr   error
		wantAfter time.Duration
	}{
		{name: "fits", budget: 1000, tokens: 1000},
		{name: "fits exactly after use", budget: 1000, used: 400, inFlight: 100, tokens: 500},
		{name: "unlimited", budget: 0, used: 1 << 40, tokens: 1 << 40},
		{name: "over by one", budget: 1000, used: 400, tokens: 601,
			wantErr: ErrQuotaExhausted, wantAfter: time.Hour},
		{name: "held by in-flight requests", budget: 1000, used: 400, inFlight: 300, tokens: 400,
			wantErr: ErrQuotaExhausted, wantAfter: time.Second},
		{name: "larger than the whole budget", budget: 1000, tokens: 1001,
			wantErr: ErrQuotaExhausted, wantAfter: time.Hour},
		{name: "zero tokens always fit", budget: 1000, used: 1000, tokens: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{})
			p := principal(1, tc.budget, 0)
			if tc.used > 0 {
				id, err := h.reserve(p, 0)
				require.NoError(t, err)
				h.settle(p, id, 0, tc.used, 0)
			}
			if tc.inFlight > 0 {
				_, err := h.reserve(p, tc.inFlight)
				require.NoError(t, err)
			}
			before := h.m.Usage(1)
			_, err := h.reserve(p, tc.tokens)
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, before.Reserved+tc.tokens, h.m.Usage(1).Reserved)
				return
			}
			requireLimit(t, err, tc.wantErr, tc.wantAfter)
			require.Equal(t, held(before), held(h.m.Usage(1)), "a refusal changes nothing")
			assert.Equal(t, 1.0, h.metric(t, "mindrouter_quota_refusals_total", "reason", "quota_exhausted"))
		})
	}
}

func TestSettleCharges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		settlement Settlement
		want       int64
	}{
		{name: "exact usage below the reservation", want: 130, settlement: Settlement{
			Granted: true, Succeeded: true, PromptTokens: 100, CompletionTokens: 30}},
		{name: "exact usage above the reservation", want: 1700, settlement: Settlement{
			Granted: true, Succeeded: true, PromptTokens: 200, CompletionTokens: 1500}},
		{name: "never granted", want: 0, settlement: Settlement{}},
		{name: "lost lease charges the reservation", want: 1000, settlement: Settlement{
			Granted: true, Lost: true}},
		{name: "success without usage charges the reservation", want: 1000, settlement: Settlement{
			Granted: true, Succeeded: true}},
		{name: "backend error without usage is free", want: 0, settlement: Settlement{
			Granted: true}},
		{name: "cancelled stream charges what was generated", want: 250, settlement: Settlement{
			Granted: true, PromptTokens: 200, CompletionTokens: 50}},
		{name: "negative counts are ignored", want: 5, settlement: Settlement{
			Granted: true, PromptTokens: -7, CompletionTokens: 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{})
			p := principal(7, 100_000, 0)
			id, err := h.reserve(p, 1000)
			require.NoError(t, err)
			s := tc.settlement
			s.Reservation = Reservation{RequestID: id, Tokens: 1000}
			h.m.Settle(p, s)
			u := h.m.Usage(7)
			require.Equal(t, tc.want, u.TokensUsed)
			require.Equal(t, tc.want, u.LifetimeTokensUsed)
			require.Zero(t, u.Reserved)
			require.Zero(t, u.InFlight)
			assert.Equal(t, float64(tc.want), h.metric(t, "mindrouter_tokens_charged_total"))
			assert.Zero(t, h.metric(t, "mindrouter_quota_reserved_tokens"))

			// Settling again counts nothing twice.
			h.m.Settle(p, s)
			require.Equal(t, u, h.m.Usage(7))
		})
	}
}

func TestSettleUnknownIsIgnored(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	p := principal(3, 1000, 0)
	h.settle(p, "never-reserved", 100, 100, 0)
	id, err := h.reserve(p, 100)
	require.NoError(t, err)
	h.settle(p, "other", 100, 100, 0)
	u := h.m.Usage(3)
	require.Zero(t, u.TokensUsed)
	require.Equal(t, int64(100), u.Reserved)
	h.settle(p, id, 100, 40, 0)
	require.Equal(t, int64(40), h.m.Usage(3).TokensUsed)
}

func TestFreedBudgetIsReusable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxConcurrentPerUser: -1})
	p := principal(1, 1000, 0)
	var ids []string
	for range 4 {
		id, err := h.reserve(p, 250)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	_, err := h.reserve(p, 1)
	requireLimit(t, err, ErrQuotaExhausted, time.Second)
	for _, id := range ids {
		h.settle(p, id, 250, 50, 50)
	}
	// 400 used: six more reservations of 100 fit, the seventh does not.
	for range 6 {
		_, err := h.reserve(p, 100)
		require.NoError(t, err)
	}
	_, err = h.reserve(p, 100)
	requireLimit(t, err, ErrQuotaExhausted, time.Second)
}

func TestRollingPeriod(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{Period: 2 * time.Hour})
	p := principal(1, 1000, 0)
	start := h.clock.Now()
	id, err := h.reserve(p, 1000)
	require.NoError(t, err)
	h.settle(p, id, 1000, 900, 0)

	h.clock.Advance(90 * time.Minute)
	_, err = h.reserve(p, 200)
	requireLimit(t, err, ErrQuotaExhausted, 30*time.Minute)
	require.ErrorContains(t, err, "900 of 1000 tokens used this period")
	require.ErrorContains(t, err, "resets in 30m0s")

	h.clock.Advance(30*time.Minute - time.Nanosecond)
	_, err = h.reserve(p, 200)
	requireLimit(t, err, ErrQuotaExhausted, time.Second)
	u := h.m.Usage(1)
	require.Equal(t, start, u.PeriodStart)
	require.Equal(t, start.Add(2*time.Hour), u.PeriodEnd)

	h.clock.Advance(time.Nanosecond)
	_, err = h.reserve(p, 200)
	require.NoError(t, err)
	u = h.m.Usage(1)
	require.Zero(t, u.TokensUsed, "a new period starts empty")
	require.Equal(t, int64(900), u.LifetimeTokensUsed)
	require.Equal(t, h.clock.Now(), u.PeriodStart, "the new period starts at the first request after the old one")
}

func TestQuotaRetryAfterIsCapped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	p := principal(1, 100, 0)
	id, err := h.reserve(p, 100)
	require.NoError(t, err)
	h.settle(p, id, 100, 100, 0)
	h.clock.Advance(24 * time.Hour)
	_, err = h.reserve(p, 1)
	requireLimit(t, err, ErrQuotaExhausted, time.Hour)
	require.ErrorContains(t, err, "resets in 29d0s")
	require.Equal(t, "Token quota exceeded: 100 of 100 tokens used this period; this request reserves 1 "+
		"(prompt estimate plus output allowance); the period resets in 29d0s", err.Error())
}

func TestUsersAreIndependent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxConcurrentPerUser: 1})
	a, b := principal(1, 100, 1), principal(2, 100, 1)
	_, err := h.reserve(a, 100)
	require.NoError(t, err)
	_, err = h.reserve(b, 100)
	require.NoError(t, err)
	all := h.m.All()
	require.Len(t, all, 2)
	require.Equal(t, []int64{1, 2}, []int64{all[0].UserID, all[1].UserID})
	require.Equal(t, int64(100), all[1].Reserved)
	require.Equal(t, 1, all[1].InFlight)
	require.Equal(t, 1, all[1].RequestsInWindow)
	require.Equal(t, 1, all[1].RPMLimit)
	require.Equal(t, int64(100), all[1].Budget)
}

func TestUsageOfUnknownUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	u := h.m.Usage(42)
	require.Equal(t, int64(42), u.UserID)
	require.Equal(t, 30, u.PeriodDays)
	require.Zero(t, u.TokensUsed)
	require.Empty(t, h.m.All())
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	_, err := New(Options{Period: -time.Second})
	require.Error(t, err)
	_, err = New(Options{FlushInterval: -time.Second})
	require.Error(t, err)
	m, err := New(Options{})
	require.NoError(t, err)
	require.NoError(t, m.Reserve(context.Background(), principal(1, 10, 1), Reservation{RequestID: "x", Tokens: 5}))
}

// held is what a user holds and has used, without the limits last seen.
func held(u UserUsage) [4]int64 {
	return [4]int64{u.TokensUsed, u.Reserved, int64(u.InFlight), int64(u.RequestsInWindow)}
}

// TestAdoptedSettlementCharges covers leases granted before a control-plane
// restart: nothing was reserved here, the reported usage is charged, and nothing
// held by the user's own reservations is given back.
func TestAdoptedSettlementCharges(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	p := principal(1, 10_000, 0)
	_, err := h.reserve(p, 500) // an unrelated request in flight
	require.NoError(t, err)
	adopted := Settlement{
		Reservation: Reservation{RequestID: "before-restart"},
		Granted:     true, Adopted: true, Succeeded: true,
		PromptTokens: 100, CompletionTokens: 20,
	}
	h.m.Settle(p, adopted)
	u := h.m.Usage(1)
	require.EqualValues(t, 120, u.TokensUsed)
	require.EqualValues(t, 500, u.Reserved, "the other request's reservation is untouched")
	require.Equal(t, 1, u.InFlight)

	// A second attempt of the same request, on another adopted lease, is charged
	// too (admission settles each lease once, by lease id).
	retry := adopted
	retry.PromptTokens, retry.CompletionTokens = 100, 0
	h.m.Settle(p, retry)
	require.EqualValues(t, 220, h.m.Usage(1).TokensUsed)

	lost := adopted
	lost.RequestID, lost.Lost, lost.PromptTokens, lost.CompletionTokens = "lost-after-restart", true, 0, 0
	h.m.Settle(p, lost)
	require.EqualValues(t, 220, h.m.Usage(1).TokensUsed, "an adopted lease that is lost has nothing to charge")
	require.EqualValues(t, 220, h.m.Usage(1).LifetimeTokensUsed)
}
