package store_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// TestAuditFullTextUpgradeSQLite opens a database whose FTS5 table has an
// earlier release's definition (detail=full, positions kept) and holds
// records, and checks that opening it again gives the current definition
// (detail=none), rebuilt from the records: text search finds the records
// stored before the upgrade and after it, and a deleted record's words are
// gone from the index.
func TestAuditFullTextUpgradeSQLite(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	dsn := store.SQLiteDSN(filepath.Join(t.TempDir(), "upgrade.db"))
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

	s, err := store.Open(ctx, store.Config{Driver: "sqlite", DSN: dsn}, testLogger(t))
	require.NoError(t, err)
	old := auditRec(1, base)
	old.PromptText = "tell me about the wombat burrow"
	require.NoError(t, s.InsertAuditRecords(ctx, []store.AuditRecord{old}, nil))
	require.NoError(t, s.Close())

	// The earlier definition, as an earlier release created it and filled it.
	db, err := sql.Open("sqlite", dsn)
	require.NoError(t, err)
	for _, q := range []string{
		"DROP TABLE audit_records_fts",
		"CREATE VIRTUAL TABLE audit_records_fts USING fts5(prompt_text, response_text, content='audit_records', content_rowid='id')",
		"INSERT INTO audit_records_fts(audit_records_fts) VALUES ('rebuild')",
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	require.NoError(t, db.Close())

	s, err = store.Open(ctx, store.Config{Driver: "sqlite", DSN: dsn}, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	db, err = sql.Open("sqlite", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	var def string
	require.NoError(t, db.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE name = 'audit_records_fts'").Scan(&def))
	assert.True(t, strings.HasSuffix(def, "detail=none)"), "definition after the upgrade: %s", def)

	search := func(text string) []string {
		t.Helper()
		recs, _, err := s.SearchAuditRecords(ctx, store.AuditFilter{Text: text}, "", 10)
		require.NoError(t, err)
		ids := make([]string, len(recs))
		for i, r := range recs {
			ids[i] = r.RequestID
		}
		return ids
	}
	assert.Equal(t, []string{old.RequestID}, search("wombat"), "a record stored before the upgrade")

	recent := auditRec(2, base.Add(time.Minute))
	recent.ResponseText = "a wombat digs a burrow"
	require.NoError(t, s.InsertAuditRecords(ctx, []store.AuditRecord{recent}, nil))
	assert.Equal(t, []string{recent.RequestID, old.RequestID}, search("wombat burrow"))
	assert.Equal(t, []string{recent.RequestID}, search("digs wombat"))
	assert.Empty(t, search("wombat platypus"), "every word must occur")

	// The delete trigger keeps the index in step (retention deletes rows).
	_, err = db.ExecContext(ctx, "DELETE FROM audit_records WHERE request_id = ?", recent.RequestID)
	require.NoError(t, err)
	assert.Empty(t, search("digs"))
	assert.Equal(t, []string{old.RequestID}, search("wombat"))

	// Opening it again changes nothing: the definition is current.
	require.NoError(t, s.Close())
	s, err = store.Open(ctx, store.Config{Driver: "sqlite", DSN: dsn}, testLogger(t))
	require.NoError(t, err)
	assert.Equal(t, []string{old.RequestID}, search("wombat"))
}
