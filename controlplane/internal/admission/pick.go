package admission

import "github.com/mindrouter/mindrouter/controlplane/internal/scheduler"

// pick returns the index of the best candidate with a free slot, or -1 when every
// candidate is full. It is the one place backends are scored, so that the full
// scoring (GPU utilisation, latency, queue depth) can replace it: a candidate
// whose model is loaded beats one that must load it, then a higher admin
// priority wins, then the lower share of its slots in use; ties keep the
// registry's order.
func pick(cands []Candidate, load scheduler.Load) int {
	best := -1
	var bestUse float64
	for i := range cands {
		c := &cands[i]
		limit := slotLimit(c.MaxConcurrent)
		n := load.InFlight(c.BackendID)
		if n >= limit {
			continue
		}
		use := float64(n) / float64(limit)
		if best < 0 || better(c, use, &cands[best], bestUse) {
			best, bestUse = i, use
		}
	}
	return best
}

// better reports whether a (with share in use ua) ranks above b.
func better(a *Candidate, ua float64, b *Candidate, ub float64) bool {
	if a.Loaded != b.Loaded {
		return a.Loaded
	}
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return ua < ub
}

// slotLimit is a backend's concurrency cap; the registry enforces ≥ 1, and a
// missing value is read as 1 rather than as unlimited.
func slotLimit(maxConcurrent int) int {
	if maxConcurrent < 1 {
		return 1
	}
	return maxConcurrent
}
