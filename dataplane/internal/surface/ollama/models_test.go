package ollama_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

func catalog() []relay.ModelInfo {
	return []relay.ModelInfo{
		{Name: "tiny:latest", Family: "llama", ContextLength: 256, ParameterSize: "117K", Quantization: "F32", Created: 1700000000,
			Loaded: true, Engines: []relay.Engine{relay.EngineOllama},
			Capabilities: []relay.Capability{relay.CapabilityCompletion,
				relay.CapabilityStructuredOutput, relay.CapabilityTools}},
		{Name: "Qwen/Qwen3-8B", Family: "qwen3", ContextLength: 32768, Engines: []relay.Engine{relay.EngineVLLM},
			Capabilities: []relay.Capability{relay.CapabilityCompletion,
				relay.CapabilityThinking, relay.CapabilityVision}},
	}
}

func TestModelEndpoints(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	g.fake.SetModels(catalog()...)

	resp := g.do(t, http.MethodGet, "/api/tags", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.JSONEq(t, `{"models":[
		{"name":"Qwen/Qwen3-8B","model":"Qwen/Qwen3-8B","modified_at":"0001-01-01T00:00:00Z","size":0,
		 "digest":"`+digest("Qwen/Qwen3-8B")+`",
		 "details":{"parent_model":"","format":"safetensors","family":"qwen3","families":["qwen3"],"parameter_size":"","quantization_level":""}},
		{"name":"tiny:latest","model":"tiny:latest","modified_at":"2023-11-14T22:13:20Z","size":0,
		 "digest":"`+digest("tiny:latest")+`",
		 "details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"117K","quantization_level":"F32"}}]}`,
		string(b))

	ps := readJSON(t, g.do(t, http.MethodGet, "/api/ps", ""))
	models := ps["models"].([]any)
	require.Len(t, models, 1, "only loaded models")
	loaded := models[0].(map[string]any)
	require.Equal(t, "tiny:latest", loaded["name"])
	require.EqualValues(t, 256, loaded["context_length"])
	require.Contains(t, loaded, "expires_at")

	for _, name := range []string{"tiny", "tiny:latest"} {
		show := readJSON(t, g.post(t, "/api/show", `{"model":"`+name+`"}`))
		require.Equal(t, map[string]any{"general.architecture": "llama", "llama.context_length": float64(256)}, show["model_info"])
		require.Equal(t, []any{"completion", "tools"}, show["capabilities"])
	}
	show := readJSON(t, g.post(t, "/api/show", `{"name":"Qwen/Qwen3-8B"}`))
	require.Equal(t, []any{"completion", "vision", "thinking"}, show["capabilities"])

	resp = g.post(t, "/api/show", `{"model":"nope"}`)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "model 'nope' not found", errorMessage(t, resp))

	v := readJSON(t, g.do(t, http.MethodGet, "/api/version", "", "Authorization", ""))
	require.Equal(t, map[string]any{"version": "0.17.4"}, v, "no key needed to probe the version")

	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp = g.do(t, method, "/", "", "Authorization", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		if method == http.MethodGet {
			require.Equal(t, "Ollama is running", string(body))
		}
	}

	g.fake.SetKeys("mr2_key")
	resp = g.do(t, http.MethodGet, "/api/tags", "", "Authorization", "Bearer bad")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	errorMessage(t, resp)
}

// digest is the digest the gateway shows for a model: the SHA-256 of its name.
func digest(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// TestLoadAndUnload: what Ollama clients send before a conversation (ollama
// run) answers at once, for models in the caller's catalog only, without a
// backend slot.
func TestLoadAndUnload(t *testing.T) {
	t.Parallel()
	g := newGateway(t, sim(t, 1, enginesim.EngineOllama, nil))
	g.fake.SetModels(catalog()...)
	m := readJSON(t, g.post(t, "/api/chat", `{"model":"tiny"}`))
	require.Equal(t, map[string]any{"model": "tiny", "created_at": m["created_at"], "done": true, "done_reason": "load",
		"message": map[string]any{"role": "assistant", "content": ""}}, m)
	m = readJSON(t, g.post(t, "/api/generate", `{"model":"tiny:latest","keep_alive":0}`))
	require.Equal(t, "unload", m["done_reason"])
	require.Empty(t, m["response"])
	m = readJSON(t, g.post(t, "/api/embed", `{"model":"tiny","input":[]}`))
	require.Equal(t, map[string]any{"model": "tiny", "embeddings": []any{}}, m)
	m = readJSON(t, g.post(t, "/api/embeddings", `{"model":"tiny"}`))
	require.Equal(t, map[string]any{"embedding": []any{}}, m)

	resp := g.post(t, "/api/chat", `{"model":"nope"}`)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "model 'nope' not found", errorMessage(t, resp))
	require.Empty(t, g.fake.Admits(), "loading takes no backend slot")
}
