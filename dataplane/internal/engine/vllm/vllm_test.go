package vllm_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/vllm"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// TestUsageAlwaysRequested: streams always ask vLLM for the usage chunk, and
// the engine emits it once, last, whatever the client asked.
func TestUsageAlwaysRequested(t *testing.T) {
	t.Parallel()
	sim := enginesim.New(enginesim.Config{Engine: enginesim.EngineVLLM, CompletionTokens: 5, LegacyReasoningField: true})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	e := vllm.New(vllm.Config{Client: srv.Client()})
	tgt := engine.Target{URL: srv.URL, Model: "sim-llama", MaxOutputTokens: 64}
	req := &canonical.Request{Model: "alias", Stream: true, IncludeUsage: false,
		Messages: []canonical.Message{{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart("hi")}}}}
	var chunks []canonical.Chunk
	require.NoError(t, e.ChatStream(context.Background(), tgt, req, func(c canonical.Chunk) error {
		chunks = append(chunks, c)
		return nil
	}))
	var sent struct {
		Model         string `json:"model"`
		MaxTokens     int64  `json:"max_tokens"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	require.NoError(t, json.Unmarshal(sim.Stats().LastRequestBody, &sent))
	require.True(t, sent.StreamOptions.IncludeUsage)
	require.Equal(t, "sim-llama", sent.Model)
	require.Equal(t, int64(64), sent.MaxTokens)

	last := chunks[len(chunks)-1]
	require.Equal(t, &canonical.Usage{Prompt: last.Usage.Prompt, Completion: 5}, last.Usage)
	for _, c := range chunks[:len(chunks)-1] {
		require.Nil(t, c.Usage, "usage comes once, last")
	}

	// Non-streamed calls must not send stream_options (vLLM refuses them).
	_, err := e.Chat(context.Background(), tgt, &canonical.Request{Model: "alias",
		Messages: []canonical.Message{{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart("hi")}}}})
	require.NoError(t, err)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(sim.Stats().LastRequestBody, &raw))
	require.NotContains(t, raw, "stream_options")
	require.Equal(t, false, raw["stream"])
}
