package registry

import (
	"fmt"
	"testing"

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
