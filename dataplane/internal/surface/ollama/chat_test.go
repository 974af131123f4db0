package ollama_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	surface "github.com/mindrouter/mindrouter/dataplane/internal/surface/ollama"
)

// durations are the metrics of a done line; the surface measures them all.
var durations = []string{"total_duration", "load_duration", "prompt_eval_duration", "eval_duration"}

func TestChatWhole(t *testing.T) {
	t.Parallel()
	for _, eng := range engines {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, sim(t, 1, eng, nil))
			g.fake.SetQueuePosition(3)
			resp := g.post(t, "/api/chat", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hello"}]}`)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "3", resp.Header.Get(surface.QueuePositionHeader))
			require.Equal(t, "true", resp.Header.Get(surface.SimulatedHeader))
			m := readJSON(t, resp)
			require.Equal(t, "llama3.2", m["model"], "clients see the name they asked for")
			require.Equal(t, "2025-01-01T00:00:00.001Z", m["created_at"])
			require.Equal(t, true, m["done"])
			require.Equal(t, "stop", m["done_reason"])
			msg := m["message"].(map[string]any)
			require.Equal(t, "assistant", msg["role"])
			require.Equal(t, enginesim.DefaultText(5), msg["content"])
			require.EqualValues(t, 5, m["eval_count"], "the engine's exact count")
			require.Positive(t, m["prompt_eval_count"])
			for _, k := range []string{"total_duration", "eval_duration"} {
				require.Positive(t, m[k], k)
			}
			admit := g.fake.Admits()[0]
			require.Equal(t, "/api/chat", admit.Endpoint)
			require.Equal(t, relay.OperationChat, admit.Operation)
			require.Equal(t, "mr2_key", admit.Credential)
			require.False(t, admit.Stream)
		})
	}
}

// TestChatStreamsByDefault: without "stream", Ollama streams NDJSON, and so
// does the gateway; the done line carries the exact counts and the timings.
func TestChatStreamsByDefault(t *testing.T) {
	t.Parallel()
	for _, eng := range engines {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, sim(t, 1, eng, nil))
			resp := g.post(t, "/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hello"}],"options":{"num_predict":3}}`)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			lines := readLines(t, resp)
			require.Len(t, lines, 4, "one line per token, then done")
			var text strings.Builder
			for _, l := range lines[:3] {
				require.Equal(t, false, l["done"])
				require.ElementsMatch(t, []string{"model", "created_at", "message", "done"}, keys(l))
				text.WriteString(l["message"].(map[string]any)["content"].(string))
			}
			require.Equal(t, enginesim.DefaultText(3), text.String())
			last := lines[3]
			require.Equal(t, true, last["done"])
			require.Equal(t, "length", last["done_reason"])
			require.EqualValues(t, 3, last["eval_count"])
			require.Positive(t, last["prompt_eval_count"])
			for _, k := range durations {
				require.Positive(t, last[k], k)
			}
			require.Equal(t, map[string]any{"role": "assistant", "content": ""}, last["message"])
			require.True(t, g.fake.Admits()[0].Stream)
		})
	}
}

// TestGenerate: /api/generate answers in its own shape ("response", not
// "message"), streamed and not, from both engines.
func TestGenerate(t *testing.T) {
	t.Parallel()
	for _, eng := range engines {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			var seen []enginesim.Message
			g := newGateway(t, sim(t, 1, eng, func(r enginesim.Request) *enginesim.Reply {
				seen = r.Messages
				return nil
			}))
			resp := g.post(t, "/api/generate", `{"model":"llama3.2","prompt":"Why?","system":"Be brief.","stream":false}`)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			m := readJSON(t, resp)
			require.Equal(t, enginesim.DefaultText(5), m["response"])
			require.NotContains(t, m, "message")
			require.Equal(t, true, m["done"])
			require.EqualValues(t, 5, m["eval_count"])
			require.Equal(t, []enginesim.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Why?"}}, seen)
			require.Equal(t, "/api/generate", g.fake.Admits()[0].Endpoint)
			require.Equal(t, relay.OperationCompletion, g.fake.Admits()[0].Operation)

			resp = g.post(t, "/api/generate", `{"model":"llama3.2","prompt":"Why?"}`)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			lines := readLines(t, resp)
			require.Len(t, lines, 6)
			var text strings.Builder
			for _, l := range lines {
				require.NotContains(t, l, "message", "generate lines are not chat-shaped")
				text.WriteString(l["response"].(string))
			}
			require.Equal(t, enginesim.DefaultText(5), text.String())
			require.Equal(t, true, lines[5]["done"])
			require.Equal(t, "stop", lines[5]["done_reason"])
			require.EqualValues(t, 5, lines[5]["eval_count"])
		})
	}
}

// TestStreamedToolCalls: vLLM's argument fragments and Ollama's whole calls
// both reach Ollama clients as whole calls with parsed arguments.
func TestStreamedToolCalls(t *testing.T) {
	t.Parallel()
	script := func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Content: "Checking.", ToolCalls: []enginesim.ToolCall{
			{Name: "get_weather", Arguments: `{"city":"Tokyo"}`}, {Name: "get_time", Arguments: `{"zone":"UTC","exact":true}`},
		}}
	}
	body := `{"model":"llama3.2","messages":[{"role":"user","content":"weather?"}],` +
		`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`
	for _, eng := range engines {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, sim(t, 1, eng, script))
			lines := readLines(t, g.post(t, "/api/chat", body+`}`))
			var calls []any
			for _, l := range lines {
				if tc, ok := l["message"].(map[string]any)["tool_calls"].([]any); ok {
					calls = append(calls, tc...)
				}
			}
			require.Len(t, calls, 2)
			for i, want := range []string{`{"city":"Tokyo"}`, `{"zone":"UTC","exact":true}`} {
				c := calls[i].(map[string]any)
				require.NotEmpty(t, c["id"])
				fn := c["function"].(map[string]any)
				require.EqualValues(t, i, fn["index"])
				args, err := json.Marshal(fn["arguments"])
				require.NoError(t, err)
				require.JSONEq(t, want, string(args))
			}
			require.Equal(t, "stop", lines[len(lines)-1]["done_reason"], "Ollama says stop after tool calls")

			m := readJSON(t, g.post(t, "/api/chat", body+`,"stream":false}`))
			msg := m["message"].(map[string]any)
			require.Equal(t, "Checking.", msg["content"])
			require.Len(t, msg["tool_calls"], 2)
		})
	}
}

func TestThinking(t *testing.T) {
	t.Parallel()
	script := func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Thinking: "Let me think.", Content: "391"}
	}
	for _, eng := range engines {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, sim(t, 1, eng, script))
			m := readJSON(t, g.post(t, "/api/chat", `{"model":"qwen3","think":true,"stream":false,"messages":[{"role":"user","content":"17*23?"}]}`))
			msg := m["message"].(map[string]any)
			require.Equal(t, "Let me think.", msg["thinking"])
			require.Equal(t, "391", msg["content"])

			lines := readLines(t, g.post(t, "/api/generate", `{"model":"qwen3","think":"high","prompt":"17*23?"}`))
			var thinking, text strings.Builder
			for _, l := range lines {
				if s, ok := l["thinking"].(string); ok {
					thinking.WriteString(s)
				}
				text.WriteString(l["response"].(string))
			}
			require.Equal(t, "Let me think.", thinking.String())
			require.Equal(t, "391", text.String())
		})
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
