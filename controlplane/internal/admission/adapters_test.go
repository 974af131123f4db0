package admission

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
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
				Scopes: tt.scopes, Weight: 4, RPMLimit: 5, TokenBudget: 6,
			})
			require.Equal(t, Principal{
				UserID: 1, Username: "ada", APIKeyID: 2, KeyPrefix: "mr2_abcd", GroupID: 3, Group: "faculty",
				Inference: tt.want, Weight: 4, RPMLimit: 5, TokenBudget: 6,
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
	require.Equal(t, Candidate{
		BackendID: 9, BackendName: "gpu9", URL: "http://gpu9:8000", Engine: controlplanev1.Engine_ENGINE_VLLM,
		MaxConcurrent: 8, Priority: 2, Simulated: true, Model: "qwen3:8b", ContextLength: 40960, Loaded: true,
	}, got)
	require.Equal(t, controlplanev1.Engine_ENGINE_OLLAMA, engineOf(registry.EngineOllama))
	require.Equal(t, controlplanev1.Engine_ENGINE_UNSPECIFIED, engineOf("diffusion"))
}

// TestSentinelsMapLikeTheirOrigins keeps admission's refusals on the server's
// existing error table.
func TestSentinelsMapLikeTheirOrigins(t *testing.T) {
	t.Parallel()
	require.ErrorIs(t, ErrPermissionDenied, identity.ErrPermissionDenied)
	h := newHarness(t, Options{}, backendCand(1, 1))
	req := h.admitReq("r")
	req.ExcludedBackendIds = []int64{1}
	_, err := h.srv.Admit(t.Context(), req)
	require.ErrorIs(t, err, ErrAllExcluded)
	require.ErrorIs(t, err, registry.ErrNoHealthyBackend)
	var ra interface{ RetryAfter() time.Duration }
	require.True(t, errors.As(err, &ra))
	require.Positive(t, ra.RetryAfter())
}
