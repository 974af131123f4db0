package history

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// Tier is one resolution of the history and how long it is kept. Step 0 is the raw
// samples.
type Tier struct {
	Step      time.Duration
	Retention time.Duration
}

// DefaultTiers keep raw samples for a day, 1-minute buckets for 30 days and 1-hour
// buckets for a year.
func DefaultTiers() []Tier {
	return []Tier{
		{Step: 0, Retention: 24 * time.Hour},
		{Step: time.Minute, Retention: 30 * 24 * time.Hour},
		{Step: time.Hour, Retention: 365 * 24 * time.Hour},
	}
}

// ValidateTiers checks that tiers start with the raw tier, that each step is a whole
// number of seconds and a multiple of the previous one, and that each tier is kept
// at least as long as one of its steps (and longer than the previous tier).
func ValidateTiers(tiers []Tier) error {
	if len(tiers) == 0 || tiers[0].Step != 0 {
		return fmt.Errorf("the first history tier must be the raw samples (step 0)")
	}
	for i, t := range tiers {
		if t.Retention <= 0 {
			return fmt.Errorf("history tier %d: retention must be positive", i)
		}
		if i == 0 {
			continue
		}
		prev := tiers[i-1]
		switch {
		case t.Step < time.Second || t.Step%time.Second != 0:
			return fmt.Errorf("history tier %d: step %s must be a whole number of seconds", i, t.Step)
		case prev.Step > 0 && t.Step%prev.Step != 0:
			return fmt.Errorf("history tier %d: step %s must be a multiple of the previous step %s", i, t.Step, prev.Step)
		case t.Step <= prev.Step:
			return fmt.Errorf("history tier %d: steps must grow", i)
		case t.Retention < t.Step:
			return fmt.Errorf("history tier %d: retention %s is shorter than its step %s", i, t.Retention, t.Step)
		}
	}
	return nil
}

// TierStore is what downsampling needs of the store.
type TierStore interface {
	TierPoints(ctx context.Context, step time.Duration, from, to time.Time) ([]store.MetricPoint, error)
	UpsertMetricPoints(ctx context.Context, points []store.MetricPoint) error
	DeleteMetricPointsBefore(ctx context.Context, step time.Duration, before time.Time) (int, error)
	DeleteRequestUsagesBefore(ctx context.Context, before time.Time) (int, error)
}

// Downsampler folds each tier into the next and prunes every tier past its retention.
type Downsampler struct {
	st       TierStore
	tiers    []Tier
	interval time.Duration
	// requestRetention is how long settled requests are kept (the longest tier's).
	requestRetention time.Duration
	log              *slog.Logger
	now              func() time.Time
	folded, pruned   *prometheus.CounterVec
}

// DownsamplerOptions configures a Downsampler.
type DownsamplerOptions struct {
	Tiers []Tier // default DefaultTiers
	// Interval is how often Run folds and prunes (default 1 minute).
	Interval time.Duration
	// RequestRetention is how long settled requests are kept (default the longest
	// tier's retention).
	RequestRetention time.Duration
	Logger           *slog.Logger
	Now              func() time.Time
	Registerer       prometheus.Registerer
}

// NewDownsampler returns a Downsampler; Run starts it.
func NewDownsampler(st TierStore, o DownsamplerOptions) (*Downsampler, error) {
	if o.Tiers == nil {
		o.Tiers = DefaultTiers()
	}
	if err := ValidateTiers(o.Tiers); err != nil {
		return nil, err
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.RequestRetention <= 0 {
		o.RequestRetention = o.Tiers[len(o.Tiers)-1].Retention
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &Downsampler{st: st, tiers: o.Tiers, interval: o.Interval, requestRetention: o.RequestRetention,
		log: o.Logger, now: o.Now,
		folded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_history_buckets_folded_total",
			Help: "Downsampled history buckets written, by step.",
		}, []string{"step"}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_history_rows_pruned_total",
			Help: "History rows removed past their tier's retention, by step (requests for settled requests).",
		}, []string{"step"}),
	}
	if r := o.Registerer; r != nil {
		for _, c := range []prometheus.Collector{d.folded, d.pruned} {
			if err := r.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// Run folds and prunes every Interval until ctx ends.
func (d *Downsampler) Run(ctx context.Context) error {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := d.Once(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("downsample telemetry history", slog.Any("error", err))
			}
		}
	}
}

// Once folds the recent complete buckets of every tier and prunes expired rows. A
// bucket is recomputed from its source on every pass that still sees it, so a late
// sample (or a pass that failed) is folded in next time. Only complete buckets are
// written: one whose end is past now waits.
func (d *Downsampler) Once(ctx context.Context) error {
	now := d.now().UTC()
	for i := 1; i < len(d.tiers); i++ {
		src, dst := d.tiers[i-1], d.tiers[i]
		end := now.Truncate(dst.Step)
		// Look back two buckets and two passes, so a missed pass is caught up.
		start := end.Add(-2*dst.Step - 2*d.interval).Truncate(dst.Step)
		points, err := d.st.TierPoints(ctx, src.Step, start, end)
		if err != nil {
			return err
		}
		folded := Fold(points, dst.Step)
		if err := d.st.UpsertMetricPoints(ctx, folded); err != nil {
			return err
		}
		d.folded.WithLabelValues(dst.Step.String()).Add(float64(len(folded)))
	}
	for _, t := range d.tiers {
		n, err := d.st.DeleteMetricPointsBefore(ctx, t.Step, now.Add(-t.Retention))
		if err != nil {
			return err
		}
		d.pruned.WithLabelValues(t.Step.String()).Add(float64(n))
	}
	n, err := d.st.DeleteRequestUsagesBefore(ctx, now.Add(-d.requestRetention))
	if err != nil {
		return err
	}
	d.pruned.WithLabelValues("requests").Add(float64(n))
	return nil
}

// Fold groups points into buckets of step by series and start time, merging each
// bucket's counts, sums and extremes. The result is ordered as the input's first
// appearance of each bucket.
func Fold(points []store.MetricPoint, step time.Duration) []store.MetricPoint {
	type k struct {
		key store.SeriesKey
		at  int64
	}
	idx := map[k]int{}
	var out []store.MetricPoint
	for _, p := range points {
		at := p.At.UTC().Truncate(step)
		kk := k{key: p.SeriesKey, at: at.Unix()}
		if i, ok := idx[kk]; ok {
			out[i] = Merge(out[i], p)
			continue
		}
		p.At, p.Step = at, step
		idx[kk] = len(out)
		out = append(out, p)
	}
	return out
}
