package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
)

// newMariaDatabase creates an empty database on the test MariaDB
// (MINDROUTER_TEST_MARIADB_DSN, default root@127.0.0.1:3306), dropped when the
// test ends, and returns its DSN. MINDROUTER_TEST_SKIP_MARIADB=1 skips the test
// when the server does not answer; otherwise that is a failure.
func newMariaDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("MINDROUTER_TEST_MARIADB_DSN")
	if base == "" {
		base = "root@tcp(127.0.0.1:3306)/"
	}
	admin, err := sql.Open("mysql", base)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		if os.Getenv("MINDROUTER_TEST_SKIP_MARIADB") == "1" {
			t.Skipf("MariaDB at %q unreachable: %v", base, err)
		}
		t.Fatalf("MariaDB at %q unreachable: %v (or set MINDROUTER_TEST_SKIP_MARIADB=1)", base, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "mr_test_" + hex.EncodeToString(b[:])
	_, err = admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
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
	cfg.ParseTime = true
	return cfg.FormatDSN()
}
