package history

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// Sink is what the writer needs of the store (*store.Store provides it).
type Sink interface {
	UpsertMetricPoints(ctx context.Context, points []store.MetricPoint) error
	InsertRequestUsages(ctx context.Context, us []store.RequestUsage) error
}

// WriterOptions configures a Writer. Zero values select the defaults.
type WriterOptions struct {
	// QueueSize bounds the batches waiting for the database (default 4096); a
	// batch offered to a full queue is dropped and counted.
	QueueSize int
	// FlushInterval is the longest a point waits in the writer (default 1 s).
	FlushInterval time.Duration
	// BatchSize flushes early once this many points are pending (default 2000).
	BatchSize int
	// WriteTimeout bounds one flush (default 30 s).
	WriteTimeout time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
	Registerer   prometheus.Registerer
}

func (o WriterOptions) withDefaults() WriterOptions {
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 2000
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// item is one offer to the queue: points of a node sample, or one settled request.
type item struct {
	points  []store.MetricPoint
	request *store.RequestUsage
}

// Writer batches history writes off the ingest paths. Offer methods never block; Run
// drains the queue until its context ends, then flushes what it holds.
type Writer struct {
	sink  Sink
	opts  WriterOptions
	queue chan item

	dropped  *prometheus.CounterVec
	written  *prometheus.CounterVec
	failures prometheus.Counter
}

// NewWriter returns a Writer over sink; call Run to start it.
func NewWriter(sink Sink, opts WriterOptions) (*Writer, error) {
	opts = opts.withDefaults()
	w := &Writer{
		sink:  sink,
		opts:  opts,
		queue: make(chan item, opts.QueueSize),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_history_dropped_total",
			Help: "History writes dropped because the writer's queue was full, by kind (points, requests).",
		}, []string{"kind"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_history_written_total",
			Help: "History rows written to the database, by kind (points, requests).",
		}, []string{"kind"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_history_write_failures_total",
			Help: "History flushes the database refused; their rows are lost.",
		}),
	}
	if r := opts.Registerer; r != nil {
		depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mindrouter_history_queue_depth",
			Help: "History batches waiting for the writer.",
		}, func() float64 { return float64(len(w.queue)) })
		for _, c := range []prometheus.Collector{w.dropped, w.written, w.failures, depth} {
			if err := r.Register(c); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range []string{"points", "requests"} {
		w.dropped.WithLabelValues(k)
		w.written.WithLabelValues(k)
	}
	return w, nil
}

// OfferPoints queues points and reports whether they were accepted.
func (w *Writer) OfferPoints(points []store.MetricPoint) bool {
	if len(points) == 0 {
		return true
	}
	select {
	case w.queue <- item{points: points}:
		return true
	default:
		w.dropped.WithLabelValues("points").Add(float64(len(points)))
		return false
	}
}

// OfferRequest queues a settled request (and its backend metrics) and reports
// whether it was accepted.
func (w *Writer) OfferRequest(u store.RequestUsage) bool {
	select {
	case w.queue <- item{request: &u}:
		return true
	default:
		w.dropped.WithLabelValues("requests").Inc()
		return false
	}
}

// Run writes batches until ctx ends, then flushes what is queued and returns.
func (w *Writer) Run(ctx context.Context) error {
	// A flush under way when ctx ends finishes (bounded by WriteTimeout): what
	// it took from the batch would otherwise be lost at every stop.
	wctx := context.WithoutCancel(ctx)
	b := newBatch()
	tick := time.NewTicker(w.opts.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			for drained := false; !drained; {
				select {
				case it := <-w.queue:
					b.add(it)
				default:
					drained = true
				}
			}
			w.flush(wctx, b, time.Time{})
			return nil
		case it := <-w.queue:
			b.add(it)
			if b.size() >= w.opts.BatchSize {
				w.flush(wctx, b, w.opts.Now())
			}
		case <-tick.C:
			w.flush(wctx, b, w.opts.Now())
		}
	}
}

// flush writes what b holds; backend aggregates of the second that now is in stay
// (a zero now flushes them all), so a later batch cannot overwrite a bucket.
func (w *Writer) flush(ctx context.Context, b *batch, now time.Time) {
	points, requests := b.take(now)
	if len(points) == 0 && len(requests) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.WriteTimeout)
	defer cancel()
	if len(points) > 0 {
		if err := w.sink.UpsertMetricPoints(ctx, points); err != nil {
			w.failures.Inc()
			w.opts.Logger.Warn("write telemetry history", slog.Int("points", len(points)), slog.Any("error", err))
		} else {
			w.written.WithLabelValues("points").Add(float64(len(points)))
		}
	}
	if len(requests) > 0 {
		if err := w.sink.InsertRequestUsages(ctx, requests); err != nil {
			w.failures.Inc()
			w.opts.Logger.Warn("write request usage", slog.Int("requests", len(requests)), slog.Any("error", err))
		} else {
			w.written.WithLabelValues("requests").Add(float64(len(requests)))
		}
	}
}

// batch is what the writer holds between flushes. Request metrics are folded per
// backend, metric and second, so that many releases in one second make one point.
type batch struct {
	points   []store.MetricPoint
	requests []store.RequestUsage
	agg      map[aggKey]store.MetricPoint
}

type aggKey struct {
	key store.SeriesKey
	sec int64
}

func newBatch() *batch { return &batch{agg: map[aggKey]store.MetricPoint{}} }

func (b *batch) size() int { return len(b.points) + len(b.requests) + len(b.agg) }

func (b *batch) add(it item) {
	b.points = append(b.points, it.points...)
	if u := it.request; u != nil {
		b.requests = append(b.requests, *u)
		for _, p := range RequestPoints(*u) {
			k := aggKey{key: p.SeriesKey, sec: p.At.Unix()}
			if have, ok := b.agg[k]; ok {
				p = Merge(have, p)
			}
			b.agg[k] = p
		}
	}
}

// take empties b but for the aggregates of the second now is in.
func (b *batch) take(now time.Time) ([]store.MetricPoint, []store.RequestUsage) {
	points, requests := b.points, b.requests
	b.points, b.requests = nil, nil
	for k, p := range b.agg {
		if now.IsZero() || k.sec < now.Unix() {
			points = append(points, p)
			delete(b.agg, k)
		}
	}
	return points, requests
}

// RequestPoints are the backend series points of one settled request, at the second
// it ended.
func RequestPoints(u store.RequestUsage) []store.MetricPoint {
	at := u.EndedAt.UTC().Truncate(time.Second)
	key := func(m string) store.SeriesKey {
		return store.SeriesKey{Scope: store.ScopeBackend, BackendID: u.BackendID, Metric: m}
	}
	return []store.MetricPoint{
		store.Sample(key(BackendRequests), at, 1),
		store.Sample(key(BackendPromptTokens), at, float64(u.PromptTokens)),
		store.Sample(key(BackendCompletionTokens), at, float64(u.CompletionTokens)),
		store.Sample(key(BackendTTFT), at, u.FirstTokenAt.Sub(u.StartedAt).Seconds()),
		store.Sample(key(BackendQueueWait), at, u.QueueWait.Seconds()),
	}
}

// Merge folds b into a (same series): counts and sums add, extremes widen.
func Merge(a, b store.MetricPoint) store.MetricPoint {
	a.Count += b.Count
	a.Sum += b.Sum
	a.Min = min(a.Min, b.Min)
	a.Max = max(a.Max, b.Max)
	return a
}
