package store

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/auditartifact"
	"github.com/mindrouter/mindrouter/ent/auditrecord"
)

// The ingest path writes multi-row INSERT statements of its own instead of
// ent's bulk builders: up to auditMySQLRows rows (auditSQLiteRows on SQLite,
// whose statements take at most 32,766 parameters) or about auditMySQLBytes
// of values per statement (well under MariaDB's default max_allowed_packet of
// 16 MiB), and a conflict clause on the unique request id (ON DUPLICATE KEY
// UPDATE on MariaDB, ON CONFLICT DO NOTHING on SQLite), so that a replayed
// record costs one index probe and no read before the write. The statement's
// row count, not ent, sets the round trips: a group of 4,096 records is five
// statements instead of twenty-one on MariaDB. On SQLite the gain is the
// builders' and RETURNING's CPU (the control plane runs the database itself).
const (
	auditMySQLRows  = 1000
	auditSQLiteRows = 500
	auditMySQLBytes = 4 << 20
)

// auditDialect is what differs between the two databases' ingest statements.
type auditDialect struct {
	rows    int
	artTail string
	recTail string
}

var (
	auditMySQL = auditDialect{rows: auditMySQLRows,
		artTail: " ON DUPLICATE KEY UPDATE last_seen_at = VALUES(last_seen_at)",
		// request_id = request_id: a stored record stays as it was, without the
		// warnings (and the swallowed data errors) of INSERT IGNORE.
		recTail: " ON DUPLICATE KEY UPDATE request_id = request_id"}
	auditSQLite = auditDialect{rows: auditSQLiteRows,
		artTail: " ON CONFLICT(sha256) DO UPDATE SET last_seen_at = excluded.last_seen_at",
		recTail: " ON CONFLICT(request_id) DO NOTHING"}
)

// auditRecordColumns are the columns the ingest path writes, in the order
// auditRecordArgs gives their values: the metadata a search returns (less the
// row id), then the content.
var auditRecordColumns = append(slices.Clone(auditMetadataFields[1:]),
	auditrecord.FieldRequestJSON, auditrecord.FieldPromptText, auditrecord.FieldResponseText,
	auditrecord.FieldReasoning, auditrecord.FieldToolCallsJSON)

// insertAudit writes artifacts, then records, in tx with d's statements.
func insertAudit(ctx context.Context, tx *ent.Tx, d auditDialect, recs []AuditRecord, arts []Artifact, now time.Time) error {
	for _, a := range arts {
		if err := auditartifact.Sha256Validator(a.SHA256); err != nil {
			return invalid("insert audit artifacts", "sha256 %q: %v", a.SHA256, err)
		}
		if err := auditartifact.ContentTypeValidator(a.ContentType); err != nil {
			return invalid("insert audit artifacts", "content type: %v", err)
		}
	}
	for i := range recs {
		if err := auditrecord.RequestIDValidator(recs[i].RequestID); err != nil {
			return invalid("insert audit records", "request id %q: %v", recs[i].RequestID, err)
		}
	}
	artHead := "INSERT INTO audit_artifacts (sha256, content_type, size_bytes, data, truncated, created_at, last_seen_at) VALUES "
	err := insertChunks(ctx, tx, d.rows, artHead, d.artTail, "(?,?,?,?,?,?,?)", len(arts), func(i int) ([]any, int) {
		a := &arts[i]
		var data any
		if a.Data != nil {
			data = a.Data
		}
		return []any{a.SHA256, a.ContentType, a.SizeBytes, data, a.Truncated, now, now}, len(a.Data) + 256
	})
	if err != nil {
		return dbErr("insert audit artifacts", err)
	}
	recHead := "INSERT INTO audit_records (" + strings.Join(auditRecordColumns, ", ") + ") VALUES "
	row := "(" + strings.Repeat("?,", len(auditRecordColumns)-1) + "?)"
	err = insertChunks(ctx, tx, d.rows, recHead, d.recTail, row, len(recs), func(i int) ([]any, int) {
		return auditRecordArgs(&recs[i], now)
	})
	return dbErr("insert audit records", err)
}

// insertChunks writes n rows in statements of up to maxRows rows and about
// auditMySQLBytes of values (at least one row each); args gives a row's
// values and their approximate size.
func insertChunks(ctx context.Context, tx *ent.Tx, maxRows int, head, tail, row string, n int, args func(i int) ([]any, int)) error {
	var (
		q    strings.Builder
		vals []any
		rows int
		size int
	)
	flush := func() error {
		if rows == 0 {
			return nil
		}
		q.WriteString(tail)
		_, err := tx.ExecContext(ctx, q.String(), vals...)
		q.Reset()
		vals, rows, size = vals[:0], 0, 0
		return err
	}
	for i := range n {
		a, sz := args(i)
		if rows > 0 && (rows == maxRows || size+sz > auditMySQLBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		if rows == 0 {
			q.WriteString(head)
		} else {
			q.WriteByte(',')
		}
		q.WriteString(row)
		vals = append(vals, a...)
		rows++
		size += sz
	}
	return flush()
}

// auditRecordArgs are r's values in auditRecordColumns' order (clipped and
// converted as auditCreate does for ent), and their approximate size.
func auditRecordArgs(r *AuditRecord, now time.Time) ([]any, int) {
	last := int64(0)
	if n := len(r.BackendIDs); n > 0 {
		last = r.BackendIDs[n-1]
	}
	backends, _ := json.Marshal(r.BackendIDs)
	hashes, _ := json.Marshal(r.ArtifactHashes)
	var valid any
	if r.StructuredOutputValid != nil {
		valid = *r.StructuredOutputValid
	}
	content := [5]any{}
	size := 512 + len(r.Error)
	if !r.ContentOmitted {
		for i, s := range []string{r.RequestJSON, r.PromptText, r.ResponseText, r.Reasoning, r.ToolCallsJSON} {
			if s != "" {
				content[i] = s
				size += len(s)
			}
		}
	}
	return []any{
		r.RequestID, r.CreatedAt.UTC(), r.UserID,
		clip(r.Username, 150), r.APIKeyID, clip(r.Group, 50), clip(r.Surface, 32),
		clip(r.Endpoint, 128), clip(r.Model, 255), last, string(backends),
		clip(r.Status, 16), r.StatusCode, r.Error, r.Streaming,
		clip(r.FinishReason, 32), valid, string(hashes),
		r.ContentOmitted, r.PromptTokens, r.CompletionTokens,
		r.TokensEstimated, r.QueueWaitMS, r.TTFTMS, r.TotalMS,
		clip(r.ClientIP, 64), clip(r.UserAgent, 512), clip(r.ReplicaID, 128), now,
		content[0], content[1], content[2], content[3], content[4],
	}, size
}
