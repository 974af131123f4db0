package registry

import (
	"fmt"
	"testing"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/scoring"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// benchFleet is 20 backends serving 20 models each, 10 of them shared.
func benchFleet(b *testing.B) *Registry {
	b.Helper()
	st := newFakeStore()
	for i := range 20 {
		var specs []store.ModelSpec
		for j := range 20 {
			name := fmt.Sprintf("model-%d-%d:latest", i, j)
			if j < 10 {
				name = fmt.Sprintf("shared-%d:latest", j)
			}
			specs = append(specs, store.ModelSpec{Name: name, ContextLength: 8192, Capabilities: []string{"completion", "tools"}})
		}
		st.seedBackend(b, fmt.Sprintf("b%d", i), "ollama", "healthy", false, specs...)
	}
	r := New(st, Options{})
	if err := r.Load(b.Context()); err != nil {
		b.Fatal(err)
	}
	return r
}

func BenchmarkCandidates(b *testing.B) {
	r := benchFleet(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Candidates("shared-3", opChat, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCatalog(b *testing.B) {
	r := benchFleet(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Catalog()
	}
}

func BenchmarkObserveOutcomeSuccess(b *testing.B) {
	r := benchFleet(b)
	b.ReportAllocs()
	for b.Loop() {
		r.ObserveOutcome(1, false)
	}
}

// BenchmarkPick is the whole choice of an Admit over 20 candidates with GPU
// readings: ScoringInputs, scoring.Score, Choose.
func BenchmarkPick(b *testing.B) {
	r := benchFleet(b)
	gpus := &gpuFeed{}
	byNode := map[int64]map[uint32]uint32{}
	for n := range int64(5) {
		byNode[n+1] = map[uint32]uint32{0: 10, 1: 20, 2: 30, 3: 40}
	}
	gpus.set(byNode)
	r.opts.GPUs = gpus
	cands, err := r.Candidates("shared-3", opChat, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i, c := range cands {
		r.Observe(c.Backend.ID, Observation{TTFT: time.Duration(i+1) * 10 * time.Millisecond, Duration: time.Second, CompletionTokens: 100})
	}
	w := scoring.Defaults()
	inFlight := func(int64) int { return 1 }
	b.ReportAllocs()
	for b.Loop() {
		scored := scoring.Score(r.ScoringInputs(cands, inFlight), w)
		if _, _, ok := r.Choose(scored); !ok {
			b.Fatal("no choice")
		}
	}
}

func BenchmarkObserveSuccess(b *testing.B) {
	r := benchFleet(b)
	o := Observation{TTFT: 100 * time.Millisecond, Duration: time.Second, CompletionTokens: 100}
	b.ReportAllocs()
	for b.Loop() {
		r.Observe(1, o)
	}
}
