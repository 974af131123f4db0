package audit

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

var protoJSON = protojson.MarshalOptions{UseProtoNames: true}

// Purger is what retention needs of the database.
type Purger interface {
	PurgeAuditContent(ctx context.Context, cutoff time.Time, batch int) (int, error)
	PurgeAuditRecords(ctx context.Context, cutoff time.Time, batch int) (int, error)
	PurgeAuditArtifacts(ctx context.Context, cutoff time.Time, batch int) (int, error)
	RecordAdminAction(ctx context.Context, a store.AdminAction) error
}

// RetentionOptions are the retention settings; a zero age keeps forever.
type RetentionOptions struct {
	// Content is how long prompts, responses and artifacts are kept.
	Content time.Duration
	// Metadata is how long records are kept at all.
	Metadata time.Duration
	// Interval between automatic passes; Batch rows per statement.
	Interval time.Duration
	Batch    int
	Logger   *slog.Logger
}

// Retention purges old audit content and records in small batches.
type Retention struct {
	db   Purger
	opts RetentionOptions
}

// PurgeResult counts one pass.
type PurgeResult struct {
	Content, Records, Artifacts int64
}

// NewRetention returns retention over db.
func NewRetention(db Purger, opts RetentionOptions) *Retention {
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Retention{db: db, opts: opts}
}

// Run purges every Interval until ctx ends.
func (r *Retention) Run(ctx context.Context) error {
	if r.opts.Content <= 0 && r.opts.Metadata <= 0 {
		return nil
	}
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		if _, err := r.Purge(ctx, store.Actor{Username: "system"}); err != nil && ctx.Err() == nil {
			r.opts.Logger.WarnContext(ctx, "audit retention pass failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// artifactAge is the shorter of the two retentions set: an artifact is content,
// and one last seen before the metadata retention belongs only to records
// deleted already, even when content is otherwise kept forever.
func (r *Retention) artifactAge() time.Duration {
	switch {
	case r.opts.Content <= 0:
		return r.opts.Metadata
	case r.opts.Metadata <= 0:
		return r.opts.Content
	}
	return min(r.opts.Content, r.opts.Metadata)
}

// Purge runs one pass and, when it purged anything (or an admin asked for it),
// records it as the admin action retention.purge.
func (r *Retention) Purge(ctx context.Context, actor store.Actor) (PurgeResult, error) {
	var res PurgeResult
	now := time.Now()
	drain := func(age time.Duration, fn func(context.Context, time.Time, int) (int, error), n *int64) error {
		if age <= 0 {
			return nil
		}
		for {
			k, err := fn(ctx, now.Add(-age), r.opts.Batch)
			*n += int64(k)
			if err != nil || k < r.opts.Batch {
				return err
			}
		}
	}
	err := drain(r.opts.Content, r.db.PurgeAuditContent, &res.Content)
	if err == nil {
		err = drain(r.opts.Metadata, r.db.PurgeAuditRecords, &res.Records)
	}
	if err == nil {
		err = drain(r.artifactAge(), r.db.PurgeAuditArtifacts, &res.Artifacts)
	}
	if res == (PurgeResult{}) && actor.UserID == 0 && err == nil {
		return res, nil
	}
	detail, _ := json.Marshal(map[string]any{"content_purged": res.Content, "records_deleted": res.Records,
		"artifacts_deleted": res.Artifacts, "content_retention": r.opts.Content.String(), "metadata_retention": r.opts.Metadata.String()})
	if rerr := r.db.RecordAdminAction(ctx, store.AdminAction{ActorUserID: actor.UserID, Actor: actor.Username,
		ClientIP: actor.ClientIP, Action: "retention.purge", EntityType: "audit_record", EntityID: "*", Detail: string(detail)}); err == nil {
		err = rerr
	}
	return res, err
}
