package registry

import (
	"slices"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/scoring"
)

// ScoringInputs describes candidates for scoring.Score: the backend's
// current capacity settings and priority, whether the candidate's model is
// loaded, its GPU utilisation (see ScoringInput), its latency and throughput
// averages, and its requests in flight as inFlight reports them (nil: the
// registry's InFlight). Pass the scheduler's exact counts from inside the
// Picker.
func (r *Registry) ScoringInputs(cands []Candidate, inFlight func(backendID int64) int) []scoring.Input {
	if inFlight == nil {
		inFlight = r.InFlight
	}
	v, gpus := r.view.Load(), r.gpuReading()
	out := make([]scoring.Input, len(cands))
	for i := range cands {
		c := &cands[i]
		b := c.Backend
		if j, ok := v.byID[b.ID]; ok {
			b = v.backends[j]
		}
		out[i] = scoringInput(b, v.live[b.ID], gpus, c.Model.Loaded, inFlight(b.ID))
	}
	return out
}

// ScoringInput describes one backend for scoring.Score, for callers that
// keep their own candidate type; false for an unknown backend. The GPU
// utilisation is the mean over the GPUs the backend uses on its node (its
// GPU indices, or every GPU of the node when it lists none) from the GPU
// source's latest readings, cached for GPUCacheTTL; -1 when the backend has
// no node or the node sends no readings. The latency is the time-to-first-
// byte average, which the data plane measures for every kind of request and
// which does not grow with the answer's length (throughput rewards fast
// generation); without one, the whole-request average.
func (r *Registry) ScoringInput(backendID int64, loaded bool, inFlight int) (scoring.Input, bool) {
	v := r.view.Load()
	i, ok := v.byID[backendID]
	if !ok {
		return scoring.Input{}, false
	}
	return scoringInput(v.backends[i], v.live[backendID], r.gpuReading(), loaded, inFlight), true
}

func scoringInput(b Backend, lv *live, gpus *gpuReading, loaded bool, inFlight int) scoring.Input {
	in := scoring.Input{
		BackendID: b.ID, Name: b.Name, Loaded: loaded, GPUUtilization: gpus.utilization(b.NodeID, b.GPUIndices),
		InFlight: inFlight, MaxConcurrent: b.MaxConcurrent, Priority: b.Priority,
	}
	if lv != nil {
		lv.mu.Lock()
		switch {
		case lv.ttft.ok:
			in.LatencyEMA = seconds(lv.ttft.v)
		case lv.latency.ok:
			in.LatencyEMA = seconds(lv.latency.v)
		}
		in.Throughput = lv.throughput.v
		lv.mu.Unlock()
	}
	return in
}

// Choose returns the index of the best eligible candidate of scored
// (scoring.Best) whose circuit breaker lets the request through
// (AcquireCircuit), and whether the request is the backend's half-open
// trial. A candidate the breaker refuses is marked ineligible in scored, with
// the reason, and the next best is tried. It returns false when none is left.
func (r *Registry) Choose(scored []scoring.Scored) (i int, trial, ok bool) {
	for {
		i, ok := scoring.Best(scored)
		if !ok {
			return -1, false, false
		}
		pass, trial, why := r.acquireCircuit(scored[i].BackendID)
		if pass {
			return i, trial, true
		}
		scored[i].Eligible, scored[i].Reason = false, why
	}
}

// gpuReading is the GPU source's utilisation per node and GPU index.
type gpuReading struct {
	at     time.Time
	byNode map[int64][]gpuUtil
}

type gpuUtil struct {
	index int
	util  float64 // 0..1
}

// gpuReading returns the cached reading, refreshing it when older than
// GPUCacheTTL; nil without a GPU source.
func (r *Registry) gpuReading() *gpuReading {
	if r.opts.GPUs == nil {
		return nil
	}
	now := r.now()
	fresh := func(g *gpuReading) bool {
		return g != nil && !now.Before(g.at) && now.Sub(g.at) < r.opts.GPUCacheTTL
	}
	if g := r.gpus.Load(); fresh(g) {
		return g
	}
	r.gpuMu.Lock()
	defer r.gpuMu.Unlock()
	if g := r.gpus.Load(); fresh(g) {
		return g
	}
	g := &gpuReading{at: now, byNode: map[int64][]gpuUtil{}}
	for _, s := range r.opts.GPUs.Latest() {
		smp := s.GetSample()
		if smp == nil {
			continue
		}
		g.byNode[s.GetNodeId()] = append(g.byNode[s.GetNodeId()],
			gpuUtil{index: int(smp.GetIndex()), util: min(float64(smp.GetUtilizationGpuPercent())/100, 1)})
	}
	r.gpus.Store(g)
	return g
}

// utilization is the mean utilisation of a node's GPUs with the given
// indices (all of them when indices is empty); -1 when unknown.
func (g *gpuReading) utilization(nodeID int64, indices []int) float64 {
	if g == nil || nodeID == 0 {
		return -1
	}
	var sum float64
	n := 0
	for _, u := range g.byNode[nodeID] {
		if len(indices) == 0 || slices.Contains(indices, u.index) {
			sum += u.util
			n++
		}
	}
	if n == 0 {
		return -1
	}
	return sum / float64(n)
}
