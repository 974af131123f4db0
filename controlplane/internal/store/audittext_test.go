package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// TestAuditTextSearchMariaDB pages text searches on MariaDB through both of
// its steps (the recent-first scan alone, and with a scan cap of 5 rows the
// FULLTEXT index for the rest) and checks each finds exactly the records
// holding every word as a word, newest first, none twice. (Words are given in
// the case they are stored in: both steps follow the column's collation.)
func TestAuditTextSearchMariaDB(t *testing.T) {
	t.Parallel()
	s := openMariaStore(t)
	ctx := ctxT(t)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var recs []store.AuditRecord
	for i := range 60 {
		r := auditRec(i, base.Add(time.Duration(i/2)*time.Second)) // two records per instant
		r.UserID = int64(i%3 + 1)
		switch {
		case i%10 == 3:
			r.PromptText += " and a Quokka"
		case i == 7:
			r.ResponseText = "a platypus answer"
		case i == 8:
			r.PromptText = "zebrastripes are not zebras: quokkas neither"
		}
		recs = append(recs, r)
	}
	// Stored out of time order, as several replicas' batches are.
	require.NoError(t, s.InsertAuditRecords(ctx, recs[30:], nil))
	require.NoError(t, s.InsertAuditRecords(ctx, recs[:30], nil))

	want := func(f store.AuditFilter) []string {
		var out []string
		for i := len(recs) - 1; i >= 0; i-- { // newest first; within an instant the later row id
			r := recs[i]
			if f.UserID != 0 && r.UserID != f.UserID {
				continue
			}
			text := " " + r.PromptText + " " + r.ResponseText + " "
			ok := true
			for _, w := range strings.Fields(f.Text) {
				ok = ok && slices.ContainsFunc(strings.FieldsFunc(text, func(c rune) bool { return c == ' ' || c == ':' }),
					func(x string) bool { return x == w })
			}
			if ok {
				out = append(out, r.RequestID)
			}
		}
		return out
	}
	sortByTime := func(ids []string) {
		// Row ids follow insertion (recs[30:] first): order within an instant by row id.
		idx := map[string]int{}
		for i, r := range recs {
			idx[r.RequestID] = i
		}
		slices.SortStableFunc(ids, func(a, b string) int {
			ia, ib := idx[a], idx[b]
			if ia/2 != ib/2 {
				return ib/2 - ia/2
			}
			rowA, rowB := (ia+30)%60, (ib+30)%60 // insertion rank
			return rowB - rowA
		})
	}
	for _, scan := range []int{50_000, 5} {
		store.SetTextScanRows(s, scan)
		for _, f := range []store.AuditFilter{
			{Text: "zebras"}, {Text: "Quokka zebras"}, {Text: "platypus"}, {Text: "Quokka", UserID: 2}, {Text: "nothinglikethis"},
		} {
			t.Run(fmt.Sprintf("scan=%d/%s/user=%d", scan, f.Text, f.UserID), func(t *testing.T) {
				var got []string
				cursor := ""
				for range 20 {
					rows, next, err := s.SearchAuditRecords(ctx, f, cursor, 7)
					require.NoError(t, err)
					for _, r := range rows {
						got = append(got, r.RequestID)
						assert.Empty(t, r.PromptText, "search results carry no content")
					}
					if next == "" {
						break
					}
					require.Len(t, rows, 7, "a page with a next cursor is full")
					cursor = next
				}
				w := want(f)
				sortByTime(w)
				assert.Equal(t, w, got)
			})
		}
	}
}

// TestSearchErrorClassification: a text search the database refuses as too
// big or too slow is ErrSearchTooBroad (the client narrows it), not
// ErrUnavailable (an outage); an unreachable database stays ErrUnavailable.
func TestSearchErrorClassification(t *testing.T) {
	t.Parallel()
	db := requireMariaDB(t)
	ctx := ctxT(t)
	_, err := db.ExecContext(ctx, "SET STATEMENT max_statement_time=0.01 FOR SELECT SLEEP(2)")
	require.Error(t, err, "MariaDB ends a statement past max_statement_time")
	got := store.ClassifySearchError(ctx, err)
	require.ErrorIs(t, got, store.ErrSearchTooBroad)
	require.NotErrorIs(t, got, store.ErrUnavailable)

	oom := &mysql.MySQLError{Number: 1030, Message: `Got error 128 "Out of memory in engine" from storage engine InnoDB`}
	got = store.ClassifySearchError(ctx, fmt.Errorf("query: %w", oom))
	require.ErrorIs(t, got, store.ErrSearchTooBroad)
	require.NotErrorIs(t, got, store.ErrUnavailable)

	require.ErrorIs(t, store.ClassifySearchError(ctx, syscall.ECONNREFUSED), store.ErrUnavailable)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, store.ClassifySearchError(cancelled, context.Canceled), context.Canceled, "a caller that gave up is told so")
}
