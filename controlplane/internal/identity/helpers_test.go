package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// fastParams make test hashing cheap; production parameters are tested on their own.
var fastParams = argonParams{time: 1, memory: 64, threads: 1, keyLen: 32, saltLen: 16}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingStore is the real store with a count of digest lookups, an optional gate
// that holds lookups after they have read the row, and a switch that fails usage
// writes.
type countingStore struct {
	*store.Store
	lookups  atomic.Int64
	gate     chan struct{}
	entered  chan struct{}
	failUses atomic.Bool
	gone     atomic.Bool // every key lookup finds nothing (the row was deleted)
	// down makes key lookups fail as the store does when the database cannot
	// be reached (the real outage is in dataplane/e2e and the store's tests).
	down atomic.Bool
}

func (c *countingStore) KeyByDigest(ctx context.Context, sha256hex string) (store.KeyRecord, error) {
	c.lookups.Add(1)
	if c.down.Load() {
		return store.KeyRecord{}, fmt.Errorf("key by digest: %w: dial tcp 127.0.0.1:3306: connect: connection refused", store.ErrUnavailable)
	}
	rec, err := c.Store.KeyByDigest(ctx, sha256hex)
	if c.gone.Load() {
		rec, err = store.KeyRecord{}, store.ErrNotFound
	}
	if c.entered != nil {
		select {
		case c.entered <- struct{}{}:
		default: // a lookup the test did not expect: its assertions report it, nothing hangs
		}
	}
	if c.gate != nil {
		<-c.gate
	}
	return rec, err
}

func (c *countingStore) RecordKeyUse(ctx context.Context, uses map[int64]store.KeyUse) error {
	if c.failUses.Load() {
		return errors.New("database unavailable")
	}
	return c.Store.RecordKeyUse(ctx, uses)
}

// fixture is a Service over a fresh SQLite store.
type fixture struct {
	st    *countingStore
	svc   *Service
	clock *clock
	reg   *prometheus.Registry
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: "sqlite", DSN: store.SQLiteDSN(filepath.Join(t.TempDir(), "id.db"))}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{st: &countingStore{Store: st}, clock: newClock(), reg: prometheus.NewRegistry()}
	f.svc = New(f.st, Options{Now: f.clock.Now, Registerer: f.reg, Logger: slog.New(slog.DiscardHandler)})
	f.svc.keyParams, f.svc.pwParams = fastParams, fastParams
	return f
}

// user creates a user in the named group.
func (f *fixture) user(t testing.TB, name, group string) store.User {
	t.Helper()
	g, err := f.st.GetGroupByName(context.Background(), group)
	require.NoError(t, err)
	u, err := f.svc.CreateUser(context.Background(), name, name+"@example.edu", "correct horse", g.ID, "")
	require.NoError(t, err)
	return u
}

// key mints a key for the user.
func (f *fixture) key(t testing.TB, userID int64, scopes ...string) (store.APIKey, string) {
	t.Helper()
	k, full, err := f.svc.CreateAPIKey(context.Background(), userID, "test", nil, scopes)
	require.NoError(t, err)
	return k, full
}

func (f *fixture) argon2Count() int { return int(testutil.ToFloat64(f.svc.metrics.argon2)) }

func (f *fixture) rejections(reason string) int {
	return int(testutil.ToFloat64(f.svc.metrics.rejections[reason]))
}
