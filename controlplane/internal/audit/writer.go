package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
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

	mu sync.Mutex // one group at a time: order, and no race between spool and database

	qmu     sync.Mutex // guards queue and writing
	queue   []*queued  // batches waiting for a group write, oldest first
	writing bool       // a caller is writing a group

	groupsMu sync.Mutex
	groups   map[string]groupPolicy

	stored, spooled, replayed prometheus.Counter
	spoolBatches              prometheus.GaugeFunc
	groupSizes                prometheus.Histogram
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
	w.groupSizes = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mindrouter_cp_audit_group_batches",
		Help:    "Batches written together in one transaction (group commit of concurrent data planes' batches).",
		Buckets: []float64{1, 2, 4, 8, 16, 32}})
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(w.stored, w.spooled, w.replayed, w.spoolBatches, w.groupSizes)
	}
	return w
}

// Write makes b durable: it returns nil once b is in the database or synced to
// the spool, and an error (nothing acknowledged) otherwise.
//
// Batches written at the same time (from several data planes) are coalesced:
// while one group is being written, the batches that arrive queue up, and the
// next group writes them all in one transaction (group commit). The caller
// whose batch heads the queue writes the group; the others wait for its
// outcome, so no goroutine outlives a call. Each batch is still acknowledged
// only once it is on disk, and order is kept: groups are written one at a
// time, oldest first.
func (w *Writer) Write(ctx context.Context, b *controlplanev1.IngestRequest) error {
	if len(b.GetRecords()) == 0 && len(b.GetArtifacts()) == 0 {
		return nil
	}
	p := &queued{b: b, done: make(chan error, 1), lead: make(chan struct{})}
	w.qmu.Lock()
	w.queue = append(w.queue, p)
	leader := !w.writing
	w.writing = true
	w.qmu.Unlock()
	if !leader {
		select {
		case err := <-p.done:
			return err
		case <-p.lead:
		}
	}
	// The write outlives a caller that gives up: the others in the group
	// wait for it (the database deadline bounds it).
	w.writeGroup(context.WithoutCancel(ctx))
	return <-p.done
}

// queued is a batch waiting for its group's write.
type queued struct {
	b    *controlplanev1.IngestRequest
	done chan error    // the outcome, sent once
	lead chan struct{} // closed when this batch's caller must write the next group
}

// maxGroupRecords bounds the records written in one transaction.
const maxGroupRecords = 4096

// writeGroup writes the batches at the head of the queue (up to
// maxGroupRecords records, at least one batch), tells each its outcome, and
// hands the writing to the caller of the next queued batch, if any.
func (w *Writer) writeGroup(ctx context.Context) {
	w.qmu.Lock()
	n, recs := 0, 0
	for n < len(w.queue) && (n == 0 || recs+len(w.queue[n].b.GetRecords()) <= maxGroupRecords) {
		recs += len(w.queue[n].b.GetRecords())
		n++
	}
	group := slices.Clone(w.queue[:n])
	w.queue = slices.Delete(w.queue, 0, n)
	w.qmu.Unlock()

	w.mu.Lock()
	errs := w.store(ctx, group)
	w.mu.Unlock()
	for i, p := range group {
		p.done <- errs[i]
	}
	w.groupSizes.Observe(float64(len(group)))

	w.qmu.Lock()
	if len(w.queue) > 0 {
		close(w.queue[0].lead)
	} else {
		w.writing = false
	}
	w.qmu.Unlock()
}

// store makes a group durable, in order: in one transaction while the database
// answers and the spool is empty, batch by batch when that transaction fails
// for another reason (so that one bad batch fails alone), to the spool while
// the database is unreachable. It returns each batch's outcome.
func (w *Writer) store(ctx context.Context, group []*queued) []error {
	errs := make([]error, len(group))
	if n, _ := w.spool.Len(); n == 0 {
		bs := make([]*controlplanev1.IngestRequest, len(group))
		for i, p := range group {
			bs[i] = p.b
		}
		err := w.insert(ctx, bs...)
		if err == nil {
			return errs
		}
		if !errors.Is(err, store.ErrUnavailable) {
			if len(group) == 1 {
				errs[0] = err
				return errs
			}
			return w.storeEach(ctx, group)
		}
		w.log.WarnContext(ctx, "database unavailable: spooling audit records", slog.Any("error", err))
	}
	for i, p := range group {
		errs[i] = w.spoolBatch(p.b)
	}
	return errs
}

// storeEach writes a group's batches one transaction each, spooling the rest
// once the database turns out unreachable.
func (w *Writer) storeEach(ctx context.Context, group []*queued) []error {
	errs := make([]error, len(group))
	spooling := false
	for i, p := range group {
		if !spooling {
			errs[i] = w.insert(ctx, p.b)
			if !errors.Is(errs[i], store.ErrUnavailable) {
				continue
			}
			spooling = true
		}
		errs[i] = w.spoolBatch(p.b)
	}
	return errs
}

func (w *Writer) spoolBatch(b *controlplanev1.IngestRequest) error {
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

// insert writes batches to the database in one transaction, applying each
// group's settings and the artifact cap.
func (w *Writer) insert(ctx context.Context, bs ...*controlplanev1.IngestRequest) error {
	var recs []store.AuditRecord
	keepArtifacts := map[string]bool{}
	for _, b := range bs {
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
	}
	var arts []store.Artifact
	seen := map[string]bool{}
	for _, pa := range artifactsOf(bs) {
		if !keepArtifacts[pa.GetSha256()] || seen[pa.GetSha256()] {
			continue
		}
		seen[pa.GetSha256()] = true
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

func artifactsOf(bs []*controlplanev1.IngestRequest) []*auditv1.Artifact {
	if len(bs) == 1 {
		return bs[0].GetArtifacts()
	}
	var out []*auditv1.Artifact
	for _, b := range bs {
		out = append(out, b.GetArtifacts()...)
	}
	return out
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
