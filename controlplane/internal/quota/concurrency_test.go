package quota

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConcurrencyCap(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxConcurrentPerUser: 2})
	p := principal(1, 0, 0)
	a, err := h.reserve(p, 1)
	require.NoError(t, err)
	_, err = h.reserve(p, 1)
	require.NoError(t, err)
	_, err = h.reserve(p, 1)
	requireLimit(t, err, ErrConcurrencyLimited, time.Second)
	require.EqualError(t, err, "Too many concurrent requests: 2 in flight or queued (limit 2)")
	assert.Equal(t, 1.0, h.metric(t, "mindrouter_quota_refusals_total", "reason", "concurrency_limited"))

	// Another user is not affected.
	_, err = h.reserve(principal(2, 0, 0), 1)
	require.NoError(t, err)

	// A request that never got a slot frees its place too.
	h.m.Settle(p, Settlement{Reservation: Reservation{RequestID: a, Tokens: 1}})
	_, err = h.reserve(p, 1)
	require.NoError(t, err)
	require.Equal(t, 2, h.m.Usage(1).InFlight)
}

func TestConcurrencyDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		max     int
		granted int
	}{
		{name: "default", max: 0, granted: DefaultMaxConcurrentPerUser},
		{name: "unlimited", max: -1, granted: 100},
		{name: "set", max: 5, granted: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{MaxConcurrentPerUser: tc.max})
			granted := 0
			for range 100 {
				if _, err := h.reserve(principal(1, 0, 0), 1); err == nil {
					granted++
				}
			}
			require.Equal(t, tc.granted, granted)
		})
	}
}

// TestNoOvershoot runs 200 concurrent requests of one user against a small
// budget: at no moment do the reservations and charges together exceed it,
// exactly as many as fit are granted, and what settling frees is reused.
func TestNoOvershoot(t *testing.T) {
	t.Parallel()
	const (
		budget   = 10_000
		reserve  = 300
		actual   = 100
		requests = 200
	)
	h := newHarness(t, Options{MaxConcurrentPerUser: -1})
	p := principal(1, budget, 0)
	ctx := context.Background()

	// Round one: nobody settles, so exactly budget/reserve are granted.
	var granted []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range requests {
		wg.Go(func() {
			<-start
			id := fmt.Sprintf("r1-%d", i)
			err := h.m.Reserve(ctx, p, Reservation{RequestID: id, Tokens: reserve})
			if err != nil {
				assert.ErrorIs(t, err, ErrQuotaExhausted)
				return
			}
			mu.Lock()
			granted = append(granted, id)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	require.Len(t, granted, budget/reserve)
	u := h.m.Usage(1)
	require.Equal(t, int64(len(granted)*reserve), u.Reserved)
	require.LessOrEqual(t, u.Reserved, int64(budget))

	// Settling with smaller exact usage frees budget for more.
	for _, id := range granted {
		h.settle(p, id, reserve, actual/2, actual/2)
	}
	u = h.m.Usage(1)
	require.Equal(t, int64(len(granted)*actual), u.TokensUsed)
	require.Zero(t, u.Reserved)
	usedBefore := u.TokensUsed

	// Round two: 200 goroutines reserve and settle over and over while an
	// observer checks the invariant, until no reservation can fit any more.
	var charged atomic.Int64
	stop := make(chan struct{})
	observed := make(chan int)
	go func() {
		n := 0
		defer func() { observed <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			v := h.m.Usage(1)
			if v.TokensUsed+v.Reserved > budget {
				t.Errorf("overshoot: used %d + reserved %d > %d", v.TokensUsed, v.Reserved, budget)
				return
			}
			n++
		}
	}()
	for i := range requests {
		wg.Go(func() {
			for j := 0; ; j++ {
				id := fmt.Sprintf("r2-%d-%d", i, j)
				err := h.m.Reserve(ctx, p, Reservation{RequestID: id, Tokens: reserve})
				if err != nil {
					var le *LimitError
					if !assert.ErrorAs(t, err, &le) || !errors.Is(err, ErrQuotaExhausted) {
						return
					}
					if h.m.Usage(1).TokensUsed+reserve > budget {
						return // nothing will ever fit again this period
					}
					continue // held by others' reservations: retry
				}
				h.m.Settle(p, Settlement{
					Reservation: Reservation{RequestID: id, Tokens: reserve},
					Granted:     true, Succeeded: true,
					PromptTokens: actual / 2, CompletionTokens: actual / 2,
				})
				charged.Add(actual)
			}
		})
	}
	wg.Wait()
	close(stop)
	require.Positive(t, <-observed)
	u = h.m.Usage(1)
	require.Zero(t, u.Reserved)
	require.Zero(t, u.InFlight)
	require.Equal(t, usedBefore+charged.Load(), u.TokensUsed)
	// Requests kept coming until a reservation could no longer fit the budget.
	require.LessOrEqual(t, u.TokensUsed, int64(budget))
	require.Greater(t, u.TokensUsed+reserve, int64(budget))
	require.Equal(t, float64(u.TokensUsed), h.metric(t, "mindrouter_tokens_charged_total"))
	require.Zero(t, h.metric(t, "mindrouter_quota_reserved_tokens"))
}

// TestManyUsersConcurrently mixes users, limits and settlements under -race.
func TestManyUsersConcurrently(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxConcurrentPerUser: 4})
	ctx := context.Background()
	var wg sync.WaitGroup
	var charged [50]atomic.Int64
	for g := range 200 {
		wg.Go(func() {
			uid := int64(g % 50)
			p := principal(uid, 5_000, 1000)
			for j := range 50 {
				id := fmt.Sprintf("g%d-%d", g, j)
				if err := h.m.Reserve(ctx, p, Reservation{RequestID: id, Tokens: 100}); err != nil {
					continue
				}
				h.m.Settle(p, Settlement{Reservation: Reservation{RequestID: id, Tokens: 100},
					Granted: true, PromptTokens: 10, CompletionTokens: int64(j % 20)})
				charged[uid].Add(10 + int64(j%20))
			}
		})
	}
	wg.Wait()
	all := h.m.All()
	require.Len(t, all, 50)
	for _, u := range all {
		require.Zero(t, u.Reserved)
		require.Zero(t, u.InFlight)
		require.Equal(t, charged[u.UserID].Load(), u.TokensUsed)
		require.LessOrEqual(t, u.TokensUsed, int64(5_000))
	}
}
