package app

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/scoring"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

func TestPrincipalFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scopes []string
		want   bool
	}{
		{"no scopes means inference only", nil, true},
		{"inference scope", []string{identity.ScopeInference}, true},
		{"admin only", []string{identity.ScopeAdmin}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := principalFrom(identity.Principal{
				UserID: 1, Username: "ada", APIKeyID: 2, KeyPrefix: "mr2_abcd", GroupID: 3, Group: "faculty",
				Scopes: tt.scopes, Weight: 4, RPMLimit: 5, KeyRPMLimit: 7, TokenBudget: 6,
			})
			require.Equal(t, admission.Principal{
				UserID: 1, Username: "ada", APIKeyID: 2, KeyPrefix: "mr2_abcd", GroupID: 3, Group: "faculty",
				Inference: tt.want, Weight: 4, RPMLimit: 5, KeyRPMLimit: 7, TokenBudget: 6,
			}, p)
		})
	}
}

func TestCandidateFrom(t *testing.T) {
	t.Parallel()
	got := candidateFrom(registry.Candidate{
		Backend: registry.Backend{ID: 9, Name: "gpu9", URL: "http://gpu9:8000", Engine: registry.EngineVLLM,
			Status: registry.StatusHealthy, MaxConcurrent: 8, Priority: 2, Simulated: true},
		Model: registry.Model{BackendID: 9, Name: "qwen3:8b", ContextLength: 40960, Loaded: true},
	})
	require.Equal(t, admission.Candidate{
		BackendID: 9, BackendName: "gpu9", URL: "http://gpu9:8000", Engine: controlplanev1.Engine_ENGINE_VLLM,
		MaxConcurrent: 8, Priority: 2, Simulated: true, Model: "qwen3:8b", ContextLength: 40960, Loaded: true,
	}, got)
	require.Equal(t, controlplanev1.Engine_ENGINE_OLLAMA, engineOf(registry.EngineOllama))
	require.Equal(t, controlplanev1.Engine_ENGINE_UNSPECIFIED, engineOf("diffusion"))
}

// fakeScoring serves fixed scoring inputs.
type fakeScoring map[int64]scoring.Input

func (f fakeScoring) ScoringInput(id int64, loaded bool, inFlight int) (scoring.Input, bool) {
	in, ok := f[id]
	in.Loaded, in.InFlight = loaded, inFlight
	return in, ok
}

func TestTableScorerFollowsTheReferenceTable(t *testing.T) {
	t.Parallel()
	src := fakeScoring{
		1: {BackendID: 1, Name: "busy-gpu", GPUUtilization: 0.9, LatencyEMA: 5 * time.Second, MaxConcurrent: 4, Throughput: 10},
		2: {BackendID: 2, Name: "idle-gpu", GPUUtilization: 0.1, LatencyEMA: 500 * time.Millisecond, MaxConcurrent: 4, Throughput: 40},
	}
	sc := newTableScorer(src, scoring.Weights{})
	cands := []admission.Candidate{
		{BackendID: 1, BackendName: "busy-gpu", MaxConcurrent: 4, Loaded: true},
		{BackendID: 2, BackendName: "idle-gpu", MaxConcurrent: 4},
		// Removed from the registry since the plan was made: scored from the plan.
		{BackendID: 3, BackendName: "gone", MaxConcurrent: 1, Priority: 1},
	}
	out := make([]admission.Score, len(cands))
	sc.Score(admission.ScoreInput{Candidates: cands, Load: loadOf{1: 1, 3: 1}}, out)
	i := best(out)
	// Loaded is worth 100: the busy backend with the model resident wins.
	require.Equal(t, 0, i)
	comp := func(s admission.Score) map[string]float64 {
		m := map[string]float64{}
		for _, c := range s.Components {
			m[c.Name] = c.Value
		}
		return m
	}
	busy, idle := comp(out[0]), comp(out[1])
	require.InDelta(t, 100, busy["loaded"], 1e-9)
	require.InDelta(t, 5, busy["gpu_utilization"], 1e-9) // 50 × (1 − 0.9)
	require.InDelta(t, 20, busy["latency"], 1e-9)        // 40 / (1 + 5 s / 5 s)
	require.InDelta(t, 22.5, busy["queue"], 1e-9)        // 30 × 3/4 free
	require.InDelta(t, 5, busy["throughput"], 1e-9)      // 20 × 10/40
	require.InDelta(t, 152.5, out[0].Total, 1e-9)
	require.InDelta(t, 0, idle["loaded"], 1e-9)
	require.InDelta(t, 45, idle["gpu_utilization"], 1e-9)
	require.InDelta(t, 20, idle["throughput"], 1e-9)
	require.True(t, out[1].Eligible)
	require.False(t, out[2].Eligible, "its one slot is in use")
	require.Equal(t, admission.ReasonNoFreeSlot, out[2].ExcludedReason)

	// Without the model resident anywhere the idle, fast backend wins.
	cands[0].Loaded = false
	sc.Score(admission.ScoreInput{Candidates: cands, Load: loadOf{}}, out)
	require.Equal(t, 1, best(out))
}

// best is the eligible verdict with the highest total (the first of equals), or -1.
func best(out []admission.Score) int {
	b := -1
	for i := range out {
		if out[i].Eligible && (b < 0 || out[i].Total > out[b].Total) {
			b = i
		}
	}
	return b
}
