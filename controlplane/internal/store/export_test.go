package store

import (
	"context"

	"github.com/mindrouter/mindrouter/ent"
)

// SetTextScanRows sets the cap of a MariaDB text search's recent-first scan,
// so that a test reaches the FULLTEXT step with a few rows.
func SetTextScanRows(s *Store, n int) { s.textScanRows = n }

// ClassifySearchError is searchErr for a query whose own deadline is the caller's.
func ClassifySearchError(ctx context.Context, err error) error { return searchErr(ctx, ctx, err) }

// FailCommit makes the commit of ctx's audited call fail with err, as a
// database refusing it would: the transaction rolls back instead. ctx's call
// must have begun its transaction (made a store call).
func FailCommit(ctx context.Context, err error) {
	auditedFrom(ctx).tx.OnCommit(func(ent.Committer) ent.Committer {
		return ent.CommitFunc(func(_ context.Context, tx *ent.Tx) error {
			_ = tx.Rollback()
			return err
		})
	})
}
