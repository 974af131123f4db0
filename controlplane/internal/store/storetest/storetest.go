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
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// Openers are the two databases every integration test runs on, by name.
var Openers = map[string]func(t *testing.T) *store.Store{"sqlite": SQLite, "mariadb": MariaDB}

// SQLite opens a migrated store on a new SQLite file in t's temporary directory.
func SQLite(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), store.Config{Driver: store.DriverSQLite,
		DSN: store.SQLiteDSN(filepath.Join(t.TempDir(), "test.db")), Timeout: 30 * time.Second}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
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
	st, err := store.Open(t.Context(), store.Config{Driver: store.DriverMySQL, DSN: cfg.FormatDSN(), Timeout: 30 * time.Second}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
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
