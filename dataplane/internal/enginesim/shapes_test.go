package enginesim_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// shapeScript scripts the replies the recordings need: tool calls when the
// request offers tools, thinking for the "thinker" model.
func shapeScript(req enginesim.Request) *enginesim.Reply {
	switch {
	case len(req.Tools) > 0:
		return &enginesim.Reply{ToolCalls: []enginesim.ToolCall{{Name: "get_weather", Arguments: `{"city": "Tokyo"}`}}}
	case req.Model == "thinker":
		return &enginesim.Reply{Thinking: "Multiply", Content: "391"}
	}
	return nil
}

var shapeModels = []enginesim.ModelSpec{
	{Name: "tiny", ContextLength: 256},
	{Name: "thinker", Capabilities: []string{"completion", "thinking"}},
	{Name: "embedder", Capabilities: []string{"embedding"}},
}

// TestShapesMatchRecordings sends each request of testdata/recorded to the
// simulator and compares the key sets of its answer with the recording.
func TestShapesMatchRecordings(t *testing.T) {
	tools := []map[string]any{{"type": "function", "function": map[string]any{
		"name": "get_weather", "parameters": map[string]any{"type": "object"}}}}
	chat := func(extra map[string]any) map[string]any {
		m := map[string]any{"model": "tiny", "messages": userHi}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	limit5 := map[string]any{"num_predict": 5}
	tests := []struct {
		file   string
		engine enginesim.Engine
		method string
		path   string
		body   any
		status int
		opaque []string // paths whose children are not compared
	}{
		{"ollama_version.json", enginesim.EngineOllama, "GET", "/api/version", nil, 200, nil},
		{"ollama_tags.json", enginesim.EngineOllama, "GET", "/api/tags", nil, 200, nil},
		{"ollama_show.json", enginesim.EngineOllama, "POST", "/api/show", map[string]any{"model": "tiny"}, 200, []string{"model_info"}},
		{"ollama_ps.json", enginesim.EngineOllama, "GET", "/api/ps", nil, 200, nil},
		{"ollama_chat_stream.ndjson", enginesim.EngineOllama, "POST", "/api/chat", chat(map[string]any{"options": limit5}), 200, nil},
		{"ollama_chat.json", enginesim.EngineOllama, "POST", "/api/chat", chat(map[string]any{"options": limit5, "stream": false}), 200, nil},
		{"ollama_chat_load.json", enginesim.EngineOllama, "POST", "/api/chat", map[string]any{"model": "tiny"}, 200, nil},
		{"ollama_chat_tools.json", enginesim.EngineOllama, "POST", "/api/chat", chat(map[string]any{"tools": tools, "stream": false}), 200, nil},
		{"ollama_chat_tools_stream.ndjson", enginesim.EngineOllama, "POST", "/api/chat", chat(map[string]any{"tools": tools}), 200, nil},
		{"ollama_chat_thinking_stream.ndjson", enginesim.EngineOllama, "POST", "/api/chat", map[string]any{"model": "thinker", "messages": userHi, "think": true}, 200, nil},
		{"ollama_generate_stream.ndjson", enginesim.EngineOllama, "POST", "/api/generate", map[string]any{"model": "tiny", "prompt": "hi"}, 200, nil},
		{"ollama_generate.json", enginesim.EngineOllama, "POST", "/api/generate", map[string]any{"model": "tiny", "prompt": "hi", "stream": false}, 200, nil},
		{"ollama_generate_raw.json", enginesim.EngineOllama, "POST", "/api/generate", map[string]any{"model": "tiny", "prompt": "hi", "stream": false, "raw": true}, 200, nil},
		{"ollama_embed.json", enginesim.EngineOllama, "POST", "/api/embed", map[string]any{"model": "tiny", "input": "hello"}, 200, nil},
		{"ollama_embeddings.json", enginesim.EngineOllama, "POST", "/api/embeddings", map[string]any{"model": "tiny", "prompt": "hello"}, 200, nil},
		{"ollama_error_404.json", enginesim.EngineOllama, "POST", "/api/chat", map[string]any{"model": "nope", "messages": userHi}, 404, nil},
		{"ollama_error_400.json", enginesim.EngineOllama, "POST", "/api/chat", `{"model":"tiny","messages":[`, 400, nil},
		{"ollama_error_thinking.json", enginesim.EngineOllama, "POST", "/api/chat", chat(map[string]any{"think": true}), 400, nil},

		{"vllm_version.json", enginesim.EngineVLLM, "GET", "/version", nil, 200, nil},
		{"vllm_models.json", enginesim.EngineVLLM, "GET", "/v1/models", nil, 200, nil},
		{"vllm_chat.json", enginesim.EngineVLLM, "POST", "/v1/chat/completions", chat(nil), 200, nil},
		{"vllm_chat_tools.json", enginesim.EngineVLLM, "POST", "/v1/chat/completions", chat(map[string]any{"tools": tools}), 200, nil},
		{"vllm_chat_stream.sse", enginesim.EngineVLLM, "POST", "/v1/chat/completions", chat(map[string]any{"stream": true, "stream_options": map[string]any{"include_usage": true}}), 200, nil},
		{"vllm_chat_reasoning_stream.sse", enginesim.EngineVLLM, "POST", "/v1/chat/completions", map[string]any{"model": "thinker", "messages": userHi, "stream": true}, 200, nil},
		{"vllm_chat_tools_stream.sse", enginesim.EngineVLLM, "POST", "/v1/chat/completions", chat(map[string]any{"tools": tools, "stream": true}), 200, nil},
		{"vllm_completion.json", enginesim.EngineVLLM, "POST", "/v1/completions", map[string]any{"model": "tiny", "prompt": "Tokyo is", "max_tokens": 5}, 200, nil},
		{"vllm_completion_stream.sse", enginesim.EngineVLLM, "POST", "/v1/completions", map[string]any{"model": "tiny", "prompt": "Tokyo is", "max_tokens": 2, "stream": true, "stream_options": map[string]any{"include_usage": true}}, 200, nil},
		{"vllm_embeddings.json", enginesim.EngineVLLM, "POST", "/v1/embeddings", map[string]any{"model": "embedder", "input": "hello"}, 200, nil},
		{"vllm_rerank.json", enginesim.EngineVLLM, "POST", "/v1/rerank", map[string]any{"model": "embedder", "query": "capital of France", "documents": []string{"The weather is nice.", "Paris is the capital of France."}}, 200, nil},
		{"vllm_score.json", enginesim.EngineVLLM, "POST", "/v1/score", map[string]any{"model": "embedder", "text_1": "capital of France", "text_2": []string{"a", "b"}}, 200, nil},
		{"vllm_tokenize.json", enginesim.EngineVLLM, "POST", "/tokenize", map[string]any{"model": "tiny", "prompt": "hello world"}, 200, nil},
		{"vllm_error_404.json", enginesim.EngineVLLM, "POST", "/v1/chat/completions", map[string]any{"model": "gpt-4", "messages": userHi}, 404, nil},
		{"vllm_error_400.json", enginesim.EngineVLLM, "POST", "/v1/chat/completions", chat(map[string]any{"max_tokens": 40000}), 400, nil},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			recorded, err := os.ReadFile(filepath.Join("testdata", "recorded", tc.file))
			require.NoError(t, err)
			_, url := start(t, enginesim.Config{Engine: tc.engine, Models: shapeModels, Script: shapeScript, CompletionTokens: 3})
			var resp *http.Response
			if tc.method == "GET" {
				post(t, url+"/api/chat", chat(nil)) // loads a model for /api/ps
				resp = get(t, url+tc.path)
			} else {
				resp = post(t, url+tc.path, tc.body)
			}
			require.Equal(t, tc.status, resp.StatusCode)
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			opaque := map[string]bool{}
			for _, p := range tc.opaque {
				opaque[p] = true
			}
			want := shapeSignatures(t, tc.file, recorded, opaque)
			have := shapeSignatures(t, tc.file, got, opaque)
			require.Equal(t, want, have, "key sets of %s differ from the recording\nsimulator said:\n%s", tc.file, got)
		})
	}
	t.Run("every recording is checked", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join("testdata", "recorded", "*.*"))
		require.NoError(t, err)
		for _, f := range files {
			name := filepath.Base(f)
			if name == "README.md" || name == "vllm_metrics.txt" {
				continue
			}
			require.True(t, seen[name], "%s has no test case", name)
		}
	})
}

// shapeSignatures returns the distinct key-set signatures of a body: one
// for JSON, one per kind of chunk for NDJSON and SSE.
func shapeSignatures(t *testing.T, file string, body []byte, opaque map[string]bool) []string {
	t.Helper()
	var docs [][]byte
	switch filepath.Ext(file) {
	case ".json":
		docs = [][]byte{body}
	case ".ndjson":
		for _, line := range bytes.Split(body, []byte("\n")) {
			if len(bytes.TrimSpace(line)) > 0 {
				docs = append(docs, line)
			}
		}
	case ".sse":
		for _, ev := range strings.Split(string(body), "\n\n") {
			data, ok := strings.CutPrefix(strings.TrimSpace(ev), "data: ")
			if ok && data != "[DONE]" {
				docs = append(docs, []byte(data))
			}
		}
		require.True(t, strings.HasSuffix(strings.TrimRight(string(body), "\n"), "data: [DONE]"), "%s: no [DONE]", file)
	}
	set := map[string]bool{}
	for _, d := range docs {
		var v any
		require.NoError(t, json.Unmarshal(d, &v), "%s: %s", file, d)
		set[signature(keyPaths(v, opaque))] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// TestMetricsMatchRecording checks that /metrics has the recorded metric
// families, types and label names.
func TestMetricsMatchRecording(t *testing.T) {
	families := func(r io.Reader) map[string]string {
		out := map[string]string{}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
				name, typ, _ := strings.Cut(rest, " ")
				out[name] = typ
				continue
			}
			if strings.HasPrefix(line, "#") || line == "" {
				continue
			}
			name, labels, _ := strings.Cut(line, "{")
			labels, _, _ = strings.Cut(labels, "}")
			var keys []string
			for _, l := range strings.Split(labels, ",") {
				k, _, _ := strings.Cut(l, "=")
				keys = append(keys, k)
			}
			out[name+" labels"] = strings.Join(keys, ",")
		}
		return out
	}
	f, err := os.Open(filepath.Join("testdata", "recorded", "vllm_metrics.txt"))
	require.NoError(t, err)
	defer f.Close()
	want := families(f)
	_, url := start(t, enginesim.Config{Engine: enginesim.EngineVLLM})
	require.Equal(t, want, families(get(t, url+"/metrics").Body))
}
