package energy

import (
	"slices"
	"time"
)

// PowerSample is a power reading at an instant.
type PowerSample struct {
	At    time.Time
	Watts float64
}

// Weights are what one prompt token and one generated token count for when an
// interval's energy is shared. Prefill processes a prompt's tokens in parallel, so
// a prompt token costs a fraction of a generated one; DefaultWeights take it as a
// fifth.
type Weights struct {
	Prompt     float64
	Completion float64
}

// DefaultWeights count a prompt token as 0.2 of a generated token.
func DefaultWeights() Weights { return Weights{Prompt: 0.2, Completion: 1} }

// Request is a request's share of the GPU's work: its prompt tokens are processed
// evenly over [Start, FirstToken] (prefill), its generated tokens evenly over
// [FirstToken, End] (decode). An empty phase puts its tokens at its one instant.
type Request struct {
	ID                       int64
	Start, FirstToken, End   time.Time
	PromptTokens, Completion int64
}

// Result is an attribution: joules per request id, idle joules (intervals in which
// no request processed a token) and their total, the trace's integral.
type Result struct {
	Joules map[int64]float64
	Idle   float64
	Total  float64
}

// Integrate is the energy of a power trace in joules: the trapezoid rule between
// consecutive samples, ordered by time. Fewer than two samples hold no energy.
func Integrate(trace []PowerSample) float64 {
	var j float64
	for i := 1; i < len(trace); i++ {
		j += (trace[i-1].Watts + trace[i].Watts) / 2 * trace[i].At.Sub(trace[i-1].At).Seconds()
	}
	return j
}

// Attribute shares the trace's energy among reqs: each interval between two samples
// goes to the requests in proportion to the weighted tokens each processed in it,
// or to idle when none did. Every joule of the integral lands somewhere, so
// Σ Joules + Idle = Total = Integrate(trace).
func Attribute(trace []PowerSample, reqs []Request, w Weights) Result {
	res := Result{Joules: make(map[int64]float64, len(reqs))}
	trace = slices.Clone(trace)
	slices.SortStableFunc(trace, func(a, b PowerSample) int { return a.At.Compare(b.At) })
	shares := make([]float64, len(reqs))
	for i := 1; i < len(trace); i++ {
		a, b := trace[i-1].At, trace[i].At
		e := (trace[i-1].Watts + trace[i].Watts) / 2 * b.Sub(a).Seconds()
		res.Total += e
		last := i == len(trace)-1
		var sum float64
		for k, r := range reqs {
			s := w.Prompt*float64(r.PromptTokens)*fraction(r.Start, r.FirstToken, a, b, last) +
				w.Completion*float64(r.Completion)*fraction(r.FirstToken, r.End, a, b, last)
			shares[k] = s
			sum += s
		}
		if sum <= 0 {
			res.Idle += e
			continue
		}
		for k, r := range reqs {
			if shares[k] > 0 {
				res.Joules[r.ID] += e * shares[k] / sum
			}
		}
	}
	return res
}

// fraction is the part of the phase [s, e] that falls in the interval [a, b): the
// overlap over the phase's length, or for an instant phase 1 when it lies in the
// interval (the last interval is closed at b).
func fraction(s, e, a, b time.Time, closed bool) float64 {
	if !e.After(s) {
		if !s.Before(a) && (s.Before(b) || closed && s.Equal(b)) {
			return 1
		}
		return 0
	}
	lo, hi := s, e
	if a.After(lo) {
		lo = a
	}
	if b.Before(hi) {
		hi = b
	}
	if !hi.After(lo) {
		return 0
	}
	return float64(hi.Sub(lo)) / float64(e.Sub(s))
}
