package election_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/election"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

const ttl = 600 * time.Millisecond

// partitioned is the real store behind a switch that makes every call fail as
// if the database could not be reached (a leader cut off from it).
type partitioned struct {
	*store.Store
	cut atomic.Bool
}

var errCut = errors.New("partitioned from the database")

func (p *partitioned) RenewLeader(ctx context.Context, name, holder string, token int64) (bool, error) {
	if p.cut.Load() {
		<-ctx.Done() // a partition drops packets: the call hangs until its deadline
		return false, errCut
	}
	return p.Store.RenewLeader(ctx, name, holder, token)
}

func (p *partitioned) ResignLeader(ctx context.Context, name, holder string, token int64) error {
	if p.cut.Load() {
		return errCut
	}
	return p.Store.ResignLeader(ctx, name, holder, token)
}

type backend struct {
	name string
	open func(t *testing.T) *store.Store
}

func backends() []backend {
	return []backend{{"sqlite", openSQLite}, {"mariadb", openMariaDB}}
}

func openSQLite(t *testing.T) *store.Store {
	path := filepath.Join(t.TempDir(), "election.db")
	return openStore(t, store.Config{Driver: "sqlite", DSN: store.SQLiteDSN(path)})
}

func openMariaDB(t *testing.T) *store.Store {
	base := os.Getenv("MINDROUTER_TEST_MARIADB_DSN")
	if base == "" {
		base = "root@tcp(127.0.0.1:3306)/"
	}
	db, err := sql.Open("mysql", base)
	require.NoError(t, err)
	defer db.Close()
	if err := db.Ping(); err != nil {
		if os.Getenv("MINDROUTER_TEST_SKIP_MARIADB") == "1" {
			t.Skipf("MariaDB unreachable: %v", err)
		}
		t.Fatalf("MariaDB at %s unreachable (set MINDROUTER_TEST_SKIP_MARIADB=1 to skip): %v", base, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "mr_election_" + hex.EncodeToString(b)
	_, err = db.Exec("CREATE DATABASE " + name)
	require.NoError(t, err)
	t.Cleanup(func() {
		if c, err := sql.Open("mysql", base); err == nil {
			_, _ = c.Exec("DROP DATABASE " + name)
			c.Close()
		}
	})
	return openStore(t, store.Config{Driver: "mysql", DSN: base + name})
}

func openStore(t *testing.T, cfg store.Config) *store.Store {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newElector(t *testing.T, st election.Store, holder string) *election.Elector {
	e, err := election.New(st, election.Options{Holder: holder, TTL: ttl})
	require.NoError(t, err)
	return e
}

// watchOverlap polls the electors until stop and fails the test if two of them
// ever lead at once.
func watchOverlap(t *testing.T, electors ...*election.Elector) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			default:
			}
			n := 0
			for _, e := range electors {
				if e.Leading() {
					n++
				}
			}
			if n > 1 {
				t.Errorf("%d electors lead at once", n)
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	return func() { close(done); <-finished }
}

// campaign runs e.Campaign in the background; the channel says when it won.
func campaign(ctx context.Context, e *election.Elector) <-chan error {
	won := make(chan error, 1)
	go func() { won <- e.Campaign(ctx) }()
	return won
}

// TestOneLeaderAndHandOver: of two instances exactly one leads; the other
// stands by, knows the leader's address, and takes over at once when the
// leader resigns, with a higher fencing token.
func TestOneLeaderAndHandOver(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			a, s := newElector(t, st, "cp-a:9090"), newElector(t, st, "cp-b:9090")
			stop := watchOverlap(t, a, s)
			defer stop()
			require.NoError(t, a.Campaign(ctx))
			require.True(t, a.Leading())
			first := a.Token()
			won := campaign(ctx, s)
			require.Eventually(t, func() bool { return s.Leader() == "cp-a:9090" }, 10*time.Second, 5*time.Millisecond)
			// Several TTLs of renewals: the standby never takes over a live leader.
			select {
			case err := <-won:
				t.Fatalf("the standby won (%v) while the leader renewed", err)
			case <-time.After(4 * ttl):
			}
			require.True(t, a.Leading())

			resigned := time.Now()
			a.Resign(ctx)
			require.False(t, a.Leading())
			require.NoError(t, <-won)
			assert.Less(t, time.Since(resigned), ttl, "a resignation hands over without waiting for the TTL")
			require.True(t, s.Leading())
			require.Greater(t, s.Token(), first)
			s.Resign(ctx)
		})
	}
}

// TestPartitionedLeaderStopsBeforeTheStandbyStarts cuts the leader off from
// the database: it stops acting (Leading false, Lost closed) on its own, the
// standby takes over within the bound, never while the old one still acts,
// and the old leader cannot renew once the database answers again.
func TestPartitionedLeaderStopsBeforeTheStandbyStarts(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cut := &partitioned{Store: st}
			a, s := newElector(t, cut, "cp-a:9090"), newElector(t, st, "cp-b:9090")
			stop := watchOverlap(t, a, s)
			defer stop()
			require.NoError(t, a.Campaign(ctx))
			won := campaign(ctx, s)
			require.Eventually(t, func() bool { return s.Leader() == "cp-a:9090" }, 10*time.Second, 5*time.Millisecond)

			cut.cut.Store(true)
			partition := time.Now()
			select {
			case <-a.Lost():
			case <-time.After(10 * time.Second):
				t.Fatal("the partitioned leader did not notice")
			}
			require.False(t, a.Leading())
			require.NoError(t, <-won)
			took := time.Since(partition)
			t.Logf("standby leads %v after the partition (TTL %v)", took.Round(time.Millisecond), ttl)
			assert.Less(t, took, 3*ttl)

			// Healed: the old leader's token is stale, its renewal refused.
			cut.cut.Store(false)
			ok, err := st.RenewLeader(ctx, election.DefaultName, "cp-a:9090", a.Token())
			require.NoError(t, err)
			require.False(t, ok, "the old term cannot renew")
			ok, err = st.RenewLeader(ctx, election.DefaultName, "cp-b:9090", s.Token())
			require.NoError(t, err)
			require.True(t, ok)
			a.Resign(ctx) // no-op: it does not lead
			require.True(t, s.Leading())
			s.Resign(ctx)
		})
	}
}

// TestRacingClaimsElectOne starts several instances at once on an empty
// table: exactly one wins.
func TestRacingClaimsElectOne(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			electors := make([]*election.Elector, 4)
			for i := range electors {
				electors[i] = newElector(t, st, "cp-"+string(rune('a'+i)))
			}
			stop := watchOverlap(t, electors...)
			defer stop()
			var wg sync.WaitGroup
			var winners atomic.Int32
			for _, e := range electors {
				wg.Go(func() {
					if e.Campaign(ctx) == nil {
						winners.Add(1)
					}
				})
			}
			require.Eventually(t, func() bool { return winners.Load() == 1 }, 10*time.Second, 5*time.Millisecond)
			time.Sleep(2 * ttl)
			cancel()
			wg.Wait()
			require.EqualValues(t, 1, winners.Load())
			for _, e := range electors {
				e.Resign(context.Background())
			}
		})
	}
}
