package scoring

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// idle is a candidate with every metric known and neutral-free: idle GPUs,
// no slot in use, no latency or throughput reading.
func idle(id int64) Input {
	return Input{BackendID: id, Name: "b", GPUUtilization: 0, MaxConcurrent: 4}
}

func TestScoreComponents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Input
		want Components
	}{
		{name: "idle, nothing measured", in: idle(1),
			want: Components{GPUUtilization: 50, Latency: 20, Queue: 30, Throughput: 10}},
		{name: "model loaded", in: func() Input { c := idle(1); c.Loaded = true; return c }(),
			want: Components{Loaded: 100, GPUUtilization: 50, Latency: 20, Queue: 30, Throughput: 10}},
		{name: "GPU 40 % busy", in: func() Input { c := idle(1); c.GPUUtilization = 0.4; return c }(),
			want: Components{GPUUtilization: 30, Latency: 20, Queue: 30, Throughput: 10}},
		{name: "GPU over 100 % is clamped", in: func() Input { c := idle(1); c.GPUUtilization = 1.7; return c }(),
			want: Components{GPUUtilization: 0, Latency: 20, Queue: 30, Throughput: 10}},
		{name: "GPU unknown is neutral", in: func() Input { c := idle(1); c.GPUUtilization = -1; return c }(),
			want: Components{GPUUtilization: 25, Latency: 20, Queue: 30, Throughput: 10}},
		{name: "GPU NaN is neutral", in: func() Input { c := idle(1); c.GPUUtilization = math.NaN(); return c }(),
			want: Components{GPUUtilization: 25, Latency: 20, Queue: 30, Throughput: 10}},
		{name: "latency 5 s earns half", in: func() Input { c := idle(1); c.LatencyEMA = 5 * time.Second; return c }(),
			want: Components{GPUUtilization: 50, Latency: 20, Queue: 30, Throughput: 10}},
		{name: "latency 1 s", in: func() Input { c := idle(1); c.LatencyEMA = time.Second; return c }(),
			want: Components{GPUUtilization: 50, Latency: 40.0 / 1.2, Queue: 30, Throughput: 10}},
		{name: "half the slots in use", in: func() Input { c := idle(1); c.InFlight = 2; return c }(),
			want: Components{GPUUtilization: 50, Latency: 20, Queue: 15, Throughput: 10}},
		{name: "alone, the fastest earns all throughput", in: func() Input { c := idle(1); c.Throughput = 42; return c }(),
			want: Components{GPUUtilization: 50, Latency: 20, Queue: 30, Throughput: 20}},
		{name: "priority 3", in: func() Input { c := idle(1); c.Priority = 3; return c }(),
			want: Components{GPUUtilization: 50, Latency: 20, Queue: 30, Throughput: 10, Priority: 30}},
		{name: "negative priority", in: func() Input { c := idle(1); c.Priority = -2; return c }(),
			want: Components{GPUUtilization: 50, Latency: 20, Queue: 30, Throughput: 10, Priority: -20}},
		{name: "no max concurrent counts as one slot", in: func() Input { c := idle(1); c.MaxConcurrent = 0; return c }(),
			want: Components{GPUUtilization: 50, Latency: 20, Queue: 30, Throughput: 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Score([]Input{tc.in}, Defaults())
			require.Len(t, got, 1)
			requireComponents(t, tc.want, got[0].Components)
			require.InDelta(t, tc.want.Sum(), got[0].Total, 1e-9)
			require.True(t, got[0].Eligible)
			require.Equal(t, tc.in.BackendID, got[0].BackendID)
		})
	}
}

func requireComponents(t *testing.T, want, got Components) {
	t.Helper()
	for name, w := range want.Map() {
		require.InDelta(t, w, got.Map()[name], 1e-9, name)
	}
}

func TestScoreThroughputIsRelative(t *testing.T) {
	t.Parallel()
	in := []Input{idle(1), idle(2), idle(3)}
	in[0].Throughput, in[1].Throughput = 100, 25
	got := Score(in, Defaults())
	require.InDelta(t, 20, got[0].Components.Throughput, 1e-9)
	require.InDelta(t, 5, got[1].Components.Throughput, 1e-9)
	require.InDelta(t, 10, got[2].Components.Throughput, 1e-9, "unknown is neutral")
}

func TestScoreFullBackendIsIneligible(t *testing.T) {
	t.Parallel()
	in := []Input{idle(1), idle(2)}
	in[0].Loaded = true
	in[0].InFlight = 4
	got := Score(in, Weights{})
	require.False(t, got[0].Eligible)
	require.Equal(t, ReasonNoCapacity, got[0].Reason)
	require.InDelta(t, 100+50+20+0+10, got[0].Total, 1e-9, "still scored for the record")
	i, ok := Best(got)
	require.True(t, ok)
	require.Equal(t, 1, i)

	got[1].Eligible = false
	_, ok = Best(got)
	require.False(t, ok)
	_, ok = Best(nil)
	require.False(t, ok)
}

func TestScoreZeroWeightsMeanDefaults(t *testing.T) {
	t.Parallel()
	in := []Input{idle(1)}
	in[0].Loaded = true
	require.Equal(t, Score(in, Defaults()), Score(in, Weights{}))

	w := Defaults()
	w.Loaded = 0
	w.RefLatency = 0
	in[0].LatencyEMA = 5 * time.Second
	got := Score(in, w)
	require.Zero(t, got[0].Components.Loaded, "a single zero weight is kept")
	require.InDelta(t, 20, got[0].Components.Latency, 1e-9, "RefLatency 0 means the default")
}

func TestBest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []Input
		want int64
	}{
		{name: "loaded beats idle GPUs and an empty queue",
			in: []Input{
				{BackendID: 1, GPUUtilization: 0, MaxConcurrent: 4},
				{BackendID: 2, Loaded: true, GPUUtilization: 0.9, InFlight: 3, MaxConcurrent: 4},
			}, want: 2},
		{name: "priority weighs ten points a step",
			in: []Input{
				{BackendID: 1, GPUUtilization: 0, MaxConcurrent: 4},
				{BackendID: 2, GPUUtilization: 0.5, MaxConcurrent: 4, Priority: 3},
			}, want: 2},
		{name: "lower latency wins",
			in: []Input{
				{BackendID: 1, LatencyEMA: 3 * time.Second, GPUUtilization: -1, MaxConcurrent: 4},
				{BackendID: 2, LatencyEMA: 200 * time.Millisecond, GPUUtilization: -1, MaxConcurrent: 4},
			}, want: 2},
		{name: "a measured slow backend loses to an unmeasured one",
			in: []Input{
				{BackendID: 1, LatencyEMA: 20 * time.Second, GPUUtilization: -1, MaxConcurrent: 4},
				{BackendID: 2, GPUUtilization: -1, MaxConcurrent: 4},
			}, want: 2},
		{name: "equal totals: lower share of slots in use",
			// 50+20+15+10 = 95 against 35+20+30+10 = 95.
			in: []Input{
				{BackendID: 1, GPUUtilization: 0, InFlight: 1, MaxConcurrent: 2, Priority: 0},
				{BackendID: 2, GPUUtilization: 0.3, InFlight: 0, MaxConcurrent: 2, Priority: 0},
			}, want: 2},
		{name: "equal totals and loads: lower id",
			in: []Input{
				{BackendID: 7, GPUUtilization: 0.2, InFlight: 1, MaxConcurrent: 4},
				{BackendID: 3, GPUUtilization: 0.2, InFlight: 1, MaxConcurrent: 4},
				{BackendID: 5, GPUUtilization: 0.2, InFlight: 1, MaxConcurrent: 4},
			}, want: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Score(tc.in, Defaults())
			i, ok := Best(got)
			require.True(t, ok)
			require.Equal(t, tc.want, got[i].BackendID)
		})
	}
}

func TestBestTieBreakOnLoad(t *testing.T) {
	t.Parallel()
	// Equal totals built by hand: the lower share of slots in use wins, then
	// the lower id, whatever the order of the slice.
	scored := []Scored{
		{BackendID: 1, Eligible: true, Total: 100, InFlight: 3, Slots: 4},
		{BackendID: 2, Eligible: true, Total: 100, InFlight: 1, Slots: 2},
		{BackendID: 3, Eligible: true, Total: 100, InFlight: 2, Slots: 8},
		{BackendID: 4, Eligible: true, Total: 99, InFlight: 0, Slots: 8},
	}
	i, ok := Best(scored)
	require.True(t, ok)
	require.EqualValues(t, 3, scored[i].BackendID)

	scored[2].InFlight = 4 // now 4/8 = 1/2, equal to backend 2
	i, _ = Best(scored)
	require.EqualValues(t, 2, scored[i].BackendID, "equal loads: lower id")
}

func TestComponentsMap(t *testing.T) {
	t.Parallel()
	c := Components{Loaded: 1, GPUUtilization: 2, Latency: 3, Queue: 4, Throughput: 5, Priority: 6}
	require.Equal(t, map[string]float64{
		"loaded": 1, "gpu_utilization": 2, "latency": 3, "queue": 4, "throughput": 5, "priority": 6,
	}, c.Map())
	require.InDelta(t, 21, c.Sum(), 1e-9)
}
