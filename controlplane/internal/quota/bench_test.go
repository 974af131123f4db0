package quota

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// benchIDs are request ids made before the clock starts, as admission receives
// them ready-made.
func benchIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "req-" + strconv.Itoa(i)
	}
	return ids
}

// steppingClock advances 100 ms on every reading, so that a benchmark's
// requests spread over time and stay under a realistic rate limit.
func steppingClock() func() time.Time {
	var ns atomic.Int64
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(ns.Add(int64(100 * time.Millisecond)))) }
}

func benchManager(b *testing.B, opts Options) *Manager {
	b.Helper()
	m, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkReserveSettle is one user's Reserve and Settle with every check on:
// a budget, a rate limit of 1000 a minute (the log holds ~300 requests) and the
// concurrency cap. RealClock reads time.Now instead and has no rate limit.
func BenchmarkReserveSettle(b *testing.B) {
	run := func(b *testing.B, m *Manager, rpm int) {
		p := Account{UserID: 1, APIKeyID: 1, TokenBudget: 1 << 62, RPMLimit: rpm}
		ids := benchIDs(1024)
		ctx := context.Background()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r := Reservation{RequestID: ids[i%len(ids)], Tokens: 1200}
			if err := m.Reserve(ctx, p, r); err != nil {
				b.Fatal(err)
			}
			m.Settle(p, Settlement{Reservation: r, Granted: true,
				Succeeded: true, PromptTokens: 200, CompletionTokens: 300})
		}
	}
	b.Run("SteppingClock", func(b *testing.B) { run(b, benchManager(b, Options{Now: steppingClock()}), 1000) })
	b.Run("RealClock", func(b *testing.B) { run(b, benchManager(b, Options{}), 0) })
}

// BenchmarkReserveSettleParallel has every goroutine work for its own user.
func BenchmarkReserveSettleParallel(b *testing.B) {
	m := benchManager(b, Options{Now: steppingClock()})
	ids := benchIDs(1024)
	var users atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		// The shared stepping clock advances once per call of any goroutine, so
		// each user sees fewer of its own requests per minute than alone.
		p := Account{UserID: users.Add(1), TokenBudget: 1 << 62, RPMLimit: 1000}
		for i := 0; pb.Next(); i++ {
			r := Reservation{RequestID: ids[i%len(ids)], Tokens: 1200}
			if err := m.Reserve(ctx, p, r); err != nil {
				b.Fatal(err)
			}
			m.Settle(p, Settlement{Reservation: r, Granted: true, PromptTokens: 200, CompletionTokens: 300})
		}
	})
}
