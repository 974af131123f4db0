package audit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/spool"
)

// benchMariaDB opens a store on a fresh MariaDB database (dropped after), or
// skips when none answers (MINDROUTER_TEST_MARIADB_DSN, default root on
// 127.0.0.1:3306).
func benchMariaDB(b testing.TB) *store.Store {
	b.Helper()
	base := os.Getenv("MINDROUTER_TEST_MARIADB_DSN")
	if base == "" {
		base = "root@tcp(127.0.0.1:3306)/"
	}
	admin, err := sql.Open("mysql", base)
	require.NoError(b, err)
	if err := admin.Ping(); err != nil {
		b.Skipf("MariaDB at %q: %v", base, err)
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := "mr_bench_" + hex.EncodeToString(r[:])
	_, err = admin.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
	require.NoError(b, err)
	b.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE `" + name + "`"); _ = admin.Close() })
	cfg, err := mysql.ParseDSN(base)
	require.NoError(b, err)
	cfg.DBName = name
	st, err := store.Open(context.Background(), store.Config{Driver: "mysql", DSN: cfg.FormatDSN()}, nil)
	require.NoError(b, err)
	b.Cleanup(func() { _ = st.Close() })
	return st
}

// BenchmarkIngestMariaDB writes batches of 256 records (with a prompt and a
// response of a few hundred bytes each) through the writer into MariaDB, as
// the ingest stream does, from 1 and from 4 replicas at once (each with one
// batch in flight, as a data plane sends them); concurrent batches are
// coalesced into one transaction. records/s is the sustained ingest rate.
func BenchmarkIngestMariaDB(b *testing.B) {
	for _, c := range []struct{ replicas, per int }{{1, 256}, {4, 256}, {1, 1024}} {
		b.Run(fmt.Sprintf("replicas=%d/batch=%d", c.replicas, c.per), func(b *testing.B) { benchIngest(b, benchMariaDB(b), c.replicas, c.per) })
	}
}

// BenchmarkIngestSQLite is BenchmarkIngestMariaDB on the embedded default: a
// fresh SQLite file, written by the control plane's own process (so its CPU
// is the control plane's).
func BenchmarkIngestSQLite(b *testing.B) {
	for _, c := range []struct{ replicas, per int }{{1, 16}, {1, 256}, {4, 256}} {
		b.Run(fmt.Sprintf("replicas=%d/batch=%d", c.replicas, c.per), func(b *testing.B) {
			st, err := store.Open(context.Background(), store.Config{Driver: "sqlite",
				DSN: store.SQLiteDSN(filepath.Join(b.TempDir(), "audit.db"))}, nil)
			require.NoError(b, err)
			b.Cleanup(func() { _ = st.Close() })
			benchIngest(b, st, c.replicas, c.per)
		})
	}
}

func benchIngest(b *testing.B, st *store.Store, replicas, per int) {
	spool, err := spool.Open(filepath.Join(b.TempDir(), "spool"), 0)
	require.NoError(b, err)
	w := NewWriter(st, spool, WriterOptions{})
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for r := range replicas {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				bt := batch(uint64(i), i*per, per, "student")
				bt.ReplicaId = fmt.Sprintf("dp-%d", r)
				for _, r := range bt.Records {
					r.PromptText = fmt.Sprintf("%s please summarise the attached lecture notes on thermodynamics, entropy and the second law, in plain words for first-year students", r.PromptText)
					r.ResponseText = "Entropy measures how many microscopic arrangements match what we observe; the second law says it does not decrease in an isolated system, which is why heat flows from hot to cold."
				}
				if err := w.Write(ctx, bt); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N*per)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N*per), "µs/record")
	// The process's CPU per record (the writer, the store and, on SQLite, the
	// database itself): steadier than wall time on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*per), "cpu-µs/record")
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSearchMariaDB fills MariaDB with MINDROUTER_BENCH_AUDIT_ROWS
// generated records (default 100000; 1,000 users, a month of timestamps, one
// record in 10,000 with a rare word) and times a page of one user's records
// in a one-day window and a full-text search for the rare word.
func BenchmarkSearchMariaDB(b *testing.B) {
	rows := 100_000
	if v := os.Getenv("MINDROUTER_BENCH_AUDIT_ROWS"); v != "" {
		_, err := fmt.Sscan(v, &rows)
		require.NoError(b, err)
	}
	st := benchMariaDB(b)
	ctx := context.Background()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	words := []string{"thermodynamics", "photosynthesis", "recursion", "sonnet", "derivative", "enzyme", "budget", "syllabus"}
	const per = 1000
	for start := 0; start < rows; start += per {
		recs := make([]store.AuditRecord, 0, per)
		for i := start; i < min(start+per, rows); i++ {
			text := "please explain " + words[i%len(words)] + " and " + words[(i/7)%len(words)] + " briefly"
			if i%10_000 == 42 {
				text += " axolotl"
			}
			recs = append(recs, store.AuditRecord{RequestID: fmt.Sprintf("gen-%09d", i), CreatedAt: base.Add(time.Duration(i) * (30 * 24 * time.Hour) / time.Duration(rows)),
				UserID: int64(i%1000 + 1), Username: fmt.Sprintf("user%d", i%1000), Surface: "openai", Model: "m", Status: "completed", StatusCode: 200,
				PromptText: text, ResponseText: "an answer about " + words[(i/3)%len(words)], PromptTokens: 12, CompletionTokens: 40})
		}
		require.NoError(b, st.InsertAuditRecords(ctx, recs, nil))
	}
	b.Run("user+day", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			day := base.Add(time.Duration(i%28) * 24 * time.Hour)
			recs, _, err := st.SearchAuditRecords(ctx, store.AuditFilter{UserID: int64(i%1000 + 1), Start: day, End: day.Add(24 * time.Hour)}, "", 100)
			require.NoError(b, err)
			_ = recs
		}
	})
	b.Run("text", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			recs, _, err := st.SearchAuditRecords(ctx, store.AuditFilter{Text: "axolotl"}, "", 100)
			require.NoError(b, err)
			require.NotEmpty(b, recs)
		}
	})
	b.Run("text+common", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, err := st.SearchAuditRecords(ctx, store.AuditFilter{Text: "recursion sonnet"}, "", 100)
			require.NoError(b, err)
		}
	})
}
