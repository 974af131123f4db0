package energy

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/controlplane/internal/history"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// Store is what the attribution needs of the store (*store.Store provides it).
type Store interface {
	UnattributedRequestUsages(ctx context.Context, before time.Time, limit int) ([]store.RequestUsage, error)
	RequestUsagesOverlapping(ctx context.Context, backendID int64, from, to time.Time) ([]store.RequestUsage, error)
	MetricPoints(ctx context.Context, q store.PointQuery) ([]store.MetricPoint, error)
	SetRequestEnergy(ctx context.Context, id int64, joules float64) error
	ListBackends(ctx context.Context) ([]store.Backend, error)
}

// AttributorOptions configures an Attributor. Zero values select the defaults.
type AttributorOptions struct {
	Weights Weights // default DefaultWeights
	// SettleDelay is how long after a request ends its energy is attributed
	// (default 10 minutes): every request that shared its GPUs must have ended
	// and been recorded by then, or its tokens are missing from the shares.
	SettleDelay time.Duration
	// TraceWait is how long past SettleDelay a request on a node waits for the
	// node's power samples to reach its end (default 10 minutes). A trace that
	// stops before the request ended has not arrived yet (the agent samples every
	// few seconds, the history writer batches): attributed then, the request's
	// interval would be missing and it would get 0 J for good. Past the wait it is
	// attributed with what the trace holds (an agent that went away leaves a gap).
	// Waiting requests keep their places in a pass's batch (oldest first): with
	// more than Batch of them, newer requests of other nodes wait as long.
	TraceWait time.Duration
	// Interval is how often Run attributes (default 1 minute).
	Interval time.Duration
	// Batch bounds the requests attributed per pass (default 1000).
	Batch int
	// Pad widens the power trace read around the requests (default 2 minutes,
	// more than a sample interval), so the intervals at their edges are whole.
	Pad        time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
	Registerer prometheus.Registerer
}

// Attributor writes each settled request's GPU energy.
type Attributor struct {
	st         Store
	o          AttributorOptions
	attributed prometheus.Counter
	joules     prometheus.Counter
	unmeasured prometheus.Counter
	awaiting   prometheus.Gauge
}

// NewAttributor returns an Attributor over st; Run starts it.
func NewAttributor(st Store, o AttributorOptions) (*Attributor, error) {
	if o.Weights == (Weights{}) {
		o.Weights = DefaultWeights()
	}
	if o.SettleDelay <= 0 {
		o.SettleDelay = 10 * time.Minute
	}
	if o.TraceWait <= 0 {
		o.TraceWait = 10 * time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.Pad <= 0 {
		o.Pad = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Attributor{st: st, o: o,
		attributed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_energy_requests_attributed_total",
			Help: "Settled requests whose GPU energy was attributed.",
		}),
		joules: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_energy_attributed_joules_total",
			Help: "GPU energy attributed to requests.",
		}),
		unmeasured: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_energy_requests_unmeasured_total",
			Help: "Settled requests on a backend with no GPU power history (recorded with 0 J).",
		}),
		awaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mindrouter_energy_requests_awaiting_power",
			Help: "Settled requests left for a later pass in the last one: their node's power samples do not reach their end yet.",
		}),
	}
	if r := o.Registerer; r != nil {
		for _, c := range []prometheus.Collector{a.attributed, a.joules, a.unmeasured, a.awaiting} {
			if err := r.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

// Run attributes every Interval until ctx ends.
func (a *Attributor) Run(ctx context.Context) error {
	t := time.NewTicker(a.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := a.Once(ctx); err != nil && ctx.Err() == nil {
				a.o.Logger.Warn("attribute request energy", slog.Any("error", err))
			}
		}
	}
}

// Once attributes one batch of settled requests and returns how many it wrote.
// A request whose node's power samples do not reach its end yet is left for a
// later pass, until TraceWait has passed too.
func (a *Attributor) Once(ctx context.Context) (int, error) {
	now := a.o.Now()
	pending, err := a.st.UnattributedRequestUsages(ctx, now.Add(-a.o.SettleDelay), a.o.Batch)
	if err != nil || len(pending) == 0 {
		a.awaiting.Set(0)
		return 0, err
	}
	backends, err := a.st.ListBackends(ctx)
	if err != nil {
		return 0, err
	}
	byID := make(map[int64]store.Backend, len(backends))
	for _, b := range backends {
		byID[b.ID] = b
	}
	byNode := map[int64][]store.RequestUsage{}
	for _, r := range pending {
		byNode[byID[r.BackendID].NodeID] = append(byNode[byID[r.BackendID].NodeID], r)
	}
	waitUntil := now.Add(-a.o.SettleDelay - a.o.TraceWait) // requests that ended before it wait no longer
	written, awaiting := 0, 0
	for node, reqs := range byNode {
		joules := map[int64]float64{}
		if node != 0 {
			var reached time.Time
			if joules, reached, err = a.node(ctx, node, reqs, byID); err != nil {
				return written, err
			}
			ready := reqs[:0:0]
			for _, r := range reqs {
				if r.EndedAt.After(reached) && !r.EndedAt.Before(waitUntil) {
					awaiting++
					continue
				}
				ready = append(ready, r)
			}
			reqs = ready
		}
		for _, r := range reqs {
			j, ok := joules[r.ID]
			if !ok {
				a.unmeasured.Inc()
			}
			if err := a.st.SetRequestEnergy(ctx, r.ID, j); err != nil {
				return written, err
			}
			written++
			a.attributed.Inc()
			a.joules.Add(j)
		}
	}
	a.awaiting.Set(float64(awaiting))
	if awaiting > 0 {
		a.o.Logger.Debug("requests wait for their node's power samples", slog.Int("requests", awaiting))
	}
	return written, nil
}

// node attributes the GPU energy of one node around reqs and returns the time its
// power trace reaches (zero without one). A request absent from the result had
// no power trace.
func (a *Attributor) node(ctx context.Context, node int64, reqs []store.RequestUsage, backends map[int64]store.Backend) (map[int64]float64, time.Time, error) {
	from, to := reqs[0].StartedAt, reqs[0].EndedAt
	for _, r := range reqs {
		if r.StartedAt.Before(from) {
			from = r.StartedAt
		}
		if r.EndedAt.After(to) {
			to = r.EndedAt
		}
	}
	traces, err := a.traces(ctx, node, from.Add(-a.o.Pad), to.Add(a.o.Pad))
	if err != nil || len(traces) == 0 {
		return nil, time.Time{}, err
	}
	// Every request that shared the traces' span shares their energy.
	spanFrom, spanTo, reached := to, from, time.Time{}
	for _, tr := range traces {
		spanFrom = minTime(spanFrom, tr[0].At)
		spanTo = maxTime(spanTo, tr[len(tr)-1].At)
		reached = maxTime(reached, tr[len(tr)-1].At)
	}
	all, err := a.st.RequestUsagesOverlapping(ctx, 0, spanFrom, spanTo)
	if err != nil {
		return nil, time.Time{}, err
	}
	out := map[int64]float64{}
	for gpu, trace := range traces {
		var on []Request
		for _, r := range all {
			b, ok := backends[r.BackendID]
			if !ok || b.NodeID != node || len(b.GPUIndices) > 0 && !slices.Contains(b.GPUIndices, gpu) {
				continue
			}
			on = append(on, RequestOf(r))
		}
		res := Attribute(trace, on, a.o.Weights)
		for id, j := range res.Joules {
			out[id] += j
		}
	}
	// The node was measured: a request without a share processed nothing there.
	for _, r := range reqs {
		if _, ok := out[r.ID]; !ok {
			out[r.ID] = 0
		}
	}
	return out, reached, nil
}

// traces reads the power of every GPU of node in [from, to]: the raw samples, or
// the 1-minute means (at each bucket's middle) where the raw ones are pruned.
func (a *Attributor) traces(ctx context.Context, node int64, from, to time.Time) (map[int][]PowerSample, error) {
	out := map[int][]PowerSample{}
	for _, step := range []time.Duration{0, time.Minute} {
		pts, err := a.st.MetricPoints(ctx, store.PointQuery{
			SeriesKey: store.SeriesKey{Scope: store.ScopeGPU, NodeID: node, Metric: history.GPUPower},
			AnyGPU:    true, Step: step, From: from.Add(-step), To: to.Add(time.Nanosecond),
		})
		if err != nil {
			return nil, err
		}
		for _, p := range pts {
			if _, done := out[p.GPUIndex]; done && step > 0 {
				continue
			}
			out[p.GPUIndex] = append(out[p.GPUIndex], PowerSample{At: p.At.Add(step / 2), Watts: p.Mean()})
		}
		if len(out) > 0 {
			break
		}
	}
	for g, tr := range out {
		if len(tr) < 2 {
			delete(out, g)
		}
	}
	return out, nil
}

// RequestOf is a stored request as the attribution sees it.
func RequestOf(r store.RequestUsage) Request {
	return Request{ID: r.ID, Start: r.StartedAt, FirstToken: r.FirstTokenAt, End: r.EndedAt,
		PromptTokens: r.PromptTokens, Completion: r.CompletionTokens}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
