package scoring

import (
	"math"
	"time"
)

// Component names, as decisions record them.
const (
	ComponentLoaded         = "loaded"
	ComponentGPUUtilization = "gpu_utilization"
	ComponentLatency        = "latency"
	ComponentQueue          = "queue"
	ComponentThroughput     = "throughput"
	ComponentPriority       = "priority"
)

// ReasonNoCapacity is the Reason of a backend whose slots are all in use.
const ReasonNoCapacity = "no capacity"

// DefaultRefLatency is the latency that earns half the latency points.
const DefaultRefLatency = 5 * time.Second

// Weights are the points of each component. The zero Weights means Defaults.
type Weights struct {
	// Loaded is earned when the model is already resident.
	Loaded float64
	// GPUUtilization is earned at 0 % utilisation, none at 100 %.
	GPUUtilization float64
	// Latency is approached as latency goes to 0.
	Latency float64
	// Queue is earned with no slot in use, none with all in use.
	Queue float64
	// Throughput is earned by the fastest candidate.
	Throughput float64
	// Priority is earned per step of the admin's priority.
	Priority float64
	// RefLatency is the latency that earns half of Latency; 0 means
	// DefaultRefLatency.
	RefLatency time.Duration
}

// Defaults returns the original's weights: loaded 100, GPU utilisation up to
// 50, latency up to 40, queue up to 30, throughput up to 20, priority ×10.
func Defaults() Weights {
	return Weights{Loaded: 100, GPUUtilization: 50, Latency: 40, Queue: 30, Throughput: 20, Priority: 10, RefLatency: DefaultRefLatency}
}

// Input is what scoring knows about one candidate backend.
type Input struct {
	BackendID int64
	Name      string
	// Loaded is true when the requested model is resident on the backend.
	Loaded bool
	// GPUUtilization is the mean utilisation of the backend's GPUs, 0..1;
	// negative when unknown.
	GPUUtilization float64
	// LatencyEMA is the backend's average latency; 0 when unknown.
	LatencyEMA time.Duration
	// InFlight is the requests in flight on the backend, fleet-wide.
	InFlight int
	// MaxConcurrent is the backend's slot count; below 1 it counts as 1.
	MaxConcurrent int
	// Throughput is the backend's average generation speed in tokens per
	// second; 0 when unknown.
	Throughput float64
	// Priority is the admin's priority; higher is preferred.
	Priority int
}

// Components are the points of one candidate, by component.
type Components struct {
	Loaded         float64
	GPUUtilization float64
	Latency        float64
	Queue          float64
	Throughput     float64
	Priority       float64
}

// Sum is the total of the components.
func (c Components) Sum() float64 {
	return c.Loaded + c.GPUUtilization + c.Latency + c.Queue + c.Throughput + c.Priority
}

// Map returns the components keyed by their names (ComponentLoaded, ...), as
// the admin API's CandidateScore.components wants them.
func (c Components) Map() map[string]float64 {
	return map[string]float64{
		ComponentLoaded:         c.Loaded,
		ComponentGPUUtilization: c.GPUUtilization,
		ComponentLatency:        c.Latency,
		ComponentQueue:          c.Queue,
		ComponentThroughput:     c.Throughput,
		ComponentPriority:       c.Priority,
	}
}

// Scored is one candidate's score.
type Scored struct {
	BackendID int64
	Name      string
	// Eligible is false when the candidate must not be chosen; Reason says why.
	Eligible bool
	Reason   string
	// Total is the sum of Components.
	Total      float64
	Components Components
	// InFlight and Slots break ties: the lower share of slots in use wins.
	InFlight int
	Slots    int
}

// Score scores every input, in the same order. An input whose slots are all
// in use is ineligible (ReasonNoCapacity) but still scored, so that decisions
// show what it would have earned.
func Score(in []Input, w Weights) []Scored {
	return AppendScores(make([]Scored, 0, len(in)), in, w)
}

// AppendScores is Score appending to dst, for callers that reuse a buffer.
func AppendScores(dst []Scored, in []Input, w Weights) []Scored {
	if w == (Weights{}) {
		w = Defaults()
	}
	ref := w.RefLatency
	if ref <= 0 {
		ref = DefaultRefLatency
	}
	var maxTp float64
	for i := range in {
		maxTp = max(maxTp, in[i].Throughput)
	}
	for i := range in {
		c := &in[i]
		slots := max(c.MaxConcurrent, 1)
		comp := Components{
			GPUUtilization: gpuPoints(c.GPUUtilization, w.GPUUtilization),
			Latency:        latencyPoints(c.LatencyEMA, ref, w.Latency),
			Queue:          w.Queue * max(1-float64(c.InFlight)/float64(slots), 0),
			Throughput:     throughputPoints(c.Throughput, maxTp, w.Throughput),
			Priority:       w.Priority * float64(c.Priority),
		}
		if c.Loaded {
			comp.Loaded = w.Loaded
		}
		s := Scored{
			BackendID: c.BackendID, Name: c.Name, Eligible: true,
			Total: comp.Sum(), Components: comp, InFlight: c.InFlight, Slots: slots,
		}
		if c.InFlight >= slots {
			s.Eligible, s.Reason = false, ReasonNoCapacity
		}
		dst = append(dst, s)
	}
	return dst
}

func gpuPoints(util, weight float64) float64 {
	if util < 0 || math.IsNaN(util) {
		return weight / 2
	}
	return weight * (1 - min(util, 1))
}

func latencyPoints(lat, ref time.Duration, weight float64) float64 {
	if lat <= 0 {
		return weight / 2
	}
	return weight / (1 + float64(lat)/float64(ref))
}

func throughputPoints(tp, maxTp, weight float64) float64 {
	if tp <= 0 || maxTp <= 0 || math.IsNaN(tp) {
		return weight / 2
	}
	return weight * tp / maxTp
}

// Best returns the index of the best eligible candidate: the highest total;
// among equal totals the lower share of slots in use, then the lower backend
// id. It returns false when no candidate is eligible.
func Best(scored []Scored) (int, bool) {
	best := -1
	for i := range scored {
		if !scored[i].Eligible {
			continue
		}
		if best < 0 || better(&scored[i], &scored[best]) {
			best = i
		}
	}
	return best, best >= 0
}

// better reports whether a ranks above b.
func better(a, b *Scored) bool {
	if a.Total != b.Total {
		return a.Total > b.Total
	}
	// a.InFlight/a.Slots < b.InFlight/b.Slots, without division.
	if l, r := a.InFlight*max(b.Slots, 1), b.InFlight*max(a.Slots, 1); l != r {
		return l < r
	}
	return a.BackendID < b.BackendID
}
