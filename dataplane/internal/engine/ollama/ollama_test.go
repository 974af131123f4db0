package ollama_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// TestRequestOptions checks what reaches Ollama: an explicit stream flag, the
// lease's context window as num_ctx and the capped output limit as num_predict.
func TestRequestOptions(t *testing.T) {
	t.Parallel()
	sim := enginesim.New(enginesim.Config{Engine: enginesim.EngineOllama, CompletionTokens: 4})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	e := ollama.New(ollama.Config{Client: srv.Client()})
	tgt := engine.Target{URL: srv.URL + "/", Model: "sim-llama", ContextLength: 8192, MaxOutputTokens: 100}
	tests := []struct {
		name      string
		stream    bool
		maxTokens int64
		want      int64
	}{
		{"stream with no client limit takes the lease cap", true, 0, 100},
		{"a smaller client limit wins", false, 30, 30},
		{"a larger client limit is capped", true, 500, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := &canonical.Request{Model: "client-name", Stream: tc.stream, Sampling: canonical.Sampling{MaxTokens: tc.maxTokens},
				Messages: []canonical.Message{{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart("hi")}}}}
			var err error
			if tc.stream {
				err = e.ChatStream(context.Background(), tgt, req, func(canonical.Chunk) error { return nil })
			} else {
				_, err = e.Chat(context.Background(), tgt, req)
			}
			require.NoError(t, err)
			var sent struct {
				Model   string         `json:"model"`
				Stream  *bool          `json:"stream"`
				Options map[string]any `json:"options"`
			}
			require.NoError(t, json.Unmarshal(sim.Stats().LastRequestBody, &sent))
			require.Equal(t, "sim-llama", sent.Model, "the backend's model name, not the client's")
			require.NotNil(t, sent.Stream)
			require.Equal(t, tc.stream, *sent.Stream)
			require.InDelta(t, 8192, sent.Options["num_ctx"], 0)
			require.InDelta(t, tc.want, sent.Options["num_predict"], 0)
		})
	}
}
