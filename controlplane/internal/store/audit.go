package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/auditartifact"
	"github.com/mindrouter/mindrouter/ent/auditrecord"
	"github.com/mindrouter/mindrouter/ent/predicate"
)

// AuditRecord is one inference request as a data plane answered it. The
// content fields (RequestJSON to ToolCallsJSON) are empty when ContentOmitted.
type AuditRecord struct {
	ID                    int64
	RequestID             string
	CreatedAt             time.Time
	UserID                int64
	Username              string
	APIKeyID              int64
	Group                 string
	Surface               string
	Endpoint              string
	Model                 string
	BackendIDs            []int64
	Status                string
	StatusCode            int
	Error                 string
	Streaming             bool
	RequestJSON           string
	PromptText            string
	ResponseText          string
	Reasoning             string
	ToolCallsJSON         string
	FinishReason          string
	StructuredOutputValid *bool
	ArtifactHashes        []string
	ContentOmitted        bool
	PromptTokens          int64
	CompletionTokens      int64
	TokensEstimated       bool
	QueueWaitMS           int64
	TTFTMS                int64
	TotalMS               int64
	ClientIP              string
	UserAgent             string
	ReplicaID             string
	StoredAt              time.Time
}

// Artifact is a binary part of a request stored once by its SHA-256; Data is nil
// when it was larger than the cap (Truncated) or is not loaded.
type Artifact struct {
	SHA256      string
	ContentType string
	SizeBytes   int64
	Data        []byte
	Truncated   bool
}

// InsertAuditRecords stores records and the artifacts they refer to in one
// transaction. A record whose request id is already stored is skipped, and an
// artifact already stored only has its last-seen time renewed, so inserting the
// same batch again changes nothing.
func (s *Store) InsertAuditRecords(ctx context.Context, recs []AuditRecord, arts []Artifact) error {
	now := time.Now().UTC()
	d := auditSQLite
	if s.driver == dialectMySQL {
		d = auditMySQL
	}
	return s.withTx(ctx, func(tx *ent.Tx) error {
		return insertAudit(ctx, tx, d, recs, arts, now)
	})
}

// clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// AuditFilter selects records; zero fields match everything.
type AuditFilter struct {
	UserID    int64
	Username  string
	Group     string
	Model     string
	BackendID int64
	Status    string
	Surface   string
	// Start (inclusive) and End (exclusive) bound CreatedAt.
	Start, End time.Time
	// Text holds words that must all occur in the prompt or the response.
	Text string
}

// MaxAuditPage is the largest page SearchAuditRecords returns.
const MaxAuditPage = 1000

// auditMetadataFields are the columns a search returns (no content).
var auditMetadataFields = []string{
	auditrecord.FieldID, auditrecord.FieldRequestID, auditrecord.FieldCreatedAt, auditrecord.FieldUserID,
	auditrecord.FieldUsername, auditrecord.FieldAPIKeyID, auditrecord.FieldGroupName, auditrecord.FieldSurface,
	auditrecord.FieldEndpoint, auditrecord.FieldModel, auditrecord.FieldBackendID, auditrecord.FieldBackendIds,
	auditrecord.FieldStatus, auditrecord.FieldStatusCode, auditrecord.FieldError, auditrecord.FieldStreaming,
	auditrecord.FieldFinishReason, auditrecord.FieldStructuredOutputValid, auditrecord.FieldArtifactHashes,
	auditrecord.FieldContentOmitted, auditrecord.FieldPromptTokens, auditrecord.FieldCompletionTokens,
	auditrecord.FieldTokensEstimated, auditrecord.FieldQueueWaitMs, auditrecord.FieldTtftMs, auditrecord.FieldTotalMs,
	auditrecord.FieldClientIP, auditrecord.FieldUserAgent, auditrecord.FieldReplicaID, auditrecord.FieldStoredAt,
}

// SearchAuditRecords returns up to limit records matching f, newest first (by
// the time the request arrived, then by row id), without their content, and
// the cursor of the next page ("" after the last). Paging is stable: no record
// appears twice or is skipped, and records of requests newer than the first
// page never shift later pages (a record that arrives late, replayed from a
// spool with an older time, shows where its time puts it). Ordering by
// (created_at, id) lets every filter's (column, created_at) index deliver the
// page in order: ordered by id alone, MariaDB walked the primary key backwards
// through a date range (7 s for one day of a million rows).
func (s *Store) SearchAuditRecords(ctx context.Context, f AuditFilter, cursor string, limit int) ([]AuditRecord, string, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxAuditPage)
	after, err := decodeSearchCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	// On MariaDB a text search takes a path of its own (searchTextMySQL).
	textMySQL := s.driver == dialectMySQL && strings.TrimSpace(f.Text) != ""
	var words []string
	if textMySQL {
		if words = searchWords(f.Text); len(words) == 0 {
			return nil, "", invalid("search audit records", "text has no words")
		}
		f.Text = ""
	}
	preds, err := s.auditPredicates(f)
	if err != nil {
		return nil, "", err
	}
	if after.id > 0 {
		preds = append(preds, auditrecord.Or(auditrecord.CreatedAtLT(after.at),
			auditrecord.And(auditrecord.CreatedAt(after.at), auditrecord.IDLT(int(after.id)))))
	}
	var rows []*ent.AuditRecord
	if textMySQL {
		rows, err = s.searchAuditTextMySQL(ctx, preds, words, limit)
	} else {
		rows, err = s.client.AuditRecord.Query().Where(preds...).
			Order(ent.Desc(auditrecord.FieldCreatedAt), ent.Desc(auditrecord.FieldID)).Limit(limit + 1).
			Select(auditMetadataFields...).All(ctx)
		err = dbErr("search audit records", err)
	}
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		next = encodeSearchCursor(searchCursor{at: last.CreatedAt, id: int64(last.ID)})
	}
	out := make([]AuditRecord, len(rows))
	for i, r := range rows {
		out[i] = toAuditRecord(r)
	}
	return out, next, nil
}

// searchCursor is the last record of a page: its time and row id.
type searchCursor struct {
	at time.Time
	id int64
}

func encodeSearchCursor(c searchCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.at.UnixNano(), 10) + "." + strconv.FormatInt(c.id, 10)))
}

func decodeSearchCursor(c string) (searchCursor, error) {
	if c == "" {
		return searchCursor{}, nil
	}
	malformed := invalid("search", "malformed cursor")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return searchCursor{}, malformed
	}
	at, id, ok := strings.Cut(string(b), ".")
	ns, err1 := strconv.ParseInt(at, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if !ok || err1 != nil || err2 != nil || n <= 0 {
		return searchCursor{}, malformed
	}
	return searchCursor{at: time.Unix(0, ns).UTC(), id: n}, nil
}

// ExportAuditRecords calls fn for every record matching f, oldest first, a page
// at a time (memory stays constant), with content when withContent.
func (s *Store) ExportAuditRecords(ctx context.Context, f AuditFilter, withContent bool, fn func(AuditRecord) error) error {
	preds, err := s.auditPredicates(f)
	if err != nil {
		return err
	}
	const page = 500
	last := 0
	for {
		q := s.client.AuditRecord.Query().Where(append(preds, auditrecord.IDGT(last))...).
			Order(ent.Asc(auditrecord.FieldID)).Limit(page)
		if !withContent {
			q.Select(auditMetadataFields...)
		}
		rows, err := q.All(ctx)
		if err != nil {
			return dbErr("export audit records", err)
		}
		for _, r := range rows {
			if err := fn(toAuditRecord(r)); err != nil {
				return err
			}
			last = r.ID
		}
		if len(rows) < page {
			return nil
		}
	}
}

// GetAuditRecord returns one record with its content.
func (s *Store) GetAuditRecord(ctx context.Context, requestID string) (AuditRecord, error) {
	r, err := s.client.AuditRecord.Query().Where(auditrecord.RequestID(requestID)).Only(ctx)
	if err != nil {
		return AuditRecord{}, dbErr("get audit record", err)
	}
	return toAuditRecord(r), nil
}

// CountAuditRecords counts the records matching f.
func (s *Store) CountAuditRecords(ctx context.Context, f AuditFilter) (int, error) {
	preds, err := s.auditPredicates(f)
	if err != nil {
		return 0, err
	}
	n, err := s.client.AuditRecord.Query().Where(preds...).Count(ctx)
	return n, dbErr("count audit records", err)
}

// GetArtifacts returns the artifacts with the given hashes, with their bytes
// when withData. Unknown hashes are left out.
func (s *Store) GetArtifacts(ctx context.Context, hashes []string, withData bool) ([]Artifact, error) {
	if len(hashes) == 0 {
		return nil, nil
	}
	q := s.client.AuditArtifact.Query().Where(auditartifact.Sha256In(hashes...)).Order(ent.Asc(auditartifact.FieldSha256))
	if !withData {
		q.Select(auditartifact.FieldSha256, auditartifact.FieldContentType, auditartifact.FieldSizeBytes, auditartifact.FieldTruncated)
	}
	rows, err := q.All(ctx)
	if err != nil {
		return nil, dbErr("get artifacts", err)
	}
	out := make([]Artifact, len(rows))
	for i, a := range rows {
		out[i] = Artifact{SHA256: a.Sha256, ContentType: a.ContentType, SizeBytes: a.SizeBytes, Truncated: a.Truncated}
		if a.Data != nil {
			out[i].Data = *a.Data
		}
	}
	return out, nil
}

func (s *Store) auditPredicates(f AuditFilter) ([]predicate.AuditRecord, error) {
	var p []predicate.AuditRecord
	if f.UserID != 0 {
		p = append(p, auditrecord.UserID(f.UserID))
	}
	if f.Username != "" {
		p = append(p, auditrecord.Username(f.Username))
	}
	if f.Group != "" {
		p = append(p, auditrecord.GroupName(f.Group))
	}
	if f.Model != "" {
		p = append(p, auditrecord.Model(f.Model))
	}
	if f.BackendID != 0 {
		p = append(p, auditrecord.BackendID(f.BackendID))
	}
	if f.Status != "" {
		p = append(p, auditrecord.Status(f.Status))
	}
	if f.Surface != "" {
		p = append(p, auditrecord.Surface(f.Surface))
	}
	if !f.Start.IsZero() {
		p = append(p, auditrecord.CreatedAtGTE(f.Start.UTC()))
	}
	if !f.End.IsZero() {
		p = append(p, auditrecord.CreatedAtLT(f.End.UTC()))
	}
	if strings.TrimSpace(f.Text) != "" {
		tp, err := s.textPredicate(f.Text)
		if err != nil {
			return nil, err
		}
		p = append(p, tp)
	}
	return p, nil
}

// maxSearchWords bounds a text query.
const maxSearchWords = 16

// searchWords splits a text query into words of letters and digits; every
// other character separates words, so no query can reach the full-text
// engines' own syntax.
func searchWords(text string) []string {
	words := strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) > maxSearchWords {
		words = words[:maxSearchWords]
	}
	return words
}

// textPredicate matches records whose prompt or response holds every word: an
// FTS5 query on SQLite, a boolean-mode MATCH on MariaDB's FULLTEXT index.
func (s *Store) textPredicate(text string) (predicate.AuditRecord, error) {
	words := searchWords(text)
	if len(words) == 0 {
		return nil, invalid("search audit records", "text has no words")
	}
	var q strings.Builder
	for i, w := range words {
		if i > 0 {
			q.WriteByte(' ')
		}
		q.WriteString(`"` + w + `"`)
	}
	query := q.String()
	if s.driver == dialectMySQL {
		return fullTextPredicate(words), nil
	}
	return func(sel *entsql.Selector) {
		sel.Where(entsql.ExprP(sel.C(auditrecord.FieldID)+" IN (SELECT rowid FROM audit_records_fts WHERE audit_records_fts MATCH ?)", query))
	}, nil
}

// fullTextPredicate matches records whose prompt or response holds every
// word, by a boolean-mode MATCH on MariaDB's FULLTEXT index.
func fullTextPredicate(words []string) predicate.AuditRecord {
	var q strings.Builder
	for i, w := range words {
		if i > 0 {
			q.WriteByte(' ')
		}
		q.WriteString(`+"` + w + `"`)
	}
	query := q.String()
	return func(sel *entsql.Selector) {
		sel.Where(entsql.ExprP("MATCH("+sel.C(auditrecord.FieldPromptText)+", "+sel.C(auditrecord.FieldResponseText)+") AGAINST (? IN BOOLEAN MODE)", query))
	}
}

func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(id, 10)))
}

func decodeCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		var id int64
		if id, err = strconv.ParseInt(string(b), 10, 64); err == nil && id > 0 {
			return id, nil
		}
	}
	return 0, invalid("search", "malformed cursor")
}

func toAuditRecord(r *ent.AuditRecord) AuditRecord {
	return AuditRecord{
		ID: int64(r.ID), RequestID: r.RequestID, CreatedAt: utc(r.CreatedAt), UserID: r.UserID, Username: r.Username,
		APIKeyID: r.APIKeyID, Group: r.GroupName, Surface: r.Surface, Endpoint: r.Endpoint, Model: r.Model,
		BackendIDs: r.BackendIds, Status: r.Status, StatusCode: r.StatusCode, Error: r.Error, Streaming: r.Streaming,
		RequestJSON: deref(r.RequestJSON), PromptText: deref(r.PromptText), ResponseText: deref(r.ResponseText),
		Reasoning: deref(r.Reasoning), ToolCallsJSON: deref(r.ToolCallsJSON), FinishReason: r.FinishReason,
		StructuredOutputValid: r.StructuredOutputValid, ArtifactHashes: r.ArtifactHashes, ContentOmitted: r.ContentOmitted,
		PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, TokensEstimated: r.TokensEstimated,
		QueueWaitMS: r.QueueWaitMs, TTFTMS: r.TtftMs, TotalMS: r.TotalMs, ClientIP: r.ClientIP, UserAgent: r.UserAgent,
		ReplicaID: r.ReplicaID, StoredAt: utc(r.StoredAt),
	}
}

// auditFTSDefinition is the SQLite full-text table over the records' prompt
// and response, kept in step by triggers. detail=none: the index holds, for
// each word, the rows it occurs in and nothing else (no columns, no
// positions). A search asks only for rows holding every word (each word a
// one-token phrase), which is all that detail=none answers; it saves 15–35 %
// of an audit record's insert CPU on SQLite, more for longer answers
// (docs/benchmarks.md, "What bounds it").
const auditFTSDefinition = `CREATE VIRTUAL TABLE audit_records_fts USING fts5(prompt_text, response_text, content='audit_records', content_rowid='id', detail=none)`

// createFullText adds what ent's migration cannot express: a FULLTEXT index on
// MariaDB, an FTS5 table kept in step by triggers on SQLite. A SQLite database
// whose FTS5 table has another definition (an earlier release's detail=full)
// gets the current one, rebuilt from the records.
func (s *Store) createFullText(ctx context.Context) error {
	if s.driver == dialectMySQL {
		_, err := s.db.ExecContext(ctx, "CREATE FULLTEXT INDEX IF NOT EXISTS audit_records_text ON audit_records (prompt_text, response_text)")
		if err != nil {
			return fmt.Errorf("full-text index: %w", err)
		}
		return nil
	}
	var current string
	err := s.db.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'audit_records_fts'").Scan(&current)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		current = ""
	case err != nil:
		return fmt.Errorf("full-text index: %w", err)
	}
	stmts := []string{
		`CREATE TRIGGER IF NOT EXISTS audit_records_fts_ai AFTER INSERT ON audit_records BEGIN
			INSERT INTO audit_records_fts(rowid, prompt_text, response_text) VALUES (new.id, new.prompt_text, new.response_text); END`,
		`CREATE TRIGGER IF NOT EXISTS audit_records_fts_ad AFTER DELETE ON audit_records BEGIN
			INSERT INTO audit_records_fts(audit_records_fts, rowid, prompt_text, response_text) VALUES ('delete', old.id, old.prompt_text, old.response_text); END`,
		`CREATE TRIGGER IF NOT EXISTS audit_records_fts_au AFTER UPDATE OF prompt_text, response_text ON audit_records BEGIN
			INSERT INTO audit_records_fts(audit_records_fts, rowid, prompt_text, response_text) VALUES ('delete', old.id, old.prompt_text, old.response_text);
			INSERT INTO audit_records_fts(rowid, prompt_text, response_text) VALUES (new.id, new.prompt_text, new.response_text); END`,
	}
	rebuild := current != "" && current != auditFTSDefinition
	if current == "" || rebuild {
		stmts = append([]string{"DROP TABLE IF EXISTS audit_records_fts", auditFTSDefinition}, stmts...)
	}
	if rebuild {
		stmts = append(stmts, "INSERT INTO audit_records_fts(audit_records_fts) VALUES ('rebuild')")
	}
	start := time.Now()
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("full-text index: %w", err)
	}
	if rebuild {
		s.log.InfoContext(ctx, "audit full-text index rebuilt with the current definition", slog.Duration("took", time.Since(start)))
	}
	return nil
}
