package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// opener opens a fresh, empty, migrated store for one test.
type opener func(t *testing.T) *store.Store

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openSQLiteStore opens a store on a new SQLite file in t's temporary directory.
func openSQLiteStore(t *testing.T) *store.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mindrouter test.db")
	s, err := store.Open(ctxT(t), store.Config{Driver: "sqlite", DSN: store.SQLiteDSN(path)}, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// mariaBaseDSN is the server the MariaDB tests use, without a database.
func mariaBaseDSN() string {
	if dsn := os.Getenv("MINDROUTER_TEST_MARIADB_DSN"); dsn != "" {
		return dsn
	}
	return "root@tcp(127.0.0.1:3306)/"
}

// requireMariaDB fails the test when MariaDB does not answer, unless
// MINDROUTER_TEST_SKIP_MARIADB=1 asks to skip instead.
func requireMariaDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", mariaBaseDSN())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if os.Getenv("MINDROUTER_TEST_SKIP_MARIADB") == "1" {
			t.Skipf("MariaDB at %q unreachable and MINDROUTER_TEST_SKIP_MARIADB=1: %v", mariaBaseDSN(), err)
		}
		t.Fatalf("MariaDB at %q unreachable: %v (start it, point MINDROUTER_TEST_MARIADB_DSN at one, or set MINDROUTER_TEST_SKIP_MARIADB=1)", mariaBaseDSN(), err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// newMariaDatabase creates an empty database mr_test_<random>, dropped when the test
// ends, and returns a DSN for it.
func newMariaDatabase(t *testing.T) string {
	t.Helper()
	admin := requireMariaDB(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "mr_test_" + hex.EncodeToString(b[:])
	_, err := admin.ExecContext(ctxT(t), "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	cfg, err := mysql.ParseDSN(mariaBaseDSN())
	require.NoError(t, err)
	cfg.DBName = name
	return cfg.FormatDSN()
}

// openMariaStore opens a store on a new MariaDB database.
func openMariaStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(ctxT(t), store.Config{Driver: "mysql", DSN: newMariaDatabase(t)}, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// seedUser creates a user in the named group.
func seedUser(t *testing.T, s *store.Store, name, groupName string) store.User {
	t.Helper()
	ctx := ctxT(t)
	g, err := s.GetGroupByName(ctx, groupName)
	require.NoError(t, err)
	u, err := s.CreateUser(ctx, store.UserSpec{Username: name, Email: name + "@example.edu", GroupID: g.ID, FullName: "User " + name})
	require.NoError(t, err)
	return u
}

// seedKey stores a key with a digest derived from label.
func seedKey(t *testing.T, s *store.Store, userID int64, label string) store.APIKey {
	t.Helper()
	k, err := s.CreateAPIKey(ctxT(t), store.APIKeySpec{
		UserID: userID, Name: label, Prefix: "mr2_" + fmt.Sprintf("%-8.8s", label),
		SHA256: digest(label), Hash: "$argon2id$fake$" + label, Scopes: []string{"inference"},
	})
	require.NoError(t, err)
	return k
}

func digest(label string) string {
	b := make([]byte, 32)
	copy(b, label)
	return hex.EncodeToString(b)
}
