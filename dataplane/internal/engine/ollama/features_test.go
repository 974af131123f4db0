package ollama_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

func hi(stream bool) *canonical.Request {
	return &canonical.Request{Model: "m", Stream: stream,
		Messages: []canonical.Message{{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart("hi")}}}}
}

// TestSeveralChoices: Ollama has no n, so n choices are n calls, each with
// its own seed, merged into one answer with n choices.
func TestSeveralChoices(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seeds []float64
	sim := enginesim.New(enginesim.Config{Engine: enginesim.EngineOllama, CompletionTokens: 3, Script: func(r enginesim.Request) *enginesim.Reply {
		mu.Lock()
		defer mu.Unlock()
		if seed, ok := r.Options["seed"].(float64); ok {
			seeds = append(seeds, seed)
		}
		return &enginesim.Reply{Content: "answer"}
	}})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	e := ollama.New(ollama.Config{Client: srv.Client()})
	tgt := engine.Target{URL: srv.URL, Model: "sim-llama"}
	seed := int64(10)

	req := hi(false)
	req.Sampling.N, req.Sampling.Seed = 3, &seed
	resp, err := e.Chat(context.Background(), tgt, req)
	require.NoError(t, err)
	require.Len(t, resp.Choices, 3)
	for i, ch := range resp.Choices {
		require.Equal(t, i, ch.Index)
		require.Equal(t, "answer", ch.Message.Text())
	}
	require.Equal(t, []float64{10, 11, 12}, seeds)
	single, err := e.Chat(context.Background(), tgt, hi(false))
	require.NoError(t, err)
	require.Equal(t, single.Usage.Prompt, resp.Usage.Prompt, "the prompt is counted once")
	require.Equal(t, 3*single.Usage.Completion, resp.Usage.Completion, "completions are summed")

	sreq := hi(true)
	sreq.Sampling.N = 2
	var acc canonical.Accumulator
	var usages int
	require.NoError(t, e.ChatStream(context.Background(), tgt, sreq, func(c canonical.Chunk) error {
		if c.Usage != nil {
			usages++
		}
		acc.Add(c)
		return nil
	}))
	got := acc.Response()
	require.Len(t, got.Choices, 2)
	require.Equal(t, "answer", got.Choices[1].Message.Text())
	require.Equal(t, canonical.FinishStop, got.Choices[1].FinishReason)
	require.Equal(t, 1, usages, "one usage chunk for all choices")
	require.Equal(t, 2*single.Usage.Completion, got.Usage.Completion)
}

// TestThinkLevels: Ollama refuses a thinking level for models other than
// gpt-oss, so only gpt-oss gets one; a budget becomes a level there.
func TestThinkLevels(t *testing.T) {
	t.Parallel()
	sim := enginesim.New(enginesim.Config{Engine: enginesim.EngineOllama, CompletionTokens: 1, Models: []enginesim.ModelSpec{
		{Name: "qwen3", Capabilities: []string{"completion", "thinking"}},
		{Name: "gpt-oss:20b", Capabilities: []string{"completion", "thinking"}},
	}})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	e := ollama.New(ollama.Config{Client: srv.Client()})
	tests := []struct {
		model string
		think canonical.Thinking
		want  string
	}{
		{"qwen3", canonical.Thinking{Enabled: true, Effort: "high"}, `true`},
		{"qwen3", canonical.Thinking{Enabled: false}, `false`},
		{"qwen3", canonical.Thinking{Enabled: true, BudgetTokens: 20000}, `true`},
		{"gpt-oss:20b", canonical.Thinking{Enabled: true, Effort: "low"}, `"low"`},
		{"gpt-oss:20b", canonical.Thinking{Enabled: true, BudgetTokens: 8000}, `"medium"`},
		{"gpt-oss:20b", canonical.Thinking{Enabled: true}, `true`},
	}
	for _, tc := range tests {
		req := hi(false)
		think := tc.think
		req.Think = &think
		_, err := e.Chat(context.Background(), engine.Target{URL: srv.URL, Model: tc.model}, req)
		require.NoError(t, err, "%+v", tc)
		var sent struct {
			Think json.RawMessage `json:"think"`
		}
		require.NoError(t, json.Unmarshal(sim.Stats().LastRequestBody, &sent))
		require.JSONEq(t, tc.want, string(sent.Think), "%+v", tc)
		require.Equal(t, tc.think, *req.Think, "the caller's request is not changed")
	}
}
