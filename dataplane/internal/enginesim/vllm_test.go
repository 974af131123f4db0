package enginesim_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

func vllmCfg(cfg enginesim.Config) enginesim.Config {
	cfg.Engine = enginesim.EngineVLLM
	if len(cfg.Models) == 0 {
		cfg.Models = []enginesim.ModelSpec{
			{Name: "Qwen/Qwen3-8B", ContextLength: 4096},
			{Name: "BAAI/bge-m3", Capabilities: []string{"embedding"}, EmbeddingDim: 12},
		}
	}
	return cfg
}

func TestVLLMChatStreamSequence(t *testing.T) {
	tests := []struct {
		name       string
		opts       map[string]any // stream_options
		maxTokens  int
		wantTokens int
		wantFinish string
	}{
		{"no usage", nil, 0, 16, "stop"},
		{"include_usage", map[string]any{"include_usage": true}, 0, 16, "stop"},
		{"include_usage false", map[string]any{"include_usage": false}, 0, 16, "stop"},
		{"continuous usage", map[string]any{"include_usage": true, "continuous_usage_stats": true}, 0, 16, "stop"},
		{"length", map[string]any{"include_usage": true}, 4, 4, "length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, url := start(t, vllmCfg(enginesim.Config{}))
			body := map[string]any{"model": "Qwen/Qwen3-8B", "messages": userHi, "stream": true}
			if tc.opts != nil {
				body["stream_options"] = tc.opts
			}
			if tc.maxTokens > 0 {
				body["max_tokens"] = tc.maxTokens
			}
			resp := post(t, url+"/v1/chat/completions", body)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
			events, done := sseEvents(t, resp.Body)
			require.True(t, done, "the stream ends with data: [DONE]")

			includeUsage := tc.opts["include_usage"] == true
			continuous := includeUsage && tc.opts["continuous_usage_stats"] == true
			id := str(events[0], "id")
			require.True(t, strings.HasPrefix(id, "chatcmpl-"))
			for _, e := range events {
				require.Equal(t, id, e["id"], "one id per stream")
				require.Equal(t, "chat.completion.chunk", e["object"])
				require.Equal(t, "Qwen/Qwen3-8B", e["model"])
				_, hasUsage := e["usage"]
				require.Equal(t, continuous || len(e["choices"].([]any)) == 0, hasUsage, "usage only where vLLM sends it")
			}
			require.Equal(t, map[string]any{"role": "assistant", "content": ""}, path(events[0], "choices", 0, "delta"))
			require.Contains(t, events[0], "prompt_token_ids")

			usageChunks := 0
			if includeUsage {
				usageChunks = 1
			}
			stopChunk := 0
			if tc.wantFinish == "stop" {
				stopChunk = 1 // the end-of-sequence chunk carries no token
			}
			require.Len(t, events, 1+tc.wantTokens+stopChunk+usageChunks)

			var text strings.Builder
			tokens := events[1 : 1+tc.wantTokens]
			for i, e := range tokens {
				text.WriteString(str(e, "choices", 0, "delta", "content"))
				if continuous {
					require.Equal(t, i+1, num(e, "usage", "completion_tokens"), "running usage")
				}
			}
			require.Equal(t, enginesim.DefaultText(tc.wantTokens), text.String())
			last := events[tc.wantTokens+stopChunk]
			require.Equal(t, tc.wantFinish, str(last, "choices", 0, "finish_reason"))
			require.Contains(t, path(last, "choices", 0), "stop_reason")
			if includeUsage {
				u := events[len(events)-1]
				require.Empty(t, u["choices"])
				require.Equal(t, tc.wantTokens, num(u, "usage", "completion_tokens"))
				require.Equal(t, num(u, "usage", "prompt_tokens")+tc.wantTokens, num(u, "usage", "total_tokens"))
			}
		})
	}
}

func TestVLLMToolCallFragments(t *testing.T) {
	args := `{"city": "Tokyo", "days": 3, "units": {"temp": "celsius", "wind": "km/h"}}`
	cfg := vllmCfg(enginesim.Config{Script: func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Content: "Let me check.", ToolCalls: []enginesim.ToolCall{
			{Name: "get_weather", Arguments: args},
			{ID: "call-2", Name: "get_time", Arguments: `{"tz": "Asia/Tokyo"}`},
		}}
	}})
	_, url := start(t, cfg)
	events, done := sseEvents(t, post(t, url+"/v1/chat/completions",
		map[string]any{"model": "Qwen/Qwen3-8B", "messages": userHi, "stream": true}).Body)
	require.True(t, done)

	type call struct{ id, name, args string }
	calls := map[int]*call{}
	fragments := map[int]int{}
	var content strings.Builder
	for _, e := range events[1:] {
		delta := path(e, "choices", 0, "delta")
		content.WriteString(str(delta, "content"))
		tcs, _ := path(delta, "tool_calls").([]any)
		for _, tc := range tcs {
			i := num(tc, "index")
			if id := str(tc, "id"); id != "" {
				require.Nil(t, calls[i], "the id comes once")
				require.Equal(t, "function", str(tc, "type"))
				require.NotContains(t, path(tc, "function"), "arguments", "the name delta has no arguments")
				calls[i] = &call{id: id, name: str(tc, "function", "name")}
				continue
			}
			require.NotNil(t, calls[i], "arguments follow the name")
			require.NotContains(t, tc, "type")
			calls[i].args += str(tc, "function", "arguments")
			fragments[i]++
		}
	}
	require.Equal(t, "Let me check.", content.String())
	require.Len(t, calls, 2)
	require.True(t, strings.HasPrefix(calls[0].id, "chatcmpl-tool-"))
	require.Equal(t, "get_weather", calls[0].name)
	require.Equal(t, args, calls[0].args, "fragments reassemble to the scripted JSON")
	require.GreaterOrEqual(t, fragments[0], 3)
	require.Equal(t, "call-2", calls[1].id)
	require.JSONEq(t, `{"tz": "Asia/Tokyo"}`, calls[1].args)
	require.Equal(t, "tool_calls", str(events[len(events)-1], "choices", 0, "finish_reason"))

	m := decode(t, post(t, url+"/v1/chat/completions", map[string]any{"model": "Qwen/Qwen3-8B", "messages": userHi}).Body)
	msg := path(m, "choices", 0, "message")
	require.Equal(t, "tool_calls", str(m, "choices", 0, "finish_reason"))
	require.Equal(t, "Let me check.", str(msg, "content"))
	require.Equal(t, args, str(msg, "tool_calls", 0, "function", "arguments"), "arguments are a JSON string")
	require.Equal(t, "function", str(msg, "tool_calls", 0, "type"))
	require.Len(t, path(msg, "tool_calls"), 2)
}

func TestVLLMMaxTokens(t *testing.T) {
	tests := []struct {
		name       string
		field      string
		value      int
		wantTokens int
		wantFinish string
	}{
		{"max_tokens cuts", "max_tokens", 3, 3, "length"},
		{"max_completion_tokens cuts", "max_completion_tokens", 1, 1, "length"},
		{"max_tokens above length", "max_tokens", 100, 16, "stop"},
	}
	_, url := start(t, vllmCfg(enginesim.Config{}))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := decode(t, post(t, url+"/v1/chat/completions", map[string]any{"model": "Qwen/Qwen3-8B", "messages": userHi, tc.field: tc.value}).Body)
			require.Equal(t, "chat.completion", m["object"])
			require.Equal(t, tc.wantFinish, str(m, "choices", 0, "finish_reason"))
			require.Equal(t, enginesim.DefaultText(tc.wantTokens), str(m, "choices", 0, "message", "content"))
			require.Equal(t, tc.wantTokens, num(m, "usage", "completion_tokens"))
			require.Nil(t, path(m, "choices", 0, "message", "reasoning"))
			require.NotContains(t, path(m, "choices", 0, "message"), "tool_calls")
		})
	}
	t.Run("n choices", func(t *testing.T) {
		m := decode(t, post(t, url+"/v1/chat/completions", map[string]any{"messages": userHi, "n": 3, "max_tokens": 2}).Body)
		require.Len(t, m["choices"], 3)
		require.Equal(t, 2, num(m, "choices", 2, "index"))
		require.Equal(t, 6, num(m, "usage", "completion_tokens"))
		require.Equal(t, "Qwen/Qwen3-8B", m["model"], "the default model serves requests without one")
	})
	t.Run("completions default to 16", func(t *testing.T) {
		s, url := start(t, vllmCfg(enginesim.Config{CompletionTokens: 40}))
		m := decode(t, post(t, url+"/v1/completions", map[string]any{"model": "Qwen/Qwen3-8B", "prompt": "Tokyo is"}).Body)
		require.Equal(t, "text_completion", m["object"])
		require.Equal(t, "length", str(m, "choices", 0, "finish_reason"))
		require.Equal(t, enginesim.DefaultText(16), str(m, "choices", 0, "text"))
		require.Equal(t, int64(16), s.Stats().CompletionTokens)
	})
}

func TestVLLMCompletionStream(t *testing.T) {
	_, url := start(t, vllmCfg(enginesim.Config{CompletionTokens: 3}))
	events, done := sseEvents(t, post(t, url+"/v1/completions", map[string]any{
		"model": "Qwen/Qwen3-8B", "prompt": []string{"a", "b"}, "stream": true, "max_tokens": 10,
		"stream_options": map[string]any{"include_usage": true},
	}).Body)
	require.True(t, done)
	texts := map[int]string{}
	for _, e := range events[:len(events)-1] {
		require.Equal(t, "text_completion", e["object"])
		require.NotContains(t, e, "usage")
		texts[num(e, "choices", 0, "index")] += str(e, "choices", 0, "text")
	}
	require.Equal(t, map[int]string{0: enginesim.DefaultText(3), 1: enginesim.DefaultText(3)}, texts, "one choice per prompt")
	require.Equal(t, 6, num(events[len(events)-1], "usage", "completion_tokens"))
}

func TestVLLMReasoningField(t *testing.T) {
	script := func(enginesim.Request) *enginesim.Reply {
		return &enginesim.Reply{Thinking: "step by step", Content: "391"}
	}
	for _, legacy := range []bool{false, true} {
		key := map[bool]string{false: "reasoning", true: "reasoning_content"}[legacy]
		t.Run(key, func(t *testing.T) {
			_, url := start(t, vllmCfg(enginesim.Config{Script: script, LegacyReasoningField: legacy}))
			m := decode(t, post(t, url+"/v1/chat/completions", map[string]any{"model": "Qwen/Qwen3-8B", "messages": userHi}).Body)
			msg := path(m, "choices", 0, "message").(map[string]any)
			require.Equal(t, "step by step", msg[key])
			require.Equal(t, "391", msg["content"])
			require.Len(t, msg, 7, "role, content, refusal, annotations, audio, function_call and the reasoning field")
			require.Equal(t, 4, num(m, "usage", "completion_tokens"), "reasoning tokens count")

			events, _ := sseEvents(t, post(t, url+"/v1/chat/completions", map[string]any{"model": "Qwen/Qwen3-8B", "messages": userHi, "stream": true}).Body)
			var reasoning strings.Builder
			for _, e := range events {
				reasoning.WriteString(str(e, "choices", 0, "delta", key))
			}
			require.Equal(t, "step by step", reasoning.String())
		})
	}
}

func TestVLLMErrors(t *testing.T) {
	cfg := vllmCfg(enginesim.Config{Script: func(req enginesim.Request) *enginesim.Reply {
		if len(req.Messages) > 0 && strings.HasPrefix(req.Messages[0].Content, "status ") {
			code, _ := strconv.Atoi(strings.TrimPrefix(req.Messages[0].Content, "status "))
			return &enginesim.Reply{Status: code, ErrorMessage: "scripted failure"}
		}
		return nil
	}})
	long := strings.Repeat("x", 4*5000)
	tests := []struct {
		name    string
		path    string
		body    any
		status  int
		errType string
		msg     string // prefix
	}{
		{"unknown model", "/v1/chat/completions", map[string]any{"model": "gpt-4", "messages": userHi}, 404, "NotFoundError", "The model `gpt-4` does not exist."},
		{"max_tokens too large", "/v1/chat/completions", map[string]any{"model": "Qwen/Qwen3-8B", "messages": userHi, "max_tokens": 5000}, 400, "BadRequestError",
			"'max_tokens' or 'max_completion_tokens' is too large: 5000. This model's maximum context length is 4096 tokens and your request has 6 input tokens (5000 > 4096 - 6)."},
		{"prompt too long", "/v1/chat/completions", map[string]any{"model": "Qwen/Qwen3-8B", "messages": []map[string]any{{"role": "user", "content": long}}}, 400, "BadRequestError", "This model's maximum context length is 4096 tokens. However, your request has 5003 input tokens."},
		{"missing messages", "/v1/chat/completions", map[string]any{"model": "Qwen/Qwen3-8B"}, 400, "BadRequestError", "[{'type': 'missing', 'loc': ('body', 'messages')"},
		{"bad JSON", "/v1/chat/completions", `{"model":`, 400, "BadRequestError", "[{'type': 'json_invalid'"},
		{"stream_options without stream", "/v1/chat/completions", map[string]any{"messages": userHi, "stream_options": map[string]any{"include_usage": true}}, 400, "BadRequestError", "Stream options can only be defined when `stream=True`."},
		{"chat on embedding model", "/v1/chat/completions", map[string]any{"model": "BAAI/bge-m3", "messages": userHi}, 400, "BadRequestError", "The model does not support Chat Completions API"},
		{"embeddings on chat model", "/v1/embeddings", map[string]any{"model": "Qwen/Qwen3-8B", "input": "x"}, 400, "BadRequestError", "The model does not support Embeddings API"},
		{"scripted 500", "/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": "status 500"}}}, 500, "InternalServerError", "scripted failure"},
		{"scripted 503 stream", "/v1/chat/completions", map[string]any{"stream": true, "messages": []map[string]any{{"role": "user", "content": "status 503"}}}, 503, "ServiceUnavailableError", "scripted failure"},
		{"scripted 429", "/v1/completions", map[string]any{"prompt": "status 429"}, 429, "TooManyRequestsError", "scripted failure"},
	}
	_, url := start(t, cfg)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, url+tc.path, tc.body)
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			m := decode(t, resp.Body)
			require.Len(t, m, 1, "errors are wrapped in one \"error\" object")
			e := m["error"].(map[string]any)
			require.Equal(t, tc.errType, e["type"])
			require.Equal(t, tc.status, num(e, "code"))
			require.Contains(t, e, "param")
			require.Nil(t, e["param"])
			require.True(t, strings.HasPrefix(str(e, "message"), tc.msg), "message %q", e["message"])
		})
	}
	t.Run("unknown route", func(t *testing.T) {
		resp := get(t, url+"/v1/nope")
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.Equal(t, map[string]any{"detail": "Not Found"}, decode(t, resp.Body))
	})
}

func TestVLLMMetricsFollowLoad(t *testing.T) {
	s, url := start(t, vllmCfg(enginesim.Config{InterTokenDelay: 10 * time.Millisecond, CompletionTokens: 500, MaxRunning: 1}))
	metric := func(name string) float64 {
		resp := get(t, url+"/metrics")
		require.Equal(t, "text/plain; version=0.0.4; charset=utf-8", resp.Header.Get("Content-Type"))
		sc := bufio.NewScanner(resp.Body)
		prefix := name + `{model_name="Qwen/Qwen3-8B",engine="0"`
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, prefix) {
				v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				require.NoError(t, err)
				return v
			}
		}
		t.Fatalf("metric %s not found", name)
		return 0
	}
	require.Zero(t, metric("vllm:num_requests_running"))
	require.Zero(t, metric("vllm:kv_cache_usage_perc"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := map[string]any{"model": "Qwen/Qwen3-8B", "messages": userHi, "stream": true}
	first := postCtx(t, ctx, url+"/v1/chat/completions", body)
	second := make(chan struct{})
	go func() {
		defer close(second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions",
			strings.NewReader(`{"messages":[{"role":"user","content":"hi"}],"stream":true}`))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}()
	require.Eventually(t, func() bool {
		return metric("vllm:num_requests_running") == 1 && metric("vllm:num_requests_waiting") == 1
	}, 5*time.Second, 10*time.Millisecond, "one runs, one waits for the slot")
	require.Eventually(t, func() bool { return metric("vllm:generation_tokens_total") >= 3 }, 5*time.Second, 10*time.Millisecond)
	require.Positive(t, metric("vllm:kv_cache_usage_perc"))
	require.Positive(t, metric("vllm:prompt_tokens_total"))

	cancel()
	_, _ = io.Copy(io.Discard, first.Body)
	<-second
	require.Eventually(t, func() bool {
		return metric("vllm:num_requests_running") == 0 && metric("vllm:num_requests_waiting") == 0 &&
			metric("vllm:kv_cache_usage_perc") == 0
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 2, s.Stats().Cancelled)
}

func TestVLLMPoolingAndInfo(t *testing.T) {
	_, url := start(t, vllmCfg(enginesim.Config{}))
	resp := get(t, url+"/health")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	require.Empty(t, b)
	require.Equal(t, enginesim.VLLMVersion, decode(t, get(t, url+"/version").Body)["version"])

	models := decode(t, get(t, url+"/v1/models").Body)
	require.Equal(t, "list", models["object"])
	require.Equal(t, "Qwen/Qwen3-8B", str(models, "data", 0, "id"))
	require.Equal(t, 4096, num(models, "data", 0, "max_model_len"))
	require.Equal(t, "vllm", str(models, "data", 0, "owned_by"))

	emb := decode(t, post(t, url+"/v1/embeddings", map[string]any{"model": "BAAI/bge-m3", "input": []string{"a b", "c"}}).Body)
	require.Len(t, emb["data"], 2)
	require.Len(t, path(emb, "data", 1, "embedding"), 12)
	require.Equal(t, "embedding", str(emb, "data", 1, "object"))
	b64 := decode(t, post(t, url+"/v1/embeddings", map[string]any{"model": "BAAI/bge-m3", "input": "a", "encoding_format": "base64"}).Body)
	require.Len(t, str(b64, "data", 0, "embedding"), 64, "12 float32 values in base64")

	docs := []string{"the cat sat", "Paris is the capital of France", "dogs bark"}
	for _, p := range []string{"/rerank", "/v1/rerank"} {
		rr := decode(t, post(t, url+p, map[string]any{"model": "BAAI/bge-m3", "query": "capital of France", "documents": docs, "top_n": 2}).Body)
		require.Len(t, rr["results"], 2)
		require.Equal(t, 1, num(rr, "results", 0, "index"), "the best match comes first")
		require.Equal(t, docs[1], str(rr, "results", 0, "document", "text"))
		require.Positive(t, num(rr, "usage", "total_tokens"))
	}
	for _, p := range []string{"/score", "/v1/score"} {
		sc := decode(t, post(t, url+p, map[string]any{"model": "BAAI/bge-m3", "text_1": "capital of France", "text_2": docs}).Body)
		require.Len(t, sc["data"], 3)
		require.Equal(t, "score", str(sc, "data", 0, "object"))
		require.Greater(t, path(sc, "data", 1, "score").(float64), path(sc, "data", 0, "score").(float64))
	}
	tok := decode(t, post(t, url+"/tokenize", map[string]any{"model": "Qwen/Qwen3-8B", "prompt": "hello world"}).Body)
	require.Equal(t, enginesim.PromptTokens([]enginesim.Message{{Content: "hello world"}}), num(tok, "count"))
	require.Len(t, tok["tokens"], num(tok, "count"))
}
