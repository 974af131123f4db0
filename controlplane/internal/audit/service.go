package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
)

// Reader is what the admin API needs of the database.
type Reader interface {
	GetAuditRecord(ctx context.Context, requestID string) (store.AuditRecord, error)
	GetArtifacts(ctx context.Context, hashes []string, withData bool) ([]store.Artifact, error)
	SearchAuditRecords(ctx context.Context, f store.AuditFilter, cursor string, limit int) ([]store.AuditRecord, string, error)
	ExportAuditRecords(ctx context.Context, f store.AuditFilter, withContent bool, fn func(store.AuditRecord) error) error
	SearchAdminActions(ctx context.Context, f store.AdminActionFilter, cursor string, limit int) ([]store.AdminAction, string, error)
	RecordAdminAction(ctx context.Context, a store.AdminAction) error
}

// Service serves AuditService.
type Service struct {
	auditv1.UnimplementedAuditServiceServer
	db        Reader
	retention *Retention
	log       *slog.Logger
}

// NewService returns the admin API over db; retention runs PurgeAuditRecords.
func NewService(db Reader, retention *Retention, log *slog.Logger) *Service {
	return &Service{db: db, retention: retention, log: log}
}

// recordRead writes the admin action of a read of audit content; the content
// is returned only when the read could be recorded.
func (s *Service) recordRead(ctx context.Context, action, entityType, entityID, detail string) error {
	a, _ := store.ActorFromContext(ctx)
	return s.db.RecordAdminAction(ctx, store.AdminAction{ActorUserID: a.UserID, Actor: a.Username, ClientIP: a.ClientIP,
		Action: action, EntityType: entityType, EntityID: entityID, Detail: detail})
}

// GetAuditRecord returns one record in full and records the read.
func (s *Service) GetAuditRecord(ctx context.Context, req *auditv1.GetAuditRecordRequest) (*auditv1.GetAuditRecordResponse, error) {
	if req.GetRequestId() == "" {
		return nil, status.Error(codes.InvalidArgument, "request_id is required")
	}
	r, err := s.db.GetAuditRecord(ctx, req.GetRequestId())
	if err != nil {
		return nil, err
	}
	arts, err := s.db.GetArtifacts(ctx, r.ArtifactHashes, false)
	if err != nil {
		return nil, err
	}
	if err := s.recordRead(ctx, "audit.read_content", "audit_record", r.RequestID, ""); err != nil {
		return nil, err
	}
	out := &auditv1.GetAuditRecordResponse{Record: recordToProto(r)}
	for _, a := range arts {
		out.Artifacts = append(out.Artifacts, &auditv1.Artifact{Sha256: a.SHA256, ContentType: a.ContentType,
			SizeBytes: a.SizeBytes, Truncated: a.Truncated})
	}
	return out, nil
}

// ListAuditRecords searches records, newest first, without content.
func (s *Service) ListAuditRecords(ctx context.Context, req *auditv1.ListAuditRecordsRequest) (*auditv1.ListAuditRecordsResponse, error) {
	if req.GetLimit() < 0 || req.GetLimit() > store.MaxAuditPage {
		return nil, status.Errorf(codes.InvalidArgument, "limit must be 1 to %d", store.MaxAuditPage)
	}
	f := store.AuditFilter{UserID: req.GetUserId(), Username: req.GetUsername(), Group: req.GetGroup(), Model: req.GetModel(),
		BackendID: req.GetBackendId(), Status: req.GetStatus(), Surface: req.GetSurface(),
		Start: tsTime(req.GetStart()), End: tsTime(req.GetEnd()), Text: req.GetText()}
	rows, next, err := s.db.SearchAuditRecords(ctx, f, req.GetCursor(), int(req.GetLimit()))
	if err != nil {
		return nil, err
	}
	out := &auditv1.ListAuditRecordsResponse{NextCursor: next, Records: make([]*auditv1.Record, len(rows))}
	for i, r := range rows {
		out.Records[i] = recordToProto(r)
	}
	return out, nil
}

// ListAdminActions searches the admin-action log.
func (s *Service) ListAdminActions(ctx context.Context, req *auditv1.ListAdminActionsRequest) (*auditv1.ListAdminActionsResponse, error) {
	if req.GetLimit() < 0 || req.GetLimit() > store.MaxAuditPage {
		return nil, status.Errorf(codes.InvalidArgument, "limit must be 1 to %d", store.MaxAuditPage)
	}
	f := store.AdminActionFilter{ActorUserID: req.GetActorUserId(), Action: req.GetAction(), EntityType: req.GetEntityType(),
		EntityID: req.GetEntityId(), Start: tsTime(req.GetStart()), End: tsTime(req.GetEnd())}
	rows, next, err := s.db.SearchAdminActions(ctx, f, req.GetCursor(), int(req.GetLimit()))
	if err != nil {
		return nil, err
	}
	out := &auditv1.ListAdminActionsResponse{NextCursor: next, Actions: make([]*auditv1.AdminAction, len(rows))}
	for i, a := range rows {
		out.Actions[i] = actionToProto(a)
	}
	return out, nil
}

// exportChunk is the size an export's chunks reach before they are sent.
const exportChunk = 64 << 10

// csvHeader lists the metadata columns of a CSV export; the content columns
// follow when content is included.
var (
	csvHeader  = []string{"request_id", "created_at", "user_id", "username", "api_key_id", "group", "surface", "endpoint", "model", "backend_ids", "status", "status_code", "error", "streaming", "finish_reason", "prompt_tokens", "completion_tokens", "tokens_estimated", "queue_wait_ms", "ttft_ms", "total_ms", "client_ip", "user_agent", "replica_id"}
	csvContent = []string{"prompt_text", "response_text", "reasoning", "tool_calls_json", "request_json"}
)

// ExportAuditRecords streams the matching records as CSV or JSON Lines.
func (s *Service) ExportAuditRecords(req *auditv1.ExportAuditRecordsRequest, stream grpc.ServerStreamingServer[httpbody.HttpBody]) error {
	ctx := stream.Context()
	format := strings.ToLower(req.GetFormat())
	contentType := "text/csv; charset=utf-8"
	switch format {
	case "", "csv":
		format = "csv"
	case "jsonl", "ndjson":
		format, contentType = "jsonl", "application/x-ndjson"
	default:
		return status.Error(codes.InvalidArgument, "format must be csv or jsonl")
	}
	if req.GetIncludeContent() {
		if err := s.recordRead(ctx, "audit.export_content", "audit_record", "*", exportDetail(req)); err != nil {
			return err
		}
	}
	f := store.AuditFilter{UserID: req.GetUserId(), Username: req.GetUsername(), Group: req.GetGroup(), Model: req.GetModel(),
		BackendID: req.GetBackendId(), Status: req.GetStatus(), Surface: req.GetSurface(),
		Start: tsTime(req.GetStart()), End: tsTime(req.GetEnd()), Text: req.GetText()}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	flush := func(force bool) error {
		cw.Flush()
		if buf.Len() == 0 || (!force && buf.Len() < exportChunk) {
			return nil
		}
		err := stream.Send(&httpbody.HttpBody{ContentType: contentType, Data: bytes.Clone(buf.Bytes())})
		buf.Reset()
		return err
	}
	if format == "csv" {
		head := csvHeader
		if req.GetIncludeContent() {
			head = append(append([]string{}, csvHeader...), csvContent...)
		}
		_ = cw.Write(head)
	}
	enc := json.NewEncoder(&buf)
	err := s.db.ExportAuditRecords(ctx, f, req.GetIncludeContent(), func(r store.AuditRecord) error {
		if format == "jsonl" {
			if err := enc.Encode(exportJSON(r, req.GetIncludeContent())); err != nil {
				return err
			}
		} else if err := cw.Write(csvRow(r, req.GetIncludeContent())); err != nil {
			return err
		}
		return flush(false)
	})
	if err != nil {
		return err
	}
	if err := flush(true); err != nil {
		return err
	}
	return nil
}

func exportDetail(req *auditv1.ExportAuditRecordsRequest) string {
	b, _ := json.Marshal(map[string]any{"user_id": req.GetUserId(), "username": req.GetUsername(), "group": req.GetGroup(),
		"model": req.GetModel(), "surface": req.GetSurface(), "status": req.GetStatus(), "text": req.GetText(),
		"start": tsTime(req.GetStart()), "end": tsTime(req.GetEnd()), "format": req.GetFormat()})
	return string(b)
}

func csvRow(r store.AuditRecord, content bool) []string {
	ids := make([]string, len(r.BackendIDs))
	for i, id := range r.BackendIDs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	row := []string{r.RequestID, r.CreatedAt.Format(time.RFC3339Nano), i64(r.UserID), r.Username, i64(r.APIKeyID), r.Group,
		r.Surface, r.Endpoint, r.Model, strings.Join(ids, " "), r.Status, strconv.Itoa(r.StatusCode), r.Error,
		strconv.FormatBool(r.Streaming), r.FinishReason, i64(r.PromptTokens), i64(r.CompletionTokens),
		strconv.FormatBool(r.TokensEstimated), i64(r.QueueWaitMS), i64(r.TTFTMS), i64(r.TotalMS), r.ClientIP, r.UserAgent, r.ReplicaID}
	if content {
		row = append(row, r.PromptText, r.ResponseText, r.Reasoning, r.ToolCallsJSON, r.RequestJSON)
	}
	return row
}

// exportJSON is one JSON Lines row: the record as the admin API returns it.
func exportJSON(r store.AuditRecord, content bool) json.RawMessage {
	if !content {
		r.RequestJSON, r.PromptText, r.ResponseText, r.Reasoning, r.ToolCallsJSON = "", "", "", "", ""
	}
	b, err := protoJSON.Marshal(recordToProto(r))
	if err != nil {
		return json.RawMessage(`{}`)
	}
	return b
}

// GetAuditArtifact returns an artifact's bytes and records the read.
func (s *Service) GetAuditArtifact(ctx context.Context, req *auditv1.GetAuditArtifactRequest) (*httpbody.HttpBody, error) {
	if !isSHA256Hex(req.GetSha256()) {
		return nil, status.Error(codes.InvalidArgument, "sha256 must be 64 lower-case hex digits")
	}
	arts, err := s.db.GetArtifacts(ctx, []string{req.GetSha256()}, true)
	if err != nil {
		return nil, err
	}
	if len(arts) == 0 {
		return nil, status.Error(codes.NotFound, "no such artifact")
	}
	if arts[0].Data == nil {
		return nil, status.Error(codes.FailedPrecondition, "the artifact's bytes were not kept (larger than the cap, or purged)")
	}
	if err := s.recordRead(ctx, "audit.read_artifact", "audit_artifact", req.GetSha256(), ""); err != nil {
		return nil, err
	}
	ct := arts[0].ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	return &httpbody.HttpBody{ContentType: ct, Data: arts[0].Data}, nil
}

// PurgeAuditRecords runs one retention pass now.
func (s *Service) PurgeAuditRecords(ctx context.Context, _ *auditv1.PurgeAuditRecordsRequest) (*auditv1.PurgeAuditRecordsResponse, error) {
	if s.retention == nil {
		return nil, status.Error(codes.FailedPrecondition, "retention is not configured")
	}
	a, _ := store.ActorFromContext(ctx)
	res, err := s.retention.Purge(ctx, a)
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("purge: %w", err)
	}
	return &auditv1.PurgeAuditRecordsResponse{ContentPurged: res.Content, RecordsDeleted: res.Records, ArtifactsDeleted: res.Artifacts}, nil
}
