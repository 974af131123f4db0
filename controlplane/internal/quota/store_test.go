package quota

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// flakyStore is a MemoryStore that fails while fail is set and counts saves.
type flakyStore struct {
	*MemoryStore
	mu      sync.Mutex
	fail    bool
	saves   int
	batches [][]Record
	saved   chan struct{}
}

func newFlakyStore() *flakyStore {
	return &flakyStore{MemoryStore: NewMemoryStore(), saved: make(chan struct{}, 100)}
}

func (s *flakyStore) setFail(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = v
}

func (s *flakyStore) LoadUsage(ctx context.Context) ([]Record, error) {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail {
		return nil, errors.New("database down")
	}
	return s.MemoryStore.LoadUsage(ctx)
}

func (s *flakyStore) SaveUsage(ctx context.Context, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("database down")
	}
	s.saves++
	s.batches = append(s.batches, append([]Record(nil), recs...))
	select {
	case s.saved <- struct{}{}:
	default:
	}
	return s.MemoryStore.SaveUsage(ctx, recs)
}

func (s *flakyStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

func TestFlushAndLoad(t *testing.T) {
	t.Parallel()
	store := newFlakyStore()
	h := newHarness(t, Options{Store: store, Period: 48 * time.Hour})
	ctx := context.Background()
	p := principal(1, 1000, 0)
	id, err := h.reserve(p, 500)
	require.NoError(t, err)
	h.settle(p, id, 500, 120, 30)
	_, err = h.reserve(principal(2, 0, 0), 100) // held, nothing charged: not written
	require.NoError(t, err)

	require.NoError(t, h.m.Flush(ctx))
	recs, err := store.LoadUsage(ctx)
	require.NoError(t, err)
	want := Record{UserID: 1, TokensUsed: 150, LifetimeTokensUsed: 150, PeriodStart: h.clock.Now(), PeriodDays: 2}
	require.Equal(t, []Record{want}, recs)

	// Nothing changed: nothing written.
	require.NoError(t, h.m.Flush(ctx))
	require.Equal(t, 1, store.count())

	// A fresh manager (a restart) loads the usage and enforces it.
	h2 := newHarness(t, Options{Store: store})
	h2.clock.Advance(time.Hour)
	require.NoError(t, h2.m.Load(ctx))
	u := h2.m.Usage(1)
	require.Equal(t, want, u.Record)
	require.Equal(t, want.PeriodStart.Add(48*time.Hour), u.PeriodEnd)
	_, err = h2.reserve(p, 851)
	requireLimit(t, err, ErrQuotaExhausted, time.Hour)
	id, err = h2.reserve(p, 850)
	require.NoError(t, err)
	h2.settle(p, id, 850, 0, 0) // nothing reported: the reservation is charged
	require.Equal(t, int64(1000), h2.m.Usage(1).TokensUsed)

	// The stored period runs out: the next request starts a new one, saved.
	h2.clock.Advance(47 * time.Hour)
	id, err = h2.reserve(principal(1, 1000, 0), 1000)
	require.NoError(t, err)
	h2.settle(p, id, 1000, 10, 0)
	require.NoError(t, h2.m.Flush(ctx))
	recs, err = store.LoadUsage(ctx)
	require.NoError(t, err)
	require.Equal(t, []Record{{UserID: 1, TokensUsed: 10, LifetimeTokensUsed: 1010, PeriodStart: h2.clock.Now(), PeriodDays: 2}}, recs)
}

func TestFlushRetriesAfterFailure(t *testing.T) {
	t.Parallel()
	store := newFlakyStore()
	h := newHarness(t, Options{Store: store})
	ctx := context.Background()
	p := principal(1, 0, 0)
	id, err := h.reserve(p, 10)
	require.NoError(t, err)
	h.settle(p, id, 10, 10, 0)

	store.setFail(true)
	require.ErrorContains(t, h.m.Flush(ctx), "database down")
	require.ErrorContains(t, h.m.Load(ctx), "database down")
	require.Equal(t, 2.0, h.metric(t, "mindrouter_quota_store_errors_total"))

	store.setFail(false)
	require.NoError(t, h.m.Flush(ctx))
	recs, err := store.LoadUsage(ctx)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, int64(10), recs[0].TokensUsed)
}

func TestFlushBatches(t *testing.T) {
	t.Parallel()
	store := newFlakyStore()
	h := newHarness(t, Options{Store: store})
	for uid := range int64(flushBatch + 20) {
		p := principal(uid+1, 0, 0)
		id, err := h.reserve(p, 10)
		require.NoError(t, err)
		h.settle(p, id, 10, 10, 0)
	}
	require.NoError(t, h.m.Flush(context.Background()))
	require.Len(t, store.batches, 2)
	require.Len(t, store.batches[0], flushBatch)
	require.Len(t, store.batches[1], 20)
}

func TestRunFlushesPeriodicallyAndAtShutdown(t *testing.T) {
	t.Parallel()
	store := newFlakyStore()
	h := newHarness(t, Options{Store: store, FlushInterval: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.m.Run(ctx) }()

	p := principal(1, 0, 0)
	id, err := h.reserve(p, 10)
	require.NoError(t, err)
	h.settle(p, id, 10, 7, 0)
	select {
	case <-store.saved:
	case <-time.After(5 * time.Second):
		t.Fatal("no periodic flush")
	}

	id, err = h.reserve(p, 10)
	require.NoError(t, err)
	h.settle(p, id, 10, 3, 0)
	cancel()
	require.NoError(t, <-done)
	recs, err := store.LoadUsage(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(10), recs[0].TokensUsed, "the last change is saved at shutdown")
}

func TestRunWithoutStore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	require.NoError(t, h.m.Run(context.Background()))
	require.NoError(t, h.m.Load(context.Background()))
	require.NoError(t, h.m.Flush(context.Background()))
}

func TestLoadOddPeriods(t *testing.T) {
	t.Parallel()
	store := NewMemoryStore()
	h := newHarness(t, Options{Store: store, Period: time.Hour})
	now := h.clock.Now()
	ctx := context.Background()
	require.NoError(t, store.SaveUsage(ctx, []Record{
		{UserID: 1, TokensUsed: 50},                                          // no start
		{UserID: 2, TokensUsed: 50, PeriodStart: now.Add(time.Hour)},         // in the future
		{UserID: 3, TokensUsed: 50, PeriodStart: now.Add(-90 * time.Minute)}, // already over
		{UserID: 4, TokensUsed: 50, PeriodStart: now.AddDate(-30, 0, 0), PeriodDays: 7},
	}))
	require.NoError(t, h.m.Load(ctx))
	for uid, want := range map[int64]Record{
		1: {UserID: 1, TokensUsed: 50, PeriodStart: now},
		2: {UserID: 2, TokensUsed: 50, PeriodStart: now},
		3: {UserID: 3, PeriodStart: now},
		4: {UserID: 4, PeriodStart: now, PeriodDays: 7},
	} {
		require.Equal(t, want, h.m.Usage(uid).Record, "user %d", uid)
	}
}
