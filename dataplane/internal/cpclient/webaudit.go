package cpclient

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
)

// AuditQuery filters the audit trail; every field left empty matches all.
// Start and End bound when requests were received (End exclusive).
type AuditQuery struct {
	Username, Model, Status, Surface, Text string
	Start, End                             time.Time
}

// AuditRecord is one request of the audit trail. Content (the request, the
// answer) is empty in search results and where it was not recorded or purged.
type AuditRecord struct {
	RequestID, Username, Group, Surface, Endpoint, Model string
	Status, Error, FinishReason                          string
	StatusCode                                           int
	Streaming, TokensEstimated, ContentOmitted           bool
	CreatedAt                                            time.Time
	BackendIDs                                           []int64
	APIKeyID                                             int64
	RequestJSON, PromptText, ResponseText                string
	Reasoning, ToolCallsJSON                             string
	PromptTokens, CompletionTokens                       int64
	QueueWaitMS, TTFTMS, TotalMS                         int64
	ClientIP, UserAgent, ReplicaID                       string
	// StructuredValid is nil unless the request asked for structured output.
	StructuredValid *bool
}

// AuditArtifact describes one binary part (an image) of a request.
type AuditArtifact struct {
	SHA256, ContentType string
	SizeBytes           int64
	Truncated           bool
}

func tsOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func auditRecord(r *auditv1.Record) AuditRecord {
	out := AuditRecord{RequestID: r.GetRequestId(), Username: r.GetUsername(), Group: r.GetGroup(), Surface: r.GetSurface(),
		Endpoint: r.GetEndpoint(), Model: r.GetModel(), Status: r.GetStatus(), Error: r.GetError(), FinishReason: r.GetFinishReason(),
		StatusCode: int(r.GetStatusCode()), Streaming: r.GetStreaming(), TokensEstimated: r.GetTokensEstimated(),
		ContentOmitted: r.GetContentOmitted(), CreatedAt: ts(r.GetCreatedAt()), BackendIDs: r.GetBackendIds(), APIKeyID: r.GetApiKeyId(),
		RequestJSON: r.GetRequestJson(), PromptText: r.GetPromptText(), ResponseText: r.GetResponseText(), Reasoning: r.GetReasoning(),
		ToolCallsJSON: r.GetToolCallsJson(), PromptTokens: r.GetPromptTokens(), CompletionTokens: r.GetCompletionTokens(),
		QueueWaitMS: r.GetQueueWaitMs(), TTFTMS: r.GetTtftMs(), TotalMS: r.GetTotalMs(), ClientIP: r.GetClientIp(),
		UserAgent: r.GetUserAgent(), ReplicaID: r.GetReplicaId()}
	if r.StructuredOutputValid != nil {
		v := r.GetStructuredOutputValid()
		out.StructuredValid = &v
	}
	return out
}

// AuditRecords returns one page (at most limit) of the requests q matches,
// newest first, and the cursor of the next page ("" on the last).
func (w *Web) AuditRecords(ctx context.Context, c Caller, q AuditQuery, cursor string, limit int) ([]AuditRecord, string, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.audit.ListAuditRecords(ctx, &auditv1.ListAuditRecordsRequest{Username: q.Username, Model: q.Model, Status: q.Status,
		Surface: q.Surface, Text: q.Text, Start: tsOrNil(q.Start), End: tsOrNil(q.End), Cursor: cursor, Limit: int32(limit)})
	if err != nil {
		return nil, "", webError(err)
	}
	out := make([]AuditRecord, len(r.GetRecords()))
	for i, rec := range r.GetRecords() {
		out[i] = auditRecord(rec)
	}
	return out, r.GetNextCursor(), nil
}

// AuditRecord returns one request in full; the control plane records the
// read as an admin action before it answers.
func (w *Web) AuditRecord(ctx context.Context, c Caller, requestID string) (AuditRecord, []AuditArtifact, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.audit.GetAuditRecord(ctx, &auditv1.GetAuditRecordRequest{RequestId: requestID})
	if err != nil {
		return AuditRecord{}, nil, webError(err)
	}
	arts := make([]AuditArtifact, len(r.GetArtifacts()))
	for i, a := range r.GetArtifacts() {
		arts[i] = AuditArtifact{SHA256: a.GetSha256(), ContentType: a.GetContentType(), SizeBytes: a.GetSizeBytes(), Truncated: a.GetTruncated()}
	}
	return auditRecord(r.GetRecord()), arts, nil
}

// AdminActionQuery filters the admin-action log: Action is exact
// (group.update) or a prefix ending in a dot (group.).
type AdminActionQuery struct {
	Action, EntityType, EntityID string
	Start, End                   time.Time
}

// AdminAction is one change made through the admin API, or one read of
// audit content.
type AdminAction struct {
	ID                    int64
	CreatedAt             time.Time
	Actor, Action         string
	EntityType, EntityID  string
	BeforeJSON, AfterJSON string
	ClientIP, Detail      string
}

// AdminActions returns one page of the admin-action log, newest first, and
// the next page's cursor.
func (w *Web) AdminActions(ctx context.Context, c Caller, q AdminActionQuery, cursor string, limit int) ([]AdminAction, string, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.audit.ListAdminActions(ctx, &auditv1.ListAdminActionsRequest{Action: q.Action, EntityType: q.EntityType,
		EntityId: q.EntityID, Start: tsOrNil(q.Start), End: tsOrNil(q.End), Cursor: cursor, Limit: int32(limit)})
	if err != nil {
		return nil, "", webError(err)
	}
	out := make([]AdminAction, len(r.GetActions()))
	for i, a := range r.GetActions() {
		out[i] = AdminAction{ID: a.GetId(), CreatedAt: ts(a.GetCreatedAt()), Actor: a.GetActor(), Action: a.GetAction(),
			EntityType: a.GetEntityType(), EntityID: a.GetEntityId(), BeforeJSON: a.GetBeforeJson(), AfterJSON: a.GetAfterJson(),
			ClientIP: a.GetClientIp(), Detail: a.GetDetail()}
	}
	return out, r.GetNextCursor(), nil
}

// ExportAudit streams the requests q matches as CSV or JSON Lines (format
// "csv" or "jsonl"), with their content when content is set (the control
// plane records that export). start is called once with the content type
// before the first byte is written; an error before it leaves w untouched.
// The export is bounded by ctx alone, not by the client's call timeout: a
// large trail takes as long as it takes.
func (w *Web) ExportAudit(ctx context.Context, c Caller, q AuditQuery, format string, content bool, start func(contentType string), out io.Writer) error {
	ctx, cancel := context.WithCancel(withCaller(ctx, c))
	defer cancel()
	stream, err := w.audit.ExportAuditRecords(ctx, &auditv1.ExportAuditRecordsRequest{Username: q.Username, Model: q.Model,
		Status: q.Status, Surface: q.Surface, Text: q.Text, Start: tsOrNil(q.Start), End: tsOrNil(q.End),
		Format: format, IncludeContent: content})
	if err != nil {
		return webError(err)
	}
	started := false
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if !started {
				start(contentTypeOf(format))
			}
			return nil
		}
		if err != nil {
			return webError(err)
		}
		if !started {
			start(chunk.GetContentType())
			started = true
		}
		if _, err := out.Write(chunk.GetData()); err != nil {
			return err
		}
	}
}

func contentTypeOf(format string) string {
	if format == "jsonl" {
		return "application/x-ndjson"
	}
	return "text/csv; charset=utf-8"
}
