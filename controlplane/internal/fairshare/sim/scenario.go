package sim

import "time"

// Cluster is the simulated capacity: every slot serves one request at a time.
type Cluster struct {
	// Backends and SlotsPerBackend give the number of concurrent requests.
	Backends, SlotsPerBackend int
	// PrefillTPS and DecodeTPS are a slot's prompt and output token rates.
	PrefillTPS, DecodeTPS float64
}

// Slots is the total number of slots.
func (c Cluster) Slots() int { return c.Backends * c.SlotsPerBackend }

// DefaultCluster is 2 backends with 4 slots each, prefilling 2000 and generating
// 50 tokens per second per slot.
func DefaultCluster() Cluster {
	return Cluster{Backends: 2, SlotsPerBackend: 4, PrefillTPS: 2000, DecodeTPS: 50}
}

// Range is a closed interval of token counts, drawn uniformly.
type Range struct{ Min, Max int64 }

// UserSpec describes one simulated user's workload.
type UserSpec struct {
	// Name labels the user in the report.
	Name string
	// Weight is the user's fair-share weight.
	Weight int
	// Interactive users send one request at a time and think between them; the
	// others (automation) keep Depth requests queued at all times.
	Interactive bool
	// Depth is the queue an automated user keeps full.
	Depth int
	// Think is the mean of an interactive user's exponential think time.
	Think time.Duration
	// Prompt and Output are the real prompt and output sizes; MaxTokens is the
	// declared output limit, so the estimate is prompt + MaxTokens.
	Prompt, Output Range
	MaxTokens      int64
}

// Scenario is one simulated workload.
type Scenario struct {
	// Name is short; Description says what it shows.
	Name, Description string
	Users             []UserSpec
	// Duration is the simulated time.
	Duration time.Duration
	// Window is the length of the windows the fairness index is computed over.
	Window time.Duration
}

// Scenarios returns the standard scenarios, each lasting d.
func Scenarios(d time.Duration) []Scenario {
	chat := func(name string, w int) UserSpec {
		return UserSpec{
			Name: name, Weight: w, Interactive: true, Think: 20 * time.Second,
			Prompt: Range{200, 1000}, Output: Range{100, 300}, MaxTokens: 512,
		}
	}
	long := func(name string, w, depth int) UserSpec {
		return UserSpec{
			Name: name, Weight: w, Depth: depth,
			Prompt: Range{500, 1500}, Output: Range{1500, 2048}, MaxTokens: 2048,
		}
	}
	mixed := func(name string, w int) UserSpec {
		return UserSpec{
			Name: name, Weight: w, Depth: 4,
			Prompt: Range{100, 900}, Output: Range{200, 1000}, MaxTokens: 1024,
		}
	}
	return []Scenario{
		{
			Name: "paper",
			Description: "one automated faculty user (weight 3) keeps 16 long requests queued; five interactive " +
				"users (weights 1, 1, 2, 3, 10) send short requests with 20 s mean think time",
			Users: []UserSpec{
				long("batch", 3, 16),
				chat("student-a", 1), chat("student-b", 1), chat("staff", 2), chat("faculty", 3), chat("admin", 10),
			},
			Duration: d, Window: time.Minute,
		},
		{
			Name:        "weights",
			Description: "four automated users of weights 1, 2, 3, 10 with identical workloads, all permanently backlogged",
			Users:       []UserSpec{mixed("w1", 1), mixed("w2", 2), mixed("w3", 3), mixed("w10", 10)},
			Duration:    d, Window: time.Minute,
		},
		{
			Name:        "lone",
			Description: "a single automated user (weight 1) keeps 16 long requests queued",
			Users:       []UserSpec{long("lone", 1, 16)},
			Duration:    d, Window: time.Minute,
		},
	}
}
