package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/go-sql-driver/mysql"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/auditrecord"
	"github.com/mindrouter/mindrouter/ent/predicate"
)

// ErrSearchTooBroad means a text search matches too many records for the
// database to rank them in time: the caller must narrow it (a shorter date
// range, a user, rarer words). It is the client's to fix, not an outage.
var ErrSearchTooBroad = errors.New("the text search matches too many records to answer in time; " +
	"narrow it with a shorter date range, a user or model, or rarer words")

// Bounds of a MariaDB text search (see searchTextMySQL).
const (
	// defaultTextScanRows caps the rows the recent-first scan examines.
	defaultTextScanRows = 50_000
	// textSearchTime bounds the FULLTEXT query, on the server
	// (max_statement_time) and here; under the store's own deadline, so that a
	// search too broad is told apart from a database that does not answer.
	textSearchTime = 3 * time.Second
)

// MariaDB errors that mean the query, not the server, was too big:
// 1969 max_statement_time exceeded, 1030 an engine error (error 128, "Table
// handler out of memory", is InnoDB FULLTEXT's result cache overflowing), 1038
// out of sort memory, 1041 out of memory, 1317 query interrupted.
var mysqlTooBroad = map[uint16]bool{1969: true, 1030: true, 1038: true, 1041: true, 1317: true}

// searchTextMySQL answers a text search on MariaDB in two steps, both newest
// first, and returns the ids of up to limit+1 matches in (created_at, id)
// order:
//
//  1. A recent-first scan: the other filters' index walked backwards in
//     (created_at, id) order, each row tested word by word (REGEXP on word
//     boundaries), stopped after limit+1 matches or Store.textScanRows rows
//     (LIMIT ... ROWS EXAMINED). Common words fill a page within a few
//     hundred rows; InnoDB's FULLTEXT, which has no order but relevance,
//     would have to collect every match first (a sixth of ten million rows
//     overflows its result cache).
//  2. Only when the scan stopped at its cap with the page short: the FULLTEXT
//     index, for the records older than the scan's last match, bounded by
//     textSearchTime. Words that rare select few rows, which it finds fast.
//
// A step the database refuses or cannot finish in time fails with
// ErrSearchTooBroad.
func (s *Store) searchTextMySQL(ctx context.Context, preds []predicate.AuditRecord, words []string, limit int) ([]int, error) {
	ids, ats, capped, err := s.scanText(ctx, preds, words, limit+1)
	if err != nil || len(ids) > limit || !capped {
		return ids, err
	}
	more := slices.Clone(preds)
	if n := len(ids); n > 0 {
		at, id := ats[n-1], ids[n-1]
		more = append(more, auditrecord.Or(auditrecord.CreatedAtLT(at),
			auditrecord.And(auditrecord.CreatedAt(at), auditrecord.IDLT(id))))
	}
	sel := auditSelector(append(more, fullTextPredicate(words)), limit+1-len(ids))
	query, args := sel.Query()
	rest, _, err := s.queryIDs(ctx, fmt.Sprintf("SET STATEMENT max_statement_time=%g FOR %s", textSearchTime.Seconds(), query), args, false, new(bool))
	if err != nil {
		return nil, err
	}
	return append(ids, rest...), nil
}

// auditSelector selects the ids and times of the records matching preds,
// newest first, at most limit.
func auditSelector(preds []predicate.AuditRecord, limit int) *entsql.Selector {
	t := entsql.Table(auditrecord.Table)
	sel := entsql.Dialect(dialect.MySQL).Select(t.C(auditrecord.FieldID), t.C(auditrecord.FieldCreatedAt)).From(t)
	for _, p := range preds {
		p(sel)
	}
	return sel.OrderBy(entsql.Desc(t.C(auditrecord.FieldCreatedAt)), entsql.Desc(t.C(auditrecord.FieldID))).Limit(limit)
}

// scanText is step 1 of searchTextMySQL; capped reports that it stopped at
// the cap, not at the end of the matching records.
func (s *Store) scanText(ctx context.Context, preds []predicate.AuditRecord, words []string, n int) (ids []int, ats []time.Time, capped bool, err error) {
	all := slices.Clone(preds)
	for _, w := range words {
		// Words hold letters and digits only (searchWords): nothing to
		// escape. Case follows the column's collation, as FULLTEXT's does.
		re := `\b` + w + `\b`
		all = append(all, func(sel *entsql.Selector) {
			sel.Where(entsql.ExprP("("+sel.C(auditrecord.FieldPromptText)+" REGEXP ? OR "+sel.C(auditrecord.FieldResponseText)+" REGEXP ?)", re, re))
		})
	}
	query, args := auditSelector(all, n).Query()
	ids, ats, err = s.queryIDs(ctx, fmt.Sprintf("%s ROWS EXAMINED %d", query, s.textScanRows), args, true, &capped)
	var mysqlErr *mysql.MySQLError
	if errors.As(err, &mysqlErr) && mysqlErr.Number == 1028 {
		// "Sort aborted: LIMIT ROWS EXAMINED": the optimizer sorted instead
		// of walking an index in order (a small table, an unusual mix of
		// filters) and the cap ended the sort. Nothing found counts: the
		// FULLTEXT step searches it all.
		return nil, nil, true, nil
	}
	return ids, ats, capped, err
}

// queryIDs runs a query of ids and times on one connection, bounded by
// textSearchTime, and sets *capped when the server warned that it stopped at
// LIMIT ROWS EXAMINED (1931).
func (s *Store) queryIDs(ctx context.Context, query string, args []any, warnings bool, capped *bool) (ids []int, ats []time.Time, err error) {
	qctx, cancel := context.WithTimeout(ctx, textSearchTime+time.Second)
	defer cancel()
	defer func() { err = searchErr(ctx, qctx, err) }()
	conn, err := s.db.Conn(qctx)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(qctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var (
			id int
			at time.Time
		)
		if err := rows.Scan(&id, &at); err != nil {
			_ = rows.Close()
			return nil, nil, err
		}
		ids, ats = append(ids, id), append(ats, at.UTC())
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, nil, err
	}
	if !warnings {
		return ids, ats, nil
	}
	w, err := conn.QueryContext(qctx, "SHOW WARNINGS")
	if err != nil {
		return nil, nil, err
	}
	defer w.Close()
	for w.Next() {
		var (
			level, msg string
			code       uint16
		)
		if err := w.Scan(&level, &code, &msg); err != nil {
			return nil, nil, err
		}
		*capped = *capped || code == 1931
	}
	return ids, ats, w.Err()
}

// searchErr classifies a text search's failure: the query too broad for the
// database (refused, or past its time while the caller still waits), the
// database unreachable, or other.
func searchErr(ctx, qctx context.Context, err error) error {
	var mysqlErr *mysql.MySQLError
	switch {
	case err == nil || ctx.Err() != nil:
		return err
	case errors.As(err, &mysqlErr) && mysqlTooBroad[mysqlErr.Number]:
		return fmt.Errorf("search audit records: %w (%s)", ErrSearchTooBroad, mysqlErr.Message)
	case errors.Is(err, context.DeadlineExceeded) && qctx.Err() != nil:
		// The server did not enforce max_statement_time in time, or the
		// connection was slow to come: say so as a search too broad only when
		// the server still answers.
		return fmt.Errorf("search audit records: %w", ErrSearchTooBroad)
	}
	return fmt.Errorf("search audit records: %w", unavailable(ctx, qctx, err))
}

// searchAuditTextMySQL is SearchAuditRecords' path for a text search on
// MariaDB: the ids from searchTextMySQL, then their metadata.
func (s *Store) searchAuditTextMySQL(ctx context.Context, preds []predicate.AuditRecord, words []string, limit int) ([]*ent.AuditRecord, error) {
	ids, err := s.searchTextMySQL(ctx, preds, words, limit)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	rows, err := s.c(ctx).AuditRecord.Query().Where(auditrecord.IDIn(ids...)).Select(auditMetadataFields...).All(ctx)
	if err != nil {
		return nil, dbErr("search audit records", err)
	}
	byID := make(map[int]*ent.AuditRecord, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	out := make([]*ent.AuditRecord, 0, len(ids))
	for _, id := range ids {
		if r, ok := byID[id]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}
