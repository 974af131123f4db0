package history_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/history"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// sample is a two-GPU node sample whose GPU 0 draws watts and GPU 1 twice that.
func sample(watts uint32, cpuMW uint64) *nodeagentv1.NodeSample {
	s := &nodeagentv1.NodeSample{Gpus: []*nodeagentv1.GPUSample{
		{Index: 0, PowerDrawMilliwatts: watts * 1000, UtilizationGpuPercent: 50, TemperatureC: 60, ClockSmMhz: 1980, MemoryUsedBytes: 1 << 30},
		{Index: 1, PowerDrawMilliwatts: 2 * watts * 1000, UtilizationGpuPercent: 100, TemperatureC: 70},
	}}
	if cpuMW > 0 {
		s.HostPower = &nodeagentv1.HostPower{CpuMilliwatts: cpuMW, Source: "rapl"}
	}
	return s
}

func TestHistoryOnRealStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := t.Context()
		reg := prometheus.NewRegistry()
		w, err := history.NewWriter(st, history.WriterOptions{Registerer: reg, Now: func() time.Time { return t0.Add(time.Hour) }})
		require.NoError(t, err)

		// Three minutes of samples every 10 s: GPU 0 draws 100 W in the first
		// minute, 200 W in the second, 300 W in the third.
		for i := range 18 {
			at := t0.Add(time.Duration(i) * 10 * time.Second)
			watts := uint32(100 * (1 + i/6))
			require.True(t, w.OfferPoints(history.NodePoints(7, at, sample(watts, 50_000))))
		}
		// Two requests ending in the same second on backend 3, one later.
		for i, end := range []time.Duration{30*time.Second + 100*time.Millisecond, 30*time.Second + 900*time.Millisecond, 90 * time.Second} {
			require.True(t, w.OfferRequest(store.RequestUsage{
				RequestID: "r" + string(rune('a'+i)), BackendID: 3, Model: "m", UserID: 1, Username: "u", Group: "g",
				StartedAt: t0, FirstTokenAt: t0.Add(time.Second), EndedAt: t0.Add(end),
				QueueWait: time.Duration(i+1) * 100 * time.Millisecond, PromptTokens: 10, CompletionTokens: int64(20 * (i + 1)),
			}))
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(runCtx) }()
		cancel()
		require.NoError(t, <-done)
		assert.InDelta(t, 18*(2*7+2)+10, metricValue(t, reg, "mindrouter_history_written_total", "points"), 0)
		assert.InDelta(t, 3, metricValue(t, reg, "mindrouter_history_written_total", "requests"), 0)

		raw, err := st.MetricPoints(ctx, store.PointQuery{SeriesKey: store.SeriesKey{Scope: store.ScopeGPU, NodeID: 7, Metric: history.GPUPower}, From: t0, To: t0.Add(time.Hour)})
		require.NoError(t, err)
		require.Len(t, raw, 18)
		assert.InDelta(t, 100, raw[0].Sum, 1e-9)
		assert.Equal(t, t0, raw[0].At)

		reqs, err := st.MetricPoints(ctx, store.PointQuery{SeriesKey: store.SeriesKey{Scope: store.ScopeBackend, BackendID: 3, Metric: history.BackendCompletionTokens}, From: t0, To: t0.Add(time.Hour)})
		require.NoError(t, err)
		require.Len(t, reqs, 2, "the two releases of one second fold into one point")
		assert.Equal(t, int64(2), reqs[0].Count)
		assert.InDelta(t, 60, reqs[0].Sum, 1e-9)
		assert.InDelta(t, 20, reqs[0].Min, 1e-9)
		assert.InDelta(t, 40, reqs[0].Max, 1e-9)

		// Downsample at 10:03:30: three complete 1-minute buckets, no hour yet.
		clock := t0.Add(3*time.Minute + 30*time.Second)
		d, err := history.NewDownsampler(st, history.DownsamplerOptions{Now: func() time.Time { return clock }, Registerer: reg})
		require.NoError(t, err)
		require.NoError(t, d.Once(ctx))
		minute, err := st.MetricPoints(ctx, store.PointQuery{SeriesKey: store.SeriesKey{Scope: store.ScopeGPU, NodeID: 7, GPUIndex: 1, Metric: history.GPUPower}, Step: time.Minute, From: t0, To: t0.Add(time.Hour)})
		require.NoError(t, err)
		require.Len(t, minute, 3)
		for i, p := range minute {
			assert.Equal(t, t0.Add(time.Duration(i)*time.Minute), p.At)
			assert.Equal(t, int64(6), p.Count)
			assert.InDelta(t, float64(200*(i+1)), p.Mean(), 1e-9, "GPU 1 draws twice GPU 0")
		}
		cpu, err := st.MetricPoints(ctx, store.PointQuery{SeriesKey: store.SeriesKey{Scope: store.ScopeNode, NodeID: 7, Metric: history.NodeCPUPower}, Step: time.Minute, From: t0, To: t0.Add(time.Hour)})
		require.NoError(t, err)
		require.Len(t, cpu, 3)
		assert.InDelta(t, 50, cpu[0].Mean(), 1e-9)
		// A second pass over the same buckets rewrites them, it does not double them.
		require.NoError(t, d.Once(ctx))
		again, err := st.MetricPoints(ctx, store.PointQuery{SeriesKey: store.SeriesKey{Scope: store.ScopeGPU, NodeID: 7, GPUIndex: 1, Metric: history.GPUPower}, Step: time.Minute, From: t0, To: t0.Add(time.Hour)})
		require.NoError(t, err)
		assert.Equal(t, minute, again)

		// At 11:00:30 the 10:00 hour is complete.
		clock = t0.Add(time.Hour + 30*time.Second)
		require.NoError(t, d.Once(ctx))
		hour, err := st.MetricPoints(ctx, store.PointQuery{SeriesKey: store.SeriesKey{Scope: store.ScopeNode, NodeID: 7, Metric: history.NodeGPUPower}, Step: time.Hour, From: t0, To: t0.Add(2 * time.Hour)})
		require.NoError(t, err)
		require.Len(t, hour, 1)
		assert.Equal(t, int64(18), hour[0].Count)
		assert.InDelta(t, 600, hour[0].Mean(), 1e-9, "mean of 300, 600, 900 W")
		assert.InDelta(t, 300, hour[0].Min, 1e-9)
		assert.InDelta(t, 900, hour[0].Max, 1e-9)

		// Two days on the raw samples are gone, the buckets stay.
		clock = t0.Add(48 * time.Hour)
		require.NoError(t, d.Once(ctx))
		raw, err = st.MetricPoints(ctx, store.PointQuery{SeriesKey: store.SeriesKey{Scope: store.ScopeGPU, NodeID: 7, Metric: history.GPUPower}, From: t0, To: t0.Add(time.Hour)})
		require.NoError(t, err)
		assert.Empty(t, raw)
		minute, err = st.MetricPoints(ctx, store.PointQuery{SeriesKey: store.SeriesKey{Scope: store.ScopeGPU, NodeID: 7, GPUIndex: 1, Metric: history.GPUPower}, Step: time.Minute, From: t0, To: t0.Add(time.Hour)})
		require.NoError(t, err)
		assert.Len(t, minute, 3)
		assert.Positive(t, metricValue(t, reg, "mindrouter_history_rows_pruned_total", "0s"))
	})
}

// metricValue is the value of the counter name{label} in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%q}", name, label)
	return 0
}

// blockingSink never answers until released, so the writer's queue fills.
type blockingSink struct{ release chan struct{} }

func (b blockingSink) UpsertMetricPoints(ctx context.Context, _ []store.MetricPoint) error {
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil
}

func (b blockingSink) InsertRequestUsages(context.Context, []store.RequestUsage) error { return nil }

func TestWriterDropsWhenQueueFull(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	w, err := history.NewWriter(blockingSink{release: make(chan struct{})}, history.WriterOptions{QueueSize: 2, Registerer: reg})
	require.NoError(t, err)
	pts := history.NodePoints(1, t0, sample(100, 0))
	require.True(t, w.OfferPoints(pts))
	require.True(t, w.OfferRequest(store.RequestUsage{RequestID: "a"}))
	assert.False(t, w.OfferPoints(pts), "a full queue refuses at once")
	assert.False(t, w.OfferRequest(store.RequestUsage{RequestID: "b"}))
	assert.InDelta(t, float64(len(pts)), metricValue(t, reg, "mindrouter_history_dropped_total", "points"), 0)
	assert.InDelta(t, 1, metricValue(t, reg, "mindrouter_history_dropped_total", "requests"), 0)
}

// stopMidFlushSink holds the first request write until the writer's context has
// ended, then reports the write's own context error.
type stopMidFlushSink struct {
	entered chan struct{}
	resume  chan struct{}
	written chan []store.RequestUsage
}

func (s stopMidFlushSink) UpsertMetricPoints(context.Context, []store.MetricPoint) error { return nil }

func (s stopMidFlushSink) InsertRequestUsages(ctx context.Context, us []store.RequestUsage) error {
	s.entered <- struct{}{}
	<-s.resume
	if err := ctx.Err(); err != nil {
		return err
	}
	s.written <- us
	return nil
}

// TestWriterStopDuringFlushKeepsTheBatch: a stop that lands while a flush writes
// lets that write finish; the rows it took are not lost.
func TestWriterStopDuringFlushKeepsTheBatch(t *testing.T) {
	t.Parallel()
	sink := stopMidFlushSink{entered: make(chan struct{}, 1), resume: make(chan struct{}), written: make(chan []store.RequestUsage, 4)}
	w, err := history.NewWriter(sink, history.WriterOptions{FlushInterval: time.Millisecond, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	require.True(t, w.OfferRequest(store.RequestUsage{RequestID: "last"}))
	<-sink.entered
	cancel()
	close(sink.resume)
	require.NoError(t, <-done)
	require.Len(t, sink.written, 1, "the write under way when the writer stopped is kept")
	got := <-sink.written
	require.Len(t, got, 1)
	assert.Equal(t, "last", got[0].RequestID)
}

func TestValidateTiers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tiers []history.Tier
		ok    bool
	}{
		{"default", history.DefaultTiers(), true},
		{"raw only", []history.Tier{{Retention: time.Hour}}, true},
		{"empty", nil, false},
		{"no raw first", []history.Tier{{Step: time.Minute, Retention: time.Hour}}, false},
		{"not a multiple", []history.Tier{{Retention: time.Hour}, {Step: time.Minute, Retention: time.Hour}, {Step: 90 * time.Second, Retention: time.Hour}}, false},
		{"sub-second", []history.Tier{{Retention: time.Hour}, {Step: time.Millisecond, Retention: time.Hour}}, false},
		{"retention shorter than step", []history.Tier{{Retention: time.Hour}, {Step: time.Hour, Retention: time.Minute}}, false},
		{"zero retention", []history.Tier{{}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := history.ValidateTiers(tc.tiers)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestFold(t *testing.T) {
	t.Parallel()
	k := store.SeriesKey{Scope: store.ScopeGPU, Metric: history.GPUPower}
	k2 := k
	k2.GPUIndex = 1
	in := []store.MetricPoint{
		store.Sample(k, t0.Add(5*time.Second), 10),
		store.Sample(k2, t0.Add(6*time.Second), 7),
		store.Sample(k, t0.Add(59*time.Second), 30),
		store.Sample(k, t0.Add(60*time.Second), 5),
	}
	out := history.Fold(in, time.Minute)
	require.Len(t, out, 3)
	assert.Equal(t, store.MetricPoint{SeriesKey: k, Step: time.Minute, At: t0, Count: 2, Sum: 40, Min: 10, Max: 30}, out[0])
	assert.Equal(t, store.MetricPoint{SeriesKey: k2, Step: time.Minute, At: t0, Count: 1, Sum: 7, Min: 7, Max: 7}, out[1])
	assert.Equal(t, t0.Add(time.Minute), out[2].At)
}

func TestStoreRefusesBadHistory(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := t.Context()
		ok := store.Sample(store.SeriesKey{Scope: store.ScopeGPU, Metric: history.GPUPower}, t0, 1)
		for name, p := range map[string]store.MetricPoint{
			"scope":   store.Sample(store.SeriesKey{Scope: "rack", Metric: "x"}, t0, 1),
			"metric":  store.Sample(store.SeriesKey{Scope: store.ScopeGPU}, t0, 1),
			"count":   {SeriesKey: ok.SeriesKey, At: t0},
			"no time": store.Sample(ok.SeriesKey, time.Time{}, 1),
			"step":    {SeriesKey: ok.SeriesKey, At: t0, Count: 1, Step: 1500 * time.Millisecond},
		} {
			assert.ErrorIs(t, st.UpsertMetricPoints(ctx, []store.MetricPoint{ok, p}), store.ErrInvalid, name)
		}
		_, err := st.MetricPoints(ctx, store.PointQuery{})
		assert.ErrorIs(t, err, store.ErrInvalid)
		good := store.RequestUsage{RequestID: "r", BackendID: 1, StartedAt: t0, FirstTokenAt: t0, EndedAt: t0.Add(time.Second)}
		backwards := good
		backwards.EndedAt = t0.Add(-time.Second)
		negative := good
		negative.PromptTokens = -1
		for _, u := range []store.RequestUsage{{}, backwards, negative} {
			assert.ErrorIs(t, st.InsertRequestUsages(ctx, []store.RequestUsage{good, u}), store.ErrInvalid)
		}
		// Nothing of a refused batch was written.
		got, err := st.RequestUsagesEnded(ctx, t0.Add(-time.Hour), t0.Add(time.Hour))
		require.NoError(t, err)
		assert.Empty(t, got)
		pts, err := st.MetricPoints(ctx, store.PointQuery{SeriesKey: ok.SeriesKey, From: t0.Add(-time.Hour), To: t0.Add(time.Hour)})
		require.NoError(t, err)
		assert.Empty(t, pts)
	})
}

// TestLoopsStopWithTheirContext runs the downsampler on a short interval until it has
// folded something, then cancels it.
func TestLoopsStopWithTheirContext(t *testing.T) {
	t.Parallel()
	st := storetest.SQLite(t)
	now := time.Now().UTC()
	key := store.SeriesKey{Scope: store.ScopeNode, NodeID: 1, Metric: history.NodeCPUPower}
	require.NoError(t, st.UpsertMetricPoints(t.Context(), []store.MetricPoint{store.Sample(key, now.Add(-2*time.Minute), 10)}))
	d, err := history.NewDownsampler(st, history.DownsamplerOptions{Interval: 10 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	require.Eventually(t, func() bool {
		pts, err := st.MetricPoints(t.Context(), store.PointQuery{SeriesKey: key, Step: time.Minute, From: now.Add(-time.Hour), To: now.Add(time.Hour)})
		return err == nil && len(pts) == 1
	}, 30*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("downsampler did not stop")
	}
}
