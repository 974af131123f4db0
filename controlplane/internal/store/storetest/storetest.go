// Package storetest opens real stores for other packages' tests: a fresh SQLite file
// or a fresh MariaDB database (MINDROUTER_TEST_MARIADB_DSN, default root on
// 127.0.0.1:3306), each removed when the test ends. It is imported by tests only.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// Openers are the two databases every integration test runs on, by name.
var Openers = map[string]func(t *testing.T) *store.Store{"sqlite": SQLite, "mariadb": MariaDB}

// opened maps each store this package opened to its driver and DSN, for SQL.
var opened sync.Map

// SQL opens a second connection to the database of st (opened by this
// package), for a test to set what no store call sets (a backdated time).
func SQL(t *testing.T, st *store.Store) *sql.DB {
	t.Helper()
	cfg, ok := opened.Load(st)
	require.True(t, ok, "storetest.SQL: the store was not opened by storetest")
	c := cfg.(store.Config)
	dsn := c.DSN
	if c.Driver == store.DriverMySQL {
		var err error
		dsn, err = store.MySQLDSN(dsn)
		require.NoError(t, err)
	}
	db, err := sql.Open(c.Driver, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// open opens and migrates a store on cfg, closed when the test ends.
func open(t *testing.T, cfg store.Config) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), cfg, nil)
	require.NoError(t, err)
	opened.Store(st, cfg)
	t.Cleanup(func() {
		opened.Delete(st)
		_ = st.Close()
	})
	return st
}

// SQLite opens a migrated store on a new SQLite file in t's temporary directory.
func SQLite(t *testing.T) *store.Store {
	t.Helper()
	return open(t, store.Config{Driver: store.DriverSQLite,
		DSN: store.SQLiteDSN(filepath.Join(t.TempDir(), "test.db")), Timeout: 30 * time.Second})
}

// MariaDB opens a migrated store on a new database mr_test_<random>, dropped when
// the test ends. It fails the test when MariaDB does not answer, unless
// MINDROUTER_TEST_SKIP_MARIADB=1 asks to skip.
func MariaDB(t *testing.T) *store.Store {
	t.Helper()
	base := os.Getenv("MINDROUTER_TEST_MARIADB_DSN")
	if base == "" {
		base = "root@tcp(127.0.0.1:3306)/"
	}
	admin, err := sql.Open("mysql", base)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		if os.Getenv("MINDROUTER_TEST_SKIP_MARIADB") == "1" {
			t.Skipf("MariaDB unreachable and MINDROUTER_TEST_SKIP_MARIADB=1: %v", err)
		}
		t.Fatalf("MariaDB at %q unreachable: %v (set MINDROUTER_TEST_SKIP_MARIADB=1 to skip)", base, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "mr_test_" + hex.EncodeToString(b[:])
	_, err = admin.ExecContext(t.Context(), "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	cfg, err := mysql.ParseDSN(base)
	require.NoError(t, err)
	cfg.DBName = name
	return open(t, store.Config{Driver: store.DriverMySQL, DSN: cfg.FormatDSN(), Timeout: 30 * time.Second})
}

// Each runs fn as a parallel subtest on a fresh store of each database.
func Each(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	t.Helper()
	for name, open := range Openers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, open(t))
		})
	}
}
