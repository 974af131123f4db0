package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
	"github.com/mindrouter/mindrouter/spool"
)

// Store is what the writer needs of the database.
type Store interface {
	InsertAuditRecords(ctx context.Context, recs []store.AuditRecord, arts []store.Artifact) error
	GetGroupByName(ctx context.Context, name string) (store.Group, error)
}

// WriterOptions configure a Writer.
type WriterOptions struct {
	// ArtifactMaxBytes caps a stored artifact; a larger one keeps its hash and
	// size but not its bytes. 0: no cap.
	ArtifactMaxBytes int64
	// ReplayInterval is how often the spool is retried while the database is away.
	ReplayInterval time.Duration
	// GroupCacheTTL is how long a group's audit settings are trusted.
	GroupCacheTTL time.Duration
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
}

// Writer stores batches: straight into the database while it answers and the
// spool is empty, to the spool otherwise, so that batches reach the database
// in the order they were acknowledged.
type Writer struct {
	db    Store
	spool *spool.Spool
	opts  WriterOptions
	log   *slog.Logger

	mu sync.Mutex // one batch at a time: order, and no race between spool and database

	groupsMu sync.Mutex
	groups   map[string]groupPolicy

	stored, spooled, replayed prometheus.Counter
	spoolBatches              prometheus.GaugeFunc
}

type groupPolicy struct {
	prompts, responses bool
	at                 time.Time
}

// NewWriter returns a writer over db and spool.
func NewWriter(db Store, spool *spool.Spool, opts WriterOptions) *Writer {
	if opts.ReplayInterval <= 0 {
		opts.ReplayInterval = time.Second
	}
	if opts.GroupCacheTTL <= 0 {
		opts.GroupCacheTTL = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{db: db, spool: spool, opts: opts, log: opts.Logger, groups: map[string]groupPolicy{}}
	w.stored = prometheus.NewCounter(prometheus.CounterOpts{Name: "mindrouter_cp_audit_records_stored_total",
		Help: "Audit records written to the database (replays of stored ones included)."})
	w.spooled = prometheus.NewCounter(prometheus.CounterOpts{Name: "mindrouter_cp_audit_batches_spooled_total",
		Help: "Audit batches written to the local spool while the database was unreachable."})
	w.replayed = prometheus.NewCounter(prometheus.CounterOpts{Name: "mindrouter_cp_audit_batches_replayed_total",
		Help: "Spooled audit batches written to the database."})
	w.spoolBatches = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mindrouter_cp_audit_spool_batches",
		Help: "Audit batches waiting in the local spool."}, func() float64 { n, _ := spool.Len(); return float64(n) })
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(w.stored, w.spooled, w.replayed, w.spoolBatches)
	}
	return w
}

// Write makes b durable: it returns nil once b is in the database or synced to
// the spool, and an error (nothing acknowledged) otherwise.
func (w *Writer) Write(ctx context.Context, b *controlplanev1.IngestRequest) error {
	if len(b.GetRecords()) == 0 && len(b.GetArtifacts()) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if n, _ := w.spool.Len(); n == 0 {
		err := w.insert(ctx, b)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrUnavailable) {
			return err
		}
		w.log.WarnContext(ctx, "database unavailable: spooling audit records", slog.Any("error", err))
	}
	data, err := proto.Marshal(b)
	if err != nil {
		return fmt.Errorf("spool audit batch: %w", err)
	}
	if err := w.spool.Append(data); err != nil {
		return err
	}
	w.spooled.Inc()
	return nil
}

// insert writes b to the database, applying each group's settings and the
// artifact cap.
func (w *Writer) insert(ctx context.Context, b *controlplanev1.IngestRequest) error {
	recs := make([]store.AuditRecord, 0, len(b.GetRecords()))
	keepArtifacts := map[string]bool{}
	for _, pr := range b.GetRecords() {
		r := recordFromProto(pr, b.GetReplicaId())
		if err := w.applyGroup(ctx, &r); err != nil {
			return err
		}
		if !r.ContentOmitted {
			for _, h := range r.ArtifactHashes {
				keepArtifacts[h] = true
			}
		} else {
			r.ArtifactHashes = nil
		}
		recs = append(recs, r)
	}
	var arts []store.Artifact
	for _, pa := range b.GetArtifacts() {
		if !keepArtifacts[pa.GetSha256()] {
			continue
		}
		a := store.Artifact{SHA256: pa.GetSha256(), ContentType: pa.GetContentType(), SizeBytes: pa.GetSizeBytes(),
			Data: pa.GetData(), Truncated: pa.GetTruncated()}
		if w.opts.ArtifactMaxBytes > 0 && int64(len(a.Data)) > w.opts.ArtifactMaxBytes {
			a.Data, a.Truncated = nil, true
		}
		arts = append(arts, a)
	}
	if err := w.db.InsertAuditRecords(ctx, recs, arts); err != nil {
		return err
	}
	w.stored.Add(float64(len(recs)))
	return nil
}

// applyGroup removes what the record's group does not keep.
func (w *Writer) applyGroup(ctx context.Context, r *store.AuditRecord) error {
	if r.Group == "" {
		return nil
	}
	w.groupsMu.Lock()
	p, ok := w.groups[r.Group]
	w.groupsMu.Unlock()
	if !ok || time.Since(p.at) > w.opts.GroupCacheTTL {
		g, err := w.db.GetGroupByName(ctx, r.Group)
		switch {
		case errors.Is(err, store.ErrNotFound):
			p = groupPolicy{prompts: true, responses: true, at: time.Now()}
		case err != nil:
			return err
		default:
			p = groupPolicy{prompts: !g.SkipAuditPrompts, responses: !g.SkipAuditResponses, at: time.Now()}
		}
		w.groupsMu.Lock()
		w.groups[r.Group] = p
		w.groupsMu.Unlock()
	}
	if !p.prompts {
		r.RequestJSON, r.PromptText, r.ArtifactHashes = "", "", nil
	}
	if !p.responses {
		r.ResponseText, r.Reasoning, r.ToolCallsJSON = "", "", ""
	}
	if !p.prompts && !p.responses {
		r.ContentOmitted = true
	}
	return nil
}

// Run replays the spool into the database, oldest batch first, until ctx ends.
func (w *Writer) Run(ctx context.Context) error {
	t := time.NewTicker(w.opts.ReplayInterval)
	defer t.Stop()
	for {
		if err := w.Replay(ctx); err != nil && ctx.Err() == nil {
			w.log.WarnContext(ctx, "audit spool replay paused", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Replay writes every spooled batch to the database in order, stopping at the
// first failure.
func (w *Writer) Replay(ctx context.Context) error {
	for {
		w.mu.Lock()
		done, err := w.replayOne(ctx)
		w.mu.Unlock()
		if err != nil || done {
			return err
		}
	}
}

func (w *Writer) replayOne(ctx context.Context) (bool, error) {
	seq, data, ok, err := w.spool.Head()
	if err != nil || !ok {
		return true, err
	}
	b := &controlplanev1.IngestRequest{}
	if err := proto.Unmarshal(data, b); err != nil {
		// A batch that cannot be read would block every later one forever.
		w.log.ErrorContext(ctx, "dropping unreadable spooled audit batch", slog.Uint64("seq", seq), slog.Any("error", err))
		return false, w.spool.Remove(seq)
	}
	if err := w.insert(ctx, b); err != nil {
		return true, err
	}
	w.replayed.Inc()
	if err := w.spool.Remove(seq); err != nil {
		return true, err
	}
	if n, _ := w.spool.Len(); n == 0 {
		w.log.InfoContext(ctx, "audit spool replayed into the database")
	}
	return false, nil
}
