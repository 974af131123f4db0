package admission

import "github.com/mindrouter/mindrouter/controlplane/internal/scheduler"

// ScoreInput is what a Scorer sees of one attempt to place a request.
type ScoreInput struct {
	// Model is the name the client asked for.
	Model string
	// Tokens is the request's estimated cost: prompt estimate plus output allowance.
	Tokens int64
	// Candidates passed the hard filters (registry, excluded backends, context
	// window), in the registry's order.
	Candidates []Candidate
	// Load has the exact in-flight count of every backend.
	Load scheduler.Load
}

// Score is a Scorer's verdict on one candidate.
type Score struct {
	// Eligible is false when the candidate cannot take the request now;
	// ExcludedReason then says why, in a few words.
	Eligible       bool
	ExcludedReason string
	// Total ranks the eligible candidates: the highest wins, and ties keep the
	// registry's order.
	Total float64
	// Components break Total down by name (loaded, priority, gpu_utilization,
	// latency, queue, throughput, ...), for the decision log.
	Components []Component
}

// Component is one named part of a Score.
type Component struct {
	Name  string
	Value float64
}

// Scorer ranks the candidates of a request. It runs under the scheduler's lock,
// on every attempt to place a waiting request, so it must be quick, must not block
// and must not call the scheduler. Admission enforces the slot limit
// (Candidate.MaxConcurrent) itself: a candidate without a free slot is never
// chosen, whatever its score.
type Scorer interface {
	// Score sets out[i] to the verdict on in.Candidates[i]; len(out) equals
	// len(in.Candidates). out is reused from one call to the next: append to
	// out[i].Components[:0] to reuse its storage. Neither in nor out may be kept.
	Score(in ScoreInput, out []Score)
}

// ReasonNoFreeSlot is the ExcludedReason of a candidate whose slots are all
// taken; scorers use it for the same verdict.
const ReasonNoFreeSlot = "no free slot"

// Reasons a candidate is not eligible.
const (
	reasonFull     = ReasonNoFreeSlot
	reasonExcluded = "already failed this request"
	reasonContext  = "context window too small for the prompt"
	reasonCircuit  = "circuit breaker refused (open, or its half-open trial is in flight)"
)

// SlotScorer is the default Scorer: a backend whose model is loaded beats one that
// must load it, then a higher admin priority wins, then the larger share of free
// slots. Total encodes that order as 1e6×loaded + 1e3×priority + free share, with
// priority clamped to ±499.
type SlotScorer struct{}

// Score implements Scorer.
func (SlotScorer) Score(in ScoreInput, out []Score) {
	for i := range in.Candidates {
		c := &in.Candidates[i]
		limit := slotLimit(c.MaxConcurrent)
		n := in.Load.InFlight(c.BackendID)
		free := float64(max(limit-n, 0)) / float64(limit)
		var loaded float64
		if c.Loaded {
			loaded = 1
		}
		prio := float64(min(max(c.Priority, -499), 499))
		o := &out[i]
		o.Eligible, o.ExcludedReason = n < limit, ""
		if !o.Eligible {
			o.ExcludedReason = reasonFull
		}
		o.Total = 1e6*loaded + 1e3*prio + free
		o.Components = append(o.Components[:0],
			Component{"loaded", loaded}, Component{"priority", prio}, Component{"free_slots", free})
	}
}

// choose scores cands into out and returns the index of the best eligible
// candidate with a free slot whose circuit breaker lets the request through, or
// -1; trial is true when the request is that backend's half-open trial. A
// candidate the scorer calls eligible but whose slots are all taken, or whose
// breaker refuses, is marked ineligible here with the reason.
func choose(sc Scorer, gate circuitGate, in ScoreInput, out []Score) (best int, trial bool) {
	sc.Score(in, out)
	for i := range out {
		o := &out[i]
		c := &in.Candidates[i]
		if o.Eligible && in.Load.InFlight(c.BackendID) >= slotLimit(c.MaxConcurrent) {
			o.Eligible, o.ExcludedReason = false, reasonFull
		}
	}
	for {
		best = -1
		for i := range out {
			if out[i].Eligible && (best < 0 || out[i].Total > out[best].Total) {
				best = i
			}
		}
		if best < 0 || gate == nil {
			return best, false
		}
		ok, trial := gate.AcquireCircuit(in.Candidates[best].BackendID)
		if ok {
			return best, trial
		}
		out[best].Eligible, out[best].ExcludedReason = false, reasonCircuit
	}
}

// circuitGate is the part of Registry that choose needs.
type circuitGate interface {
	AcquireCircuit(backendID int64) (ok, trial bool)
}

// slotLimit is a backend's concurrency cap; the registry enforces ≥ 1, and a
// missing value is read as 1 rather than as unlimited.
func slotLimit(maxConcurrent int) int {
	if maxConcurrent < 1 {
		return 1
	}
	return maxConcurrent
}
