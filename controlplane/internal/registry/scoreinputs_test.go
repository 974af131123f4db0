package registry

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/scoring"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// gpuFeed is a settable GPUSource that counts its reads.
type gpuFeed struct {
	mu    sync.Mutex
	gpus  []*adminv1.GPU
	reads int
}

// set replaces the readings: node id → utilisation percent by GPU index.
func (g *gpuFeed) set(byNode map[int64]map[uint32]uint32) {
	var out []*adminv1.GPU
	for node, gpus := range byNode {
		for idx, util := range gpus {
			out = append(out, &adminv1.GPU{NodeId: node, Sample: &nodeagentv1.GPUSample{Index: idx, UtilizationGpuPercent: util}})
		}
	}
	out = append(out, &adminv1.GPU{NodeId: 1}) // a reading without a sample is skipped
	g.mu.Lock()
	g.gpus = out
	g.mu.Unlock()
}

func (g *gpuFeed) Latest() []*adminv1.GPU {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reads++
	return g.gpus
}

func (g *gpuFeed) readCount() int { g.mu.Lock(); defer g.mu.Unlock(); return g.reads }

// seedOn stores a healthy backend from a full spec, with models.
func seedOn(t *testing.T, st *fakeStore, spec store.BackendSpec, models ...store.ModelSpec) int64 {
	t.Helper()
	if spec.URL == "" {
		spec.URL = "http://" + spec.Name + ":1"
	}
	if spec.Engine == "" {
		spec.Engine = "ollama"
	}
	b, _, err := st.RegisterBackend(context.Background(), spec, false)
	require.NoError(t, err)
	st.mu.Lock()
	b.Status = "healthy"
	st.backends[b.ID] = b
	st.mu.Unlock()
	require.NoError(t, st.SyncModels(context.Background(), b.ID, models))
	return b.ID
}

func seedNode(t *testing.T, st *fakeStore, name string) int64 {
	t.Helper()
	n, _, err := st.RegisterNode(context.Background(), store.NodeSpec{Name: name, Hostname: name}, false)
	require.NoError(t, err)
	return n.ID
}

func TestScoringInputsGPUUtilization(t *testing.T) {
	t.Parallel()
	gpus := &gpuFeed{}
	spec := store.ModelSpec{Name: "m", ContextLength: 1024}
	ids := map[string]int64{}
	var n1, n2 int64
	f := newFixture(t, Options{GPUs: gpus}, func(st *fakeStore) {
		n1, n2 = seedNode(t, st, "n1"), seedNode(t, st, "n2")
		ids["first two"] = seedOn(t, st, store.BackendSpec{Name: "first-two", NodeID: n1, GPUIndices: []int{0, 1}}, spec)
		ids["whole node"] = seedOn(t, st, store.BackendSpec{Name: "whole-node", NodeID: n1}, spec)
		ids["missing index"] = seedOn(t, st, store.BackendSpec{Name: "missing-index", NodeID: n1, GPUIndices: []int{7}}, spec)
		ids["silent node"] = seedOn(t, st, store.BackendSpec{Name: "silent-node", NodeID: n2}, spec)
		ids["no node"] = seedOn(t, st, store.BackendSpec{Name: "no-node"}, spec)
	})
	gpus.set(map[int64]map[uint32]uint32{n1: {0: 10, 1: 30, 2: 80, 3: 100}})

	cands, err := f.r.Candidates("m", opChat, nil)
	require.NoError(t, err)
	in := f.r.ScoringInputs(cands, nil)
	got := map[int64]float64{}
	for _, x := range in {
		got[x.BackendID] = x.GPUUtilization
	}
	want := map[string]float64{"first two": 0.2, "whole node": 0.55, "missing index": -1, "silent node": -1, "no node": -1}
	for name, w := range want {
		require.InDelta(t, w, got[ids[name]], 1e-9, name)
	}
	require.Equal(t, 1, gpus.readCount(), "one reading for all candidates")

	// The reading is reused for GPUCacheTTL.
	gpus.set(map[int64]map[uint32]uint32{n1: {0: 90, 1: 90}})
	x, ok := f.r.ScoringInput(ids["first two"], false, 0)
	require.True(t, ok)
	require.InDelta(t, 0.2, x.GPUUtilization, 1e-9)
	f.clock.Advance(DefaultGPUCacheTTL)
	x, _ = f.r.ScoringInput(ids["first two"], false, 0)
	require.InDelta(t, 0.9, x.GPUUtilization, 1e-9)
	require.Equal(t, 2, gpus.readCount())

	_, ok = f.r.ScoringInput(999, false, 0)
	require.False(t, ok)
}

func TestScoringInputsWithoutGPUSource(t *testing.T) {
	t.Parallel()
	f, a, _ := twoBackends(t, Options{})
	x, ok := f.r.ScoringInput(a, true, 2)
	require.True(t, ok)
	require.Equal(t, scoring.Input{BackendID: a, Name: "a", Loaded: true, GPUUtilization: -1, InFlight: 2, MaxConcurrent: 4}, x)
}

func TestScoringInputsLiveFigures(t *testing.T) {
	t.Parallel()
	f, a, b := twoBackends(t, Options{})
	cands, err := f.r.Candidates("m", opChat, nil)
	require.NoError(t, err)

	// a has a time to first byte, b only whole durations.
	f.r.Observe(a, Observation{TTFT: 200 * time.Millisecond, Duration: 2200 * time.Millisecond, CompletionTokens: 101})
	f.r.Observe(b, Observation{Duration: 4 * time.Second, CompletionTokens: 40})
	_, err = f.r.UpdateBackend(t.Context(), b, store.BackendPatch{Priority: new(2), MaxConcurrent: new(8)})
	require.NoError(t, err)
	f.inFlight.Set(a, 3)

	in := f.r.ScoringInputs(cands, nil)
	require.Equal(t, []scoring.Input{
		{BackendID: a, Name: "a", GPUUtilization: -1, LatencyEMA: 200 * time.Millisecond, InFlight: 3, MaxConcurrent: 4, Throughput: 50},
		{BackendID: b, Name: "b", GPUUtilization: -1, LatencyEMA: 4 * time.Second, MaxConcurrent: 8, Throughput: 10, Priority: 2},
	}, in, "settings are the current ones, not the candidate snapshot's")

	in = f.r.ScoringInputs(cands, func(id int64) int { return int(id) * 10 })
	require.Equal(t, int(a)*10, in[0].InFlight, "the caller's exact counts win")
}

func TestChooseSkipsRefusingCircuits(t *testing.T) {
	t.Parallel()
	f, a, b := twoBackends(t, Options{})
	r := f.r
	failN(r, a, 3)
	f.clock.Advance(DefaultCircuitOpenFor)
	cands, err := r.Candidates("m", opChat, nil)
	require.NoError(t, err)
	require.Len(t, cands, 2, "half-open is a candidate")

	score := func() []scoring.Scored {
		in := r.ScoringInputs(cands, nil)
		in[0].Priority = 1 // a ranks first
		return scoring.Score(in, scoring.Defaults())
	}

	// a is half-open: the first request is its trial.
	scored := score()
	i, trial, ok := r.Choose(scored)
	require.True(t, ok)
	require.True(t, trial)
	require.Equal(t, a, scored[i].BackendID)

	// The next one goes to b, and the record says why not a.
	scored = score()
	i, trial, ok = r.Choose(scored)
	require.True(t, ok)
	require.False(t, trial)
	require.Equal(t, b, scored[i].BackendID)
	require.False(t, scored[0].Eligible)
	require.Equal(t, ReasonTrialInFlight, scored[0].Reason)

	// b full as well: nothing.
	scored = score()
	scored[1].Eligible, scored[1].Reason = false, scoring.ReasonNoCapacity
	_, _, ok = r.Choose(scored)
	require.False(t, ok)

	// A circuit that opened after the candidates were listed is refused too.
	failN(r, b, 3)
	r.AbandonTrial(a)
	failN(r, a, 1)
	scored = score()
	_, _, ok = r.Choose(scored)
	require.False(t, ok)
	require.Equal(t, ReasonCircuitOpen, scored[0].Reason)
	require.Equal(t, ReasonCircuitOpen, scored[1].Reason)
}
