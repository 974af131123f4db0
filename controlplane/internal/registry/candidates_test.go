package registry

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

const (
	opChat      = controlplanev1.Operation_OPERATION_CHAT
	opEmbedding = controlplanev1.Operation_OPERATION_EMBEDDING
	opRerank    = controlplanev1.Operation_OPERATION_RERANK
	opScore     = controlplanev1.Operation_OPERATION_SCORE
	needVision  = controlplanev1.Capability_CAPABILITY_VISION
	needTools   = controlplanev1.Capability_CAPABILITY_TOOLS
	needThink   = controlplanev1.Capability_CAPABILITY_THINKING
	needJSON    = controlplanev1.Capability_CAPABILITY_STRUCTURED_OUTPUT
)

// seedFleet stores a small mixed fleet.
func seedFleet(t *testing.T) func(st *fakeStore) {
	return func(st *fakeStore) {
		chat := []string{"completion", "tools"}
		st.seedBackend(t, "o1", "ollama", "healthy", false,
			store.ModelSpec{Name: "llama3.2:latest", Family: "llama", ContextLength: 131072, Capabilities: chat},
			store.ModelSpec{Name: "nomic-embed-text:latest", ContextLength: 2048, Capabilities: []string{"embedding"}},
			store.ModelSpec{Name: "llava:7b", ContextLength: 4096, Capabilities: []string{"completion", "vision"}},
			store.ModelSpec{Name: "old:latest", ContextLength: 2048},
		)
		st.seedBackend(t, "v1", "vllm", "healthy", false,
			store.ModelSpec{Name: "Qwen/Qwen3-8B", ContextLength: 40960, Capabilities: []string{"completion", "thinking", "tools"}},
			store.ModelSpec{Name: "bge-reranker", ContextLength: 8192, Capabilities: []string{"rerank"}},
		)
		st.seedBackend(t, "o2", "ollama", "disabled", false,
			store.ModelSpec{Name: "llama3.2:latest", ContextLength: 131072, Capabilities: chat},
			store.ModelSpec{Name: "only-disabled:latest", ContextLength: 2048, Capabilities: chat},
		)
		st.seedBackend(t, "o3", "ollama", "unhealthy", false,
			store.ModelSpec{Name: "only-unhealthy", ContextLength: 2048, Capabilities: chat},
		)
		st.seedBackend(t, "o4", "ollama", "draining", false,
			store.ModelSpec{Name: "only-disabled:latest", ContextLength: 2048, Capabilities: chat},
		)
	}
}

func TestCandidates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{}, seedFleet(t))

	tests := []struct {
		name     string
		model    string
		op       controlplanev1.Operation
		needs    []controlplanev1.Capability
		backends []string
		model2   string // the backend's name for the model
		wantErr  error
		msg      string
	}{
		{name: "chat, disabled backend skipped", model: "llama3.2:latest", op: opChat, backends: []string{"o1"}, model2: "llama3.2:latest"},
		{name: "untagged name finds :latest", model: "llama3.2", op: opChat, backends: []string{"o1"}, model2: "llama3.2:latest"},
		{name: ":latest finds untagged vLLM id", model: "Qwen/Qwen3-8B:latest", op: opChat, backends: []string{"v1"}, model2: "Qwen/Qwen3-8B"},
		{name: "other tags do not match", model: "llama3.2:3b", op: opChat, wantErr: ErrModelNotFound, msg: `model "llama3.2:3b" not found`},
		{name: "unknown model", model: "gpt-5", op: opChat, wantErr: ErrModelNotFound, msg: `model "gpt-5" not found`},
		{name: "embedding model embeds", model: "nomic-embed-text", op: opEmbedding, backends: []string{"o1"}, model2: "nomic-embed-text:latest"},
		{name: "chat model does not embed", model: "llama3.2", op: opEmbedding, wantErr: ErrCapabilityUnsupported, msg: `model "llama3.2" does not support embeddings`},
		{name: "embedding model does not chat", model: "nomic-embed-text", op: opChat, wantErr: ErrCapabilityUnsupported, msg: `model "nomic-embed-text" does not support chat or text completion`},
		{name: "rerank on Ollama", model: "llama3.2", op: opRerank, wantErr: ErrCapabilityUnsupported, msg: "rerank is only available on vLLM backends"},
		{name: "score on Ollama", model: "llama3.2", op: opScore, wantErr: ErrCapabilityUnsupported, msg: "score is only available on vLLM backends"},
		{name: "rerank on vLLM", model: "bge-reranker", op: opRerank, backends: []string{"v1"}, model2: "bge-reranker"},
		{name: "score on vLLM", model: "Qwen/Qwen3-8B", op: opScore, backends: []string{"v1"}, model2: "Qwen/Qwen3-8B"},
		{name: "vision needed, not offered", model: "llama3.2", op: opChat, needs: []controlplanev1.Capability{needVision}, wantErr: ErrCapabilityUnsupported, msg: `model "llama3.2" does not support image input (vision)`},
		{name: "vision offered", model: "llava:7b", op: opChat, needs: []controlplanev1.Capability{needVision, needJSON}, backends: []string{"o1"}, model2: "llava:7b"},
		{name: "tools not offered", model: "llava:7b", op: opChat, needs: []controlplanev1.Capability{needTools}, wantErr: ErrCapabilityUnsupported, msg: `model "llava:7b" does not support tools`},
		{name: "thinking offered", model: "Qwen/Qwen3-8B", op: opChat, needs: []controlplanev1.Capability{needThink, needTools}, backends: []string{"v1"}, model2: "Qwen/Qwen3-8B"},
		{name: "no capability info: assumed to chat with tools", model: "old", op: opChat, needs: []controlplanev1.Capability{needTools}, backends: []string{"o1"}, model2: "old:latest"},
		{name: "no capability info: no thinking", model: "old", op: opChat, needs: []controlplanev1.Capability{needThink}, wantErr: ErrCapabilityUnsupported, msg: `model "old" does not support thinking`},
		{name: "only on disabled and draining", model: "only-disabled", op: opChat, wantErr: ErrNoHealthyBackend, msg: `no healthy backend available for model "only-disabled"`},
		{name: "only on unhealthy", model: "only-unhealthy", op: opChat, wantErr: ErrNoHealthyBackend},
		{name: "capability is checked before health", model: "only-unhealthy", op: opRerank, wantErr: ErrCapabilityUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := f.r.Candidates(tc.model, tc.op, tc.needs)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				if tc.msg != "" {
					require.EqualError(t, err, tc.msg)
				}
				var ra interface{ RetryAfter() time.Duration }
				require.ErrorAs(t, err, &ra)
				require.Equal(t, errors.Is(err, ErrNoHealthyBackend), ra.RetryAfter() > 0, "only no-healthy-backend asks to retry")
				return
			}
			require.NoError(t, err)
			var names []string
			for _, c := range got {
				names = append(names, c.Backend.Name)
				require.Equal(t, tc.model2, c.Model.Name)
				require.Equal(t, c.Backend.ID, c.Model.BackendID)
				require.Equal(t, StatusHealthy, c.Backend.Status)
			}
			require.Equal(t, tc.backends, names)
		})
	}
}

func TestCandidatesOrderedByBackendID(t *testing.T) {
	t.Parallel()
	spec := store.ModelSpec{Name: "m", ContextLength: 1024, Capabilities: []string{"completion"}}
	f := newFixture(t, Options{}, func(st *fakeStore) {
		for _, n := range []string{"a", "b", "c"} {
			st.seedBackend(t, n, "vllm", "healthy", false, spec)
		}
	})
	got, err := f.r.Candidates("m", opChat, nil)
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Less(t, got[0].Backend.ID, got[1].Backend.ID)
	require.Less(t, got[1].Backend.ID, got[2].Backend.ID)
}
