package enginesim_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

var userHi = []map[string]any{{"role": "user", "content": "hello there"}}

func TestOllamaChatStream(t *testing.T) {
	tests := []struct {
		name       string
		stream     any // nil: absent (Ollama streams by default)
		numPredict int
		wantTokens int
		wantReason string
	}{
		{"default stream", nil, 0, 16, "stop"},
		{"explicit stream", true, 0, 16, "stop"},
		{"num_predict cuts", nil, 5, 5, "length"},
		{"num_predict above length", true, 40, 16, "stop"},
		{"num_predict -1 is unlimited", true, -1, 16, "stop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, url := start(t, enginesim.Config{})
			body := map[string]any{"model": "sim-llama", "messages": userHi}
			if tc.stream != nil {
				body["stream"] = tc.stream
			}
			if tc.numPredict != 0 {
				body["options"] = map[string]any{"num_predict": tc.numPredict}
			}
			resp := post(t, url+"/api/chat", body)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
			chunks := ndjson(t, resp.Body)
			require.Len(t, chunks, tc.wantTokens+1)

			var content strings.Builder
			for _, c := range chunks[:len(chunks)-1] {
				require.Equal(t, false, c["done"])
				require.Equal(t, "sim-llama", c["model"])
				require.Equal(t, "assistant", str(c, "message", "role"))
				require.NotContains(t, c, "done_reason")
				require.NotContains(t, c, "eval_count")
				content.WriteString(str(c, "message", "content"))
			}
			final := chunks[len(chunks)-1]
			require.Equal(t, true, final["done"])
			require.Equal(t, tc.wantReason, final["done_reason"])
			require.Empty(t, str(final, "message", "content"))
			require.Equal(t, len(chunks)-1, num(final, "eval_count"), "eval_count equals the token chunks")
			require.Equal(t, enginesim.PromptTokens([]enginesim.Message{{Role: "user", Content: "hello there"}}),
				num(final, "prompt_eval_count"))
			for _, k := range []string{"total_duration", "load_duration", "prompt_eval_duration", "eval_duration"} {
				require.Positive(t, num(final, k), k)
			}
			require.Equal(t, enginesim.DefaultText(tc.wantTokens), content.String())
		})
	}
}

func TestOllamaChatNonStream(t *testing.T) {
	s, url := start(t, enginesim.Config{CompletionTokens: 7})
	resp := post(t, url+"/api/chat", map[string]any{"model": "sim-llama:latest", "messages": userHi, "stream": false})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	m := decode(t, resp.Body)
	require.Equal(t, "sim-llama:latest", m["model"], "the model is echoed as sent")
	require.Equal(t, true, m["done"])
	require.Equal(t, "stop", m["done_reason"])
	require.Equal(t, enginesim.DefaultText(7), str(m, "message", "content"))
	require.Equal(t, 7, num(m, "eval_count"))

	st := s.Stats()
	require.Equal(t, 1, st.Requests["/api/chat"])
	require.Equal(t, int64(7), st.CompletionTokens)
	require.Contains(t, string(st.LastRequestBody), `"stream":false`)
	require.Zero(t, st.ActiveStreams)
}

func TestOllamaToolCallIsWhole(t *testing.T) {
	args := `{"city":"Tokyo","days":3,"units":{"temp":"celsius"}}`
	cfg := enginesim.Config{Script: func(req enginesim.Request) *enginesim.Reply {
		if !strings.Contains(string(req.Tools), "get_weather") {
			return nil
		}
		return &enginesim.Reply{ToolCalls: []enginesim.ToolCall{{Name: "get_weather", Arguments: args}}}
	}}
	tools := []map[string]any{{"type": "function", "function": map[string]any{"name": "get_weather"}}}
	for _, stream := range []bool{true, false} {
		t.Run(map[bool]string{true: "stream", false: "non-stream"}[stream], func(t *testing.T) {
			_, url := start(t, cfg)
			resp := post(t, url+"/api/chat", map[string]any{"model": "sim-llama", "messages": userHi, "tools": tools, "stream": stream})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			var msgs []any
			var final map[string]any
			if stream {
				chunks := ndjson(t, resp.Body)
				require.Len(t, chunks, 2, "one chunk with the whole call, then the final one")
				msgs = append(msgs, chunks[0]["message"])
				require.Equal(t, false, chunks[0]["done"])
				final = chunks[1]
				require.Nil(t, path(final, "message", "tool_calls"))
			} else {
				final = decode(t, resp.Body)
				msgs = append(msgs, final["message"])
			}
			calls, _ := path(msgs[0], "tool_calls").([]any)
			require.Len(t, calls, 1)
			id := str(calls[0], "id")
			require.True(t, strings.HasPrefix(id, "call_") && len(id) == 13, "id %q", id)
			require.Equal(t, "get_weather", str(calls[0], "function", "name"))
			require.Equal(t, 0, num(calls[0], "function", "index"))
			gotArgs, err := json.Marshal(path(calls[0], "function", "arguments"))
			require.NoError(t, err)
			require.JSONEq(t, args, string(gotArgs), "arguments are a parsed object")
			require.Empty(t, str(msgs[0], "content"))
			require.Equal(t, "stop", final["done_reason"], "Ollama reports tool calls as a plain stop")
			require.Positive(t, num(final, "eval_count"))
		})
	}
}

func TestOllamaThinking(t *testing.T) {
	cfg := enginesim.Config{
		Models: []enginesim.ModelSpec{{Name: "qwen3", Capabilities: []string{"completion", "thinking"}}},
		Script: func(enginesim.Request) *enginesim.Reply {
			return &enginesim.Reply{Thinking: "Seventeen times twenty-three", Content: "It is 391."}
		},
	}
	_, url := start(t, cfg)
	chunks := ndjson(t, post(t, url+"/api/chat", map[string]any{"model": "qwen3", "messages": userHi, "think": true}).Body)
	var thinking, content strings.Builder
	sawContent := false
	for _, c := range chunks[:len(chunks)-1] {
		if th := str(c, "message", "thinking"); th != "" {
			require.False(t, sawContent, "thinking comes before content")
			require.Empty(t, str(c, "message", "content"))
			thinking.WriteString(th)
		}
		if ct := str(c, "message", "content"); ct != "" {
			sawContent = true
			content.WriteString(ct)
		}
	}
	require.Equal(t, "Seventeen times twenty-three", thinking.String())
	require.Equal(t, "It is 391.", content.String())
	require.Equal(t, len(chunks)-1, num(chunks[len(chunks)-1], "eval_count"))

	m := decode(t, post(t, url+"/api/chat", map[string]any{"model": "qwen3", "messages": userHi, "think": false, "stream": false}).Body)
	require.Equal(t, "It is 391.", str(m, "message", "content"))
	require.NotContains(t, m["message"], "thinking", "think:false suppresses thinking")
}

func TestOllamaPsAfterUse(t *testing.T) {
	cfg := enginesim.Config{Models: []enginesim.ModelSpec{
		{Name: "sim-llama", ContextLength: 4096},
		{Name: "warm:7b", Loaded: true},
	}}
	_, url := start(t, cfg)
	names := func() []string {
		var out []string
		for _, m := range decode(t, get(t, url+"/api/ps").Body)["models"].([]any) {
			out = append(out, str(m, "name"))
		}
		return out
	}
	require.Equal(t, []string{"warm:7b"}, names())

	post(t, url+"/api/chat", map[string]any{"model": "sim-llama", "messages": userHi, "stream": false})
	ps := decode(t, get(t, url+"/api/ps").Body)
	require.ElementsMatch(t, []string{"sim-llama:latest", "warm:7b"}, names())
	for _, m := range ps["models"].([]any) {
		if str(m, "name") == "sim-llama:latest" {
			require.Equal(t, 4096, num(m, "context_length"))
			exp, err := time.Parse(time.RFC3339Nano, str(m, "expires_at"))
			require.NoError(t, err)
			require.WithinDuration(t, exp, time.Now().Add(5*time.Minute), time.Minute)
		}
	}

	resp := post(t, url+"/api/chat", map[string]any{"model": "sim-llama", "keep_alive": 0})
	require.Equal(t, "unload", decode(t, resp.Body)["done_reason"])
	require.Equal(t, []string{"warm:7b"}, names())
}

func TestOllamaErrors(t *testing.T) {
	cfg := enginesim.Config{
		Models: []enginesim.ModelSpec{
			{Name: "sim-llama"},
			{Name: "plain", Capabilities: []string{"completion"}},
			{Name: "nomic-embed-text", Capabilities: []string{"embedding"}},
		},
		Script: func(req enginesim.Request) *enginesim.Reply {
			if len(req.Messages) > 0 && req.Messages[0].Content == "fail" {
				return &enginesim.Reply{Status: http.StatusServiceUnavailable, ErrorMessage: "server busy, please try again"}
			}
			return nil
		},
	}
	tools := []map[string]any{{"type": "function", "function": map[string]any{"name": "f"}}}
	tests := []struct {
		name   string
		path   string
		body   any
		status int
		msg    string
	}{
		{"unknown model", "/api/chat", map[string]any{"model": "nope", "messages": userHi}, 404, "model 'nope' not found"},
		{"unknown model show", "/api/show", map[string]any{"model": "nope"}, 404, "model 'nope' not found"},
		{"truncated JSON", "/api/chat", `{"model":"sim-llama","messages":[`, 400, "unexpected EOF"},
		{"empty body", "/api/generate", ``, 400, "missing request body"},
		{"no model", "/api/chat", map[string]any{"messages": userHi}, 400, "model is required"},
		{"thinking unsupported", "/api/chat", map[string]any{"model": "sim-llama", "messages": userHi, "think": true}, 400, `"sim-llama" does not support thinking`},
		{"tools unsupported", "/api/chat", map[string]any{"model": "plain", "messages": userHi, "tools": tools}, 400, "registry.ollama.ai/library/plain:latest does not support tools"},
		{"chat on embedding model", "/api/chat", map[string]any{"model": "nomic-embed-text", "messages": userHi}, 400, `"nomic-embed-text" does not support chat`},
		{"scripted engine error", "/api/chat", map[string]any{"model": "sim-llama", "messages": []map[string]any{{"role": "user", "content": "fail"}}}, 503, "server busy, please try again"},
		{"raw with system", "/api/generate", map[string]any{"model": "sim-llama", "prompt": "x", "raw": true, "system": "s"}, 400, "raw mode does not support template, system, or context"},
	}
	_, url := start(t, cfg)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, url+tc.path, tc.body)
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
			require.Equal(t, map[string]any{"error": tc.msg}, decode(t, resp.Body))
		})
	}
}

func TestOllamaGenerate(t *testing.T) {
	_, url := start(t, enginesim.Config{CompletionTokens: 4})
	chunks := ndjson(t, post(t, url+"/api/generate", map[string]any{"model": "sim-llama", "prompt": "why?", "system": "be brief"}).Body)
	require.Len(t, chunks, 5)
	var text strings.Builder
	for _, c := range chunks[:4] {
		require.NotContains(t, c, "message")
		text.WriteString(str(c, "response"))
	}
	require.Equal(t, enginesim.DefaultText(4), text.String())
	final := chunks[4]
	require.Empty(t, final["response"])
	require.Equal(t, "stop", final["done_reason"])
	prompt := enginesim.PromptTokens([]enginesim.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "why?"}})
	require.Equal(t, prompt, num(final, "prompt_eval_count"))
	require.Len(t, final["context"], prompt+4)

	raw := decode(t, post(t, url+"/api/generate", map[string]any{"model": "sim-llama", "prompt": "why?", "raw": true, "stream": false}).Body)
	require.Equal(t, enginesim.DefaultText(4), raw["response"])
	require.NotContains(t, raw, "context", "raw mode returns no context")

	load := decode(t, post(t, url+"/api/generate", map[string]any{"model": "sim-llama"}).Body)
	require.Equal(t, "load", load["done_reason"])
}

func TestOllamaEmbed(t *testing.T) {
	cfg := enginesim.Config{Models: []enginesim.ModelSpec{{Name: "nomic-embed-text", Capabilities: []string{"embedding"}, EmbeddingDim: 16}}}
	_, url := start(t, cfg)
	tests := []struct {
		name  string
		input any
		dims  int
		want  int
		size  int
	}{
		{"string", "hello", 0, 1, 16},
		{"list", []string{"hello", "world", "!"}, 0, 3, 16},
		{"dimensions", "hello", 4, 1, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := decode(t, post(t, url+"/api/embed", map[string]any{"model": "nomic-embed-text", "input": tc.input, "dimensions": tc.dims}).Body)
			vecs := m["embeddings"].([]any)
			require.Len(t, vecs, tc.want)
			for _, v := range vecs {
				require.Len(t, v, tc.size)
				var norm float64
				for _, x := range v.([]any) {
					norm += x.(float64) * x.(float64)
				}
				require.InDelta(t, 1, norm, 1e-3, "vectors are normalized")
			}
			require.Positive(t, num(m, "prompt_eval_count"))
		})
	}
	a := decode(t, post(t, url+"/api/embed", map[string]any{"model": "nomic-embed-text", "input": "same"}).Body)
	b := decode(t, post(t, url+"/api/embed", map[string]any{"model": "nomic-embed-text", "input": "same"}).Body)
	require.Equal(t, a["embeddings"], b["embeddings"], "vectors are deterministic")

	legacy := decode(t, post(t, url+"/api/embeddings", map[string]any{"model": "nomic-embed-text", "prompt": "hello"}).Body)
	require.Len(t, legacy["embedding"], 16)
	resp := post(t, url+"/api/embed", map[string]any{"model": "nomic-embed-text", "input": 5})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "invalid input type", decode(t, resp.Body)["error"])
}

func TestOllamaInfoEndpoints(t *testing.T) {
	_, url := start(t, enginesim.Config{Models: []enginesim.ModelSpec{{Name: "sim-llama", ContextLength: 2048, Capabilities: []string{"completion", "vision"}}}})
	resp := get(t, url+"/")
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, "Ollama is running", string(body))
	head, err := http.Head(url + "/")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, head.StatusCode)
	_ = head.Body.Close()

	require.Equal(t, enginesim.OllamaVersion, decode(t, get(t, url+"/api/version").Body)["version"])
	require.Contains(t, enginesim.OllamaVersion, "sim")

	tags := decode(t, get(t, url+"/api/tags").Body)
	require.Equal(t, "sim-llama:latest", str(tags, "models", 0, "name"))
	require.Equal(t, "gguf", str(tags, "models", 0, "details", "format"))
	require.Len(t, str(tags, "models", 0, "digest"), 64)

	show := decode(t, post(t, url+"/api/show", map[string]any{"name": "sim-llama"}).Body)
	require.Equal(t, []any{"completion", "vision"}, show["capabilities"])
	require.Equal(t, 2048, num(show, "model_info", "llama.context_length"))
	require.Equal(t, "llama", str(show, "model_info", "general.architecture"))
}

func TestOllamaTTFT(t *testing.T) {
	const ttft = 150 * time.Millisecond
	_, url := start(t, enginesim.Config{TTFT: ttft, CompletionTokens: 2})
	began := time.Now()
	resp := post(t, url+"/api/chat", map[string]any{"model": "sim-llama", "messages": userHi})
	line := make([]byte, 1)
	_, err := io.ReadFull(resp.Body, line)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(began), ttft)
}

func TestOllamaCancelStopsStream(t *testing.T) {
	s, url := start(t, enginesim.Config{InterTokenDelay: 20 * time.Millisecond, CompletionTokens: 1000})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := postCtx(t, ctx, url+"/api/chat", map[string]any{"model": "sim-llama", "messages": userHi})
	buf := make([]byte, 64)
	_, err := resp.Body.Read(buf)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.Stats().ActiveStreams == 1 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.Eventually(t, func() bool {
		st := s.Stats()
		return st.Cancelled == 1 && st.ActiveStreams == 0 && st.Running == 0
	}, 5*time.Second, 5*time.Millisecond)
	require.Less(t, s.Stats().CompletionTokens, int64(1000), "generation stopped early")
}

func TestOllamaDropMidStream(t *testing.T) {
	s, url := start(t, enginesim.Config{Script: func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Content: "one two three four", ErrorMessage: enginesim.DropConnection}
	}})
	resp := post(t, url+"/api/chat", map[string]any{"model": "sim-llama", "messages": userHi})
	body, err := io.ReadAll(resp.Body)
	require.Error(t, err, "the connection is cut")
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	require.Len(t, lines, 1, "exactly one chunk arrives")
	require.Contains(t, lines[0], `"content":"one"`)
	require.Eventually(t, func() bool { return s.Stats().Dropped == 1 && s.Stats().ActiveStreams == 0 }, 5*time.Second, 5*time.Millisecond)

	_, err = http.Post(url+"/api/chat", "application/json",
		strings.NewReader(`{"model":"sim-llama","messages":[{"role":"user","content":"x"}],"stream":false}`))
	require.Error(t, err, "a non-streaming request gets no response")
}
