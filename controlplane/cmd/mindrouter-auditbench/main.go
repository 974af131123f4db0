// Command mindrouter-auditbench times audit search over a large generated
// audit table in MariaDB (make bench-audit-search ROWS=10000000). It creates a
// database of its own, lets the store create the schema, fills audit_records
// server-side (INSERT ... SELECT over MariaDB's SEQUENCE engine, in chunks,
// with the FULLTEXT index built once afterwards, as a restore would), then runs
// the store's own search queries and prints a markdown table. The database is
// dropped at the end unless -keep.
//
// With -ingest D it times sustained ingest instead (make bench-audit-ingest):
// -replicas concurrent senders of -batch records each, through the control
// plane's audit writer (group commit, one transaction per group) into the
// store, for D, on a fresh database.
//
// The data: -users users, -days days of timestamps spread evenly, four models;
// each prompt has two of eight common words, one of 5,000 "topic" words, and
// one row in 10,000 the rare word "axolotl".
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

type config struct {
	dsn     string
	rows    int
	chunk   int
	users   int
	days    int
	queries int
	keep    bool
	reuse   string
	ingest  ingestConfig
	pad     int
	// indexDuringLoad keeps the FULLTEXT index while rows are generated
	// instead of building it after with a table copy (which needs the table's
	// size again in free disk).
	indexDuringLoad bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.dsn, "dsn", envOr("MINDROUTER_TEST_MARIADB_DSN", "root@tcp(127.0.0.1:3306)/"), "MariaDB DSN without a database")
	flag.IntVar(&cfg.rows, "rows", 1_000_000, "audit records to generate")
	flag.IntVar(&cfg.chunk, "chunk", 250_000, "rows per INSERT ... SELECT (one transaction each)")
	flag.IntVar(&cfg.users, "users", 1000, "distinct users")
	flag.IntVar(&cfg.days, "days", 30, "days the records span")
	flag.IntVar(&cfg.queries, "queries", 20, "timed runs of each search")
	flag.IntVar(&cfg.pad, "pad", 0, "search: lengthen every answer by about this many bytes of filler sentences (rows of a few KB, as real ones are)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the database afterwards")
	flag.BoolVar(&cfg.indexDuringLoad, "index-during-load", false, "search: keep the FULLTEXT index while generating (slower; no table copy, so half the peak disk of the default)")
	flag.StringVar(&cfg.reuse, "reuse", "", "time the searches on this database, kept by an earlier -keep run (with the same -rows, -users and -days), instead of generating one; it is kept")
	flag.DurationVar(&cfg.ingest.duration, "ingest", 0, "instead of the search benchmark, time sustained ingest for this long (make bench-audit-ingest)")
	flag.IntVar(&cfg.ingest.replicas, "replicas", 4, "ingest: data planes sending at once, each with one batch in flight")
	flag.IntVar(&cfg.ingest.batch, "batch", 256, "ingest: records per batch (a data plane sends up to 256)")
	flag.IntVar(&cfg.ingest.artifactEvery, "artifact-every", 20, "ingest: one record in this many carries an image of 8-48 KB (0: none)")
	flag.IntVar(&cfg.ingest.textTables, "text-tables", 0, "ingest, measurement only: drop audit_records' FULLTEXT index and index the text in this many side tables written at once (a layout the product does not have)")
	flag.StringVar(&cfg.ingest.dropIndexes, "drop-indexes", "", "ingest: drop these indexes of audit_records first (comma-separated names; to measure what each costs)")
	flag.Parse()
	if err := run(context.Background(), cfg); err != nil {
		fmt.Fprintln(os.Stderr, "mindrouter-auditbench:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, cfg config) error {
	admin, err := sql.Open("mysql", cfg.dsn)
	if err != nil {
		return err
	}
	defer admin.Close()
	var r [4]byte
	_, _ = rand.Read(r[:])
	name := "mr_auditbench_" + hex.EncodeToString(r[:])
	if cfg.reuse != "" {
		name, cfg.keep = cfg.reuse, true
	} else if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	if !cfg.keep {
		defer func() {
			if _, err := admin.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE `"+name+"`"); err != nil {
				fmt.Fprintln(os.Stderr, "drop database:", err)
			}
		}()
	} else {
		fmt.Println("database:", name)
	}
	dcfg, err := mysql.ParseDSN(cfg.dsn)
	if err != nil {
		return err
	}
	dcfg.DBName = name
	st, err := store.Open(ctx, store.Config{Driver: "mysql", DSN: dcfg.FormatDSN(), Timeout: time.Minute}, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.ingest.duration > 0 {
		drops := strings.FieldsFunc(cfg.ingest.dropIndexes, func(r rune) bool { return r == ',' })
		if cfg.ingest.textTables > 0 && !slices.Contains(drops, "audit_records_text") {
			drops = append(drops, "audit_records_text") // the side tables index the text instead
		}
		for _, ix := range drops {
			if _, err := admin.ExecContext(ctx, "ALTER TABLE `"+name+"`.audit_records DROP INDEX `"+ix+"`"); err != nil {
				return fmt.Errorf("drop index %s: %w", ix, err)
			}
		}
		var side *sideText
		if cfg.ingest.textTables > 0 {
			db, err := sql.Open("mysql", dcfg.FormatDSN())
			if err != nil {
				return err
			}
			defer db.Close()
			sctx, stop := context.WithCancel(ctx)
			defer stop()
			if side, err = newSideText(sctx, db, cfg.ingest.textTables); err != nil {
				return err
			}
			fmt.Printf("text indexed in %d side tables (measurement only)\n", cfg.ingest.textTables)
		}
		ingestHeader()
		return runIngest(ctx, st, side, cfg.ingest)
	}
	db, err := sql.Open("mysql", dcfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()

	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var fill, index time.Duration
	if cfg.reuse == "" {
		if fill, index, err = generate(ctx, db, cfg, base); err != nil {
			return err
		}
	}
	var dataMB, indexMB float64
	_ = db.QueryRowContext(ctx, `SELECT data_length/1048576, index_length/1048576 FROM information_schema.tables
		WHERE table_schema = DATABASE() AND table_name = 'audit_records'`).Scan(&dataMB, &indexMB)

	built := "FULLTEXT index built in " + index.Round(time.Second).String()
	if cfg.indexDuringLoad {
		built = "FULLTEXT index kept during the load"
	}
	fmt.Printf("\n%d rows (%d users, %d days, answers padded by %d bytes): filled in %s (%.0f rows/s), %s; table %.0f MiB, indexes %.0f MiB\n\n",
		cfg.rows, cfg.users, cfg.days, cfg.pad/len(padSentence)*len(padSentence), fill.Round(time.Second), float64(cfg.rows)/fill.Seconds(), built, dataMB, indexMB)
	fmt.Println("| search (store.SearchAuditRecords, a page of 100, newest first) | rows matched | median | max |")
	fmt.Println("|---|---|---|---|")
	day := 24 * time.Hour
	cases := []struct {
		name string
		f    func(i int) store.AuditFilter
		slow bool // timed once: it reads every match
	}{
		{"one user, one day", func(i int) store.AuditFilter {
			d := base.Add(time.Duration(i%cfg.days) * day)
			return store.AuditFilter{UserID: int64(i*37%cfg.users + 1), Start: d, End: d.Add(day)}
		}, false},
		{"one user, all days", func(i int) store.AuditFilter { return store.AuditFilter{UserID: int64(i*37%cfg.users + 1)} }, false},
		{"one day, all users", func(i int) store.AuditFilter {
			d := base.Add(time.Duration(i%cfg.days) * day)
			return store.AuditFilter{Start: d, End: d.Add(day)}
		}, false},
		{"text: a rare word (1 row in 10,000)", func(int) store.AuditFilter { return store.AuditFilter{Text: "axolotl"} }, false},
		{"text: a topic word (1 row in 5,000)", func(i int) store.AuditFilter { return store.AuditFilter{Text: fmt.Sprintf("topic%d", i*131%5000)} }, false},
		{"text: a topic word and one user", func(i int) store.AuditFilter {
			return store.AuditFilter{Text: fmt.Sprintf("topic%d", i*131%5000), UserID: int64(i*37%cfg.users + 1)}
		}, false},
		{"text: two common words (1 row in 6)", func(int) store.AuditFilter { return store.AuditFilter{Text: "recursion sonnet"} }, true},
		{"text: two common words, one day", func(i int) store.AuditFilter {
			d := base.Add(time.Duration(i%cfg.days) * day)
			return store.AuditFilter{Text: "recursion sonnet", Start: d, End: d.Add(day)}
		}, true},
	}
	for _, c := range cases {
		times := make([]time.Duration, 0, cfg.queries)
		matched := 0
		runs := cfg.queries
		if c.slow {
			runs = 1
		}
		for i := range runs {
			start := time.Now()
			recs, _, err := st.SearchAuditRecords(ctx, c.f(i), "", 100)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			times = append(times, time.Since(start))
			matched = max(matched, len(recs))
		}
		slices.Sort(times)
		fmt.Printf("| %s | %d+ | %s | %s |\n", c.name, matched, round(times[len(times)/2]), round(times[len(times)-1]))
	}
	return nil
}

func round(d time.Duration) string {
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// padSentence lengthens answers (-pad).
const padSentence = " it goes on to explain the idea in more detail, with an example."

// generate fills audit_records with cfg.rows rows, then builds the FULLTEXT
// index (unless cfg.indexDuringLoad kept it during the load: index is then 0),
// and returns how long each took.
func generate(ctx context.Context, db *sql.DB, cfg config, base time.Time) (fill, index time.Duration, err error) {
	if !cfg.indexDuringLoad {
		if _, err := db.ExecContext(ctx, "ALTER TABLE audit_records DROP INDEX audit_records_text"); err != nil {
			return 0, 0, fmt.Errorf("drop the FULLTEXT index for the load: %w", err)
		}
	}
	step := float64(cfg.days) * 86400e6 / float64(cfg.rows) // microseconds between records
	const words = `'thermodynamics','photosynthesis','recursion','sonnet','derivative','enzyme','budget','syllabus'`
	q := `INSERT INTO audit_records (request_id, created_at, user_id, username, api_key_id, group_name, surface, endpoint,
		model, backend_id, status, status_code, error, streaming, prompt_text, response_text, finish_reason,
		content_omitted, prompt_tokens, completion_tokens, tokens_estimated, queue_wait_ms, ttft_ms, total_ms,
		client_ip, user_agent, replica_id, stored_at)
	SELECT CONCAT('gen-', LPAD(seq, 10, '0')), ? + INTERVAL FLOOR(seq * ?) MICROSECOND, seq % ? + 1,
		CONCAT('user', seq % ?), seq % ? + 1, 'student', 'openai', '/v1/chat/completions',
		ELT(1 + seq % 4, 'llama3', 'qwen3', 'mistral', 'phi4'), 1 + seq % 8, 'completed', 200, '', seq % 2,
		CONCAT('please explain ', ELT(1 + seq % 8, ` + words + `), ' and ', ELT(1 + (seq DIV 7) % 8, ` + words + `),
			' for topic', (seq * 7919) % 5000, ' briefly', IF(seq % 10000 = 42, ' axolotl', '')),
		CONCAT('an answer about ', ELT(1 + (seq DIV 3) % 8, ` + words + `), REPEAT('` + padSentence + `', PAD_TIMES)), 'stop',
		0, 12, 40, 0, 5, 80, 900, '10.0.0.1', 'mindrouter-auditbench', 'dp-1', NOW(6)
	FROM seq_FROM_to_TO`
	start := time.Now()
	for from := 0; from < cfg.rows; from += cfg.chunk {
		to := min(from+cfg.chunk, cfg.rows) - 1
		if _, err := db.ExecContext(ctx, strings.NewReplacer("FROM_to_TO", fmt.Sprintf("%d_to_%d", from, to), "PAD_TIMES", fmt.Sprint(cfg.pad/len(padSentence))).Replace(q), base, step, cfg.users, cfg.users, cfg.users); err != nil {
			return 0, 0, fmt.Errorf("generate rows %d to %d: %w", from, to, err)
		}
		el := time.Since(start)
		fmt.Fprintf(os.Stderr, "\r%d rows in %s (%.0f rows/s)   ", to+1, el.Round(time.Second), float64(to+1)/el.Seconds())
	}
	fill = time.Since(start)
	if cfg.indexDuringLoad {
		_, err := db.ExecContext(ctx, "ANALYZE TABLE audit_records")
		return fill, 0, err
	}
	fmt.Fprintln(os.Stderr, "\nbuilding the FULLTEXT index ...")
	start = time.Now()
	// ALGORITHM=COPY: on MariaDB 10.11 an in-place ADD FULLTEXT over rows
	// inserted after the table's first FULLTEXT index was dropped builds an
	// index that matches nothing (the hidden FTS_DOC_ID column outlives the
	// index); a copy renumbers the documents.
	if _, err := db.ExecContext(ctx, "ALTER TABLE audit_records ADD FULLTEXT INDEX audit_records_text (prompt_text, response_text), ALGORITHM=COPY"); err != nil {
		return 0, 0, fmt.Errorf("build the FULLTEXT index: %w", err)
	}
	index = time.Since(start)
	if _, err := db.ExecContext(ctx, "ANALYZE TABLE audit_records"); err != nil {
		return 0, 0, err
	}
	return fill, index, nil
}
