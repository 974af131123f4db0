package audit

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
)

// recordFromProto converts a data plane's record; replica names the sender
// when the record does not.
func recordFromProto(p *auditv1.Record, replica string) store.AuditRecord {
	created := p.GetCreatedAt().AsTime()
	if p.GetCreatedAt() == nil {
		created = time.Now().UTC()
	}
	r := store.AuditRecord{
		RequestID: p.GetRequestId(), CreatedAt: created, UserID: p.GetUserId(), Username: p.GetUsername(),
		APIKeyID: p.GetApiKeyId(), Group: p.GetGroup(), Surface: p.GetSurface(), Endpoint: p.GetEndpoint(),
		Model: p.GetModel(), BackendIDs: p.GetBackendIds(), Status: p.GetStatus(), StatusCode: int(p.GetStatusCode()),
		Error: p.GetError(), Streaming: p.GetStreaming(), RequestJSON: p.GetRequestJson(), PromptText: p.GetPromptText(),
		ResponseText: p.GetResponseText(), Reasoning: p.GetReasoning(), ToolCallsJSON: p.GetToolCallsJson(),
		FinishReason: p.GetFinishReason(), ArtifactHashes: p.GetArtifactHashes(), ContentOmitted: p.GetContentOmitted(),
		PromptTokens: p.GetPromptTokens(), CompletionTokens: p.GetCompletionTokens(), TokensEstimated: p.GetTokensEstimated(),
		QueueWaitMS: p.GetQueueWaitMs(), TTFTMS: p.GetTtftMs(), TotalMS: p.GetTotalMs(), ClientIP: p.GetClientIp(),
		UserAgent: p.GetUserAgent(), ReplicaID: p.GetReplicaId(),
	}
	if p.StructuredOutputValid != nil {
		v := p.GetStructuredOutputValid()
		r.StructuredOutputValid = &v
	}
	if r.ReplicaID == "" {
		r.ReplicaID = replica
	}
	return r
}

// recordToProto converts a stored record for the admin API.
func recordToProto(r store.AuditRecord) *auditv1.Record {
	p := &auditv1.Record{
		RequestId: r.RequestID, CreatedAt: timestamppb.New(r.CreatedAt), UserId: r.UserID, Username: r.Username,
		ApiKeyId: r.APIKeyID, Group: r.Group, Surface: r.Surface, Endpoint: r.Endpoint, Model: r.Model,
		BackendIds: r.BackendIDs, Status: r.Status, StatusCode: int32(r.StatusCode), Error: r.Error,
		Streaming: r.Streaming, RequestJson: r.RequestJSON, PromptText: r.PromptText, ResponseText: r.ResponseText,
		Reasoning: r.Reasoning, ToolCallsJson: r.ToolCallsJSON, FinishReason: r.FinishReason,
		StructuredOutputValid: r.StructuredOutputValid, ArtifactHashes: r.ArtifactHashes,
		PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, TokensEstimated: r.TokensEstimated,
		QueueWaitMs: r.QueueWaitMS, TtftMs: r.TTFTMS, TotalMs: r.TotalMS, ClientIp: r.ClientIP, UserAgent: r.UserAgent,
		ReplicaId: r.ReplicaID, ContentOmitted: r.ContentOmitted, StoredAt: timestamppb.New(r.StoredAt),
	}
	return p
}

func actionToProto(a store.AdminAction) *auditv1.AdminAction {
	return &auditv1.AdminAction{
		Id: a.ID, CreatedAt: timestamppb.New(a.CreatedAt), ActorUserId: a.ActorUserID, Actor: a.Actor, Action: a.Action,
		EntityType: a.EntityType, EntityId: a.EntityID, BeforeJson: a.BeforeJSON, AfterJson: a.AfterJSON,
		ClientIp: a.ClientIP, Detail: a.Detail,
	}
}

func tsTime(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}
