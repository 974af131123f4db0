package store

import (
	"context"
	"time"

	"github.com/mindrouter/mindrouter/ent/auditartifact"
	"github.com/mindrouter/mindrouter/ent/auditrecord"
)

// PurgeAuditContent removes the content (request, prompt, response, reasoning,
// tool calls) of up to batch records received before cutoff, oldest first,
// keeping their metadata, and returns how many it purged. Each call is one
// short statement pair, so that retention never holds long locks.
func (s *Store) PurgeAuditContent(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	ids, err := s.client.AuditRecord.Query().
		Where(auditrecord.CreatedAtLT(cutoff.UTC()), auditrecord.ContentOmitted(false)).
		Order(auditrecord.ByID()).Limit(batch).IDs(ctx)
	if err != nil || len(ids) == 0 {
		return 0, dbErr("purge audit content", err)
	}
	n, err := s.client.AuditRecord.Update().Where(auditrecord.IDIn(ids...)).
		ClearRequestJSON().ClearPromptText().ClearResponseText().ClearReasoning().ClearToolCallsJSON().
		SetContentOmitted(true).SetContentPurgedAt(time.Now().UTC()).Save(ctx)
	return n, dbErr("purge audit content", err)
}

// PurgeAuditRecords deletes up to batch records received before cutoff, oldest
// first, and returns how many it deleted.
func (s *Store) PurgeAuditRecords(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	ids, err := s.client.AuditRecord.Query().Where(auditrecord.CreatedAtLT(cutoff.UTC())).
		Order(auditrecord.ByID()).Limit(batch).IDs(ctx)
	if err != nil || len(ids) == 0 {
		return 0, dbErr("purge audit records", err)
	}
	n, err := s.client.AuditRecord.Delete().Where(auditrecord.IDIn(ids...)).Exec(ctx)
	return n, dbErr("purge audit records", err)
}

// PurgeAuditArtifacts deletes up to batch artifacts no record has referred to
// since cutoff.
func (s *Store) PurgeAuditArtifacts(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	ids, err := s.client.AuditArtifact.Query().Where(auditartifact.LastSeenAtLT(cutoff.UTC())).
		Order(auditartifact.ByID()).Limit(batch).IDs(ctx)
	if err != nil || len(ids) == 0 {
		return 0, dbErr("purge audit artifacts", err)
	}
	n, err := s.client.AuditArtifact.Delete().Where(auditartifact.IDIn(ids...)).Exec(ctx)
	return n, dbErr("purge audit artifacts", err)
}
