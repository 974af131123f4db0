package main

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"strings"

	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
)

// sideText measures a layout the product does not have (-text-tables N, for
// measurement only): audit_records without its FULLTEXT index, and each
// record's prompt and answer copied into one of N side tables by a hash of its
// request id, each side table with its own FULLTEXT index and its own writer,
// so that N full-text commits run at once (docs/benchmarks.md, "Tables written
// side by side"). A batch counts as stored when the writer has acknowledged it
// and every side table has committed its part.
type sideText struct {
	db     *sql.DB
	queues []chan sidePart
}

// sidePart is one batch's records for one side table; done receives the
// insert's error.
type sidePart struct {
	rows []*auditv1.Record
	done chan error
}

// sideRowsPerStatement bounds one multi-row INSERT (as the store's does).
const sideRowsPerStatement = 1000

// newSideText creates n side tables and starts their writers; they stop when
// ctx ends. The caller drops audit_records' own FULLTEXT index.
func newSideText(ctx context.Context, db *sql.DB, n int) (*sideText, error) {
	s := &sideText{db: db}
	for k := range n {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE TABLE audit_texts_%d (request_id VARCHAR(64) NOT NULL PRIMARY KEY, "+
			"prompt_text LONGTEXT NOT NULL, response_text LONGTEXT NOT NULL, FULLTEXT INDEX audit_texts_%d_text (prompt_text, response_text)) "+
			"ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci", k, k)); err != nil {
			return nil, fmt.Errorf("create side table %d: %w", k, err)
		}
		q := make(chan sidePart, 64)
		s.queues = append(s.queues, q)
		go s.write(ctx, k, q)
	}
	return s, nil
}

// store copies the records' text into the side tables and returns when every
// part is committed.
func (s *sideText) store(ctx context.Context, recs []*auditv1.Record) error {
	parts := make([][]*auditv1.Record, len(s.queues))
	for _, r := range recs {
		h := fnv.New32a()
		_, _ = h.Write([]byte(r.GetRequestId()))
		k := int(h.Sum32() % uint32(len(s.queues)))
		parts[k] = append(parts[k], r)
	}
	var dones []chan error
	for k, rows := range parts {
		if len(rows) == 0 {
			continue
		}
		d := make(chan error, 1)
		select {
		case s.queues[k] <- sidePart{rows: rows, done: d}:
		case <-ctx.Done():
			return ctx.Err()
		}
		dones = append(dones, d)
	}
	for _, d := range dones {
		if err := <-d; err != nil {
			return err
		}
	}
	return nil
}

// write is side table k's writer: it takes every part queued, writes them in
// one transaction and answers each.
func (s *sideText) write(ctx context.Context, k int, q chan sidePart) {
	for {
		var parts []sidePart
		select {
		case p := <-q:
			parts = append(parts, p)
		case <-ctx.Done():
			return
		}
	more:
		for {
			select {
			case p := <-q:
				parts = append(parts, p)
			default:
				break more
			}
		}
		err := s.insert(ctx, k, parts)
		for _, p := range parts {
			p.done <- err
		}
	}
}

func (s *sideText) insert(ctx context.Context, k int, parts []sidePart) error {
	var rows []*auditv1.Record
	for _, p := range parts {
		rows = append(rows, p.rows...)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for len(rows) > 0 {
		n := min(len(rows), sideRowsPerStatement)
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO audit_texts_%d (request_id, prompt_text, response_text) VALUES ", k)
		args := make([]any, 0, 3*n)
		for i, r := range rows[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?)")
			args = append(args, r.GetRequestId(), r.GetPromptText(), r.GetResponseText())
		}
		b.WriteString(" ON DUPLICATE KEY UPDATE request_id = request_id")
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("side table %d: %w", k, err)
		}
		rows = rows[n:]
	}
	return tx.Commit()
}
