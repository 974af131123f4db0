package app

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/health"
	"github.com/mindrouter/mindrouter/controlplane/internal/health/healthtest"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/scoring"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// loadOf is a scheduler.Load of fixed in-flight counts.
type loadOf map[int64]int

func (l loadOf) InFlight(id int64) int { return l[id] }

// BenchmarkPick is what admission does to place one request with the
// production adapters: the registry's candidates for a model served by 20
// healthy backends, converted to admission's candidates, then scored with the
// reference's table (registry readings converted to scoring inputs). The
// scoring half runs under the scheduler's lock on every attempt to place a
// waiter.
func BenchmarkPick(b *testing.B) {
	ctx := b.Context()
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(ctx, store.Config{Driver: "sqlite", DSN: store.SQLiteDSN(filepath.Join(b.TempDir(), "bench.db"))}, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	reg := registry.New(st, registry.Options{Logger: log, Prober: health.NewProber(nil, log)})
	if err := reg.Load(ctx); err != nil {
		b.Fatal(err)
	}
	load := loadOf{}
	for i := range 20 {
		eng := healthtest.NewVLLM(b, "0.11.0", healthtest.Model{Name: "shared", ContextLength: 8192})
		bk, _, err := reg.RegisterBackend(ctx, store.BackendSpec{Name: fmt.Sprintf("b%d", i), URL: eng.URL(), Engine: "vllm", MaxConcurrent: 8}, true)
		if err != nil {
			b.Fatal(err)
		}
		load[bk.ID] = i % 4
	}
	port := registryPort(reg)
	scorer := registryScorer(reg, scoring.Defaults())
	out := make([]admission.Score, 20)
	b.Run("candidates", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := port.Candidates("shared", controlplanev1.Operation_OPERATION_CHAT, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	cands, err := port.Candidates("shared", controlplanev1.Operation_OPERATION_CHAT, nil)
	if err != nil || len(cands) != 20 {
		b.Fatalf("%d candidates, %v", len(cands), err)
	}
	b.Run("score", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			scorer.Score(admission.ScoreInput{Model: "shared", Tokens: 1000, Candidates: cands, Load: load}, out)
		}
	})
}
