package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/ollamatest"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// bearer adds the gateway key to every request of Ollama's Go client, which
// has no key option of its own (Ollama has no authentication).
type bearer struct {
	key  string
	next http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.next.RoundTrip(r)
}

// ollamaClient is the official Ollama Go client pointed at the gateway, as
// OLLAMA_HOST would point it, sending key as a bearer token.
func ollamaClient(t *testing.T, c *cluster.Cluster, key string) *api.Client {
	t.Helper()
	base, err := url.Parse(c.DataPlaneURL)
	require.NoError(t, err)
	return api.NewClient(base, &http.Client{Transport: bearer{key: key, next: http.DefaultTransport}})
}

// chat runs a chat to its end and returns the final answer with the text,
// thinking and tool calls of every chunk folded in, and the chunk count.
func chat(ctx context.Context, client *api.Client, req *api.ChatRequest) (api.ChatResponse, int, error) {
	var out api.ChatResponse
	var text, thinking strings.Builder
	var calls []api.ToolCall
	n := 0
	err := client.Chat(ctx, req, func(r api.ChatResponse) error {
		n++
		text.WriteString(r.Message.Content)
		thinking.WriteString(r.Message.Thinking)
		calls = append(calls, r.Message.ToolCalls...)
		out = r
		return nil
	})
	out.Message.Content, out.Message.Thinking, out.Message.ToolCalls = text.String(), thinking.String(), calls
	return out, n, err
}

// generate runs a generation to its end like chat.
func generate(ctx context.Context, client *api.Client, req *api.GenerateRequest) (api.GenerateResponse, int, error) {
	var out api.GenerateResponse
	var text, thinking strings.Builder
	n := 0
	err := client.Generate(ctx, req, func(r api.GenerateResponse) error {
		n++
		text.WriteString(r.Response)
		thinking.WriteString(r.Thinking)
		out = r
		return nil
	})
	out.Response, out.Thinking = text.String(), thinking.String()
	return out, n, err
}

var (
	streamOff = new(bool)
	streamOn  = func() *bool { b := true; return &b }()
)

// simScript answers the scenarios the tiny random models cannot produce:
// tool calls (two in parallel, then an answer built from their results),
// JSON for a format, thinking and seeing an image.
func simScript(r enginesim.Request) *enginesim.Reply {
	last := r.Messages[len(r.Messages)-1]
	switch {
	case last.Role == "tool":
		var results []string
		for _, m := range r.Messages {
			if m.Role == "tool" {
				results = append(results, m.Content)
			}
		}
		return &enginesim.Reply{Content: "Results: " + strings.Join(results, " / ")}
	case last.Content == "weather and time?":
		return &enginesim.Reply{ToolCalls: []enginesim.ToolCall{
			{Name: "get_weather", Arguments: `{"city":"Tokyo","unit":"celsius"}`},
			{Name: "get_time", Arguments: `{"zone":"Asia/Tokyo"}`},
		}}
	case last.Content == "json please" && len(r.Format) > 0:
		return &enginesim.Reply{Content: `{"city":"Tokyo","temp":21}`}
	case last.Content == "broken json" && len(r.Format) > 0:
		return &enginesim.Reply{Content: `{"city":`}
	case last.Content == "think":
		return &enginesim.Reply{Thinking: "17 times 23 is 391.", Content: "391"}
	case last.Content == "look" && len(last.Images) > 0:
		return &enginesim.Reply{Content: "I see an image."}
	}
	return nil
}

const weatherTools = `[
 {"type":"function","function":{"name":"get_weather","description":"Weather in a city",
  "parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string"}},"required":["city"]}}},
 {"type":"function","function":{"name":"get_time","description":"Time in a zone",
  "parameters":{"type":"object","properties":{"zone":{"type":"string"}},"required":["zone"]}}}]`

// onePixelPNG is a 1×1 PNG.
var onePixelPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" +
	"\x00\x00\x00\rIDATx\xdac\xfc\xff\x9f\xa1\x1e\x00\x07\x82\x02\x7f=\xc8H\xef\x00\x00\x00\x00IEND\xaeB`\x82")

// TestOllamaClientSimulators drives Ollama's official Go client through the
// gateway to the Ollama simulator (whole tool calls) and the vLLM simulator
// (argument fragments), scenario by scenario.
func TestOllamaClientSimulators(t *testing.T) {
	t.Parallel()
	_, ollamaURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, Script: simScript, CompletionTokens: 6,
		Models: []enginesim.ModelSpec{
			{Name: "sim-ollama", ContextLength: 4096, Capabilities: []string{"completion", "tools", "thinking", "vision"}},
			{Name: "sim-ollama-embed", ContextLength: 2048, Capabilities: []string{"embedding"}, EmbeddingDim: 16},
		}})
	_, vllmURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, Script: simScript, CompletionTokens: 6,
		Models: []enginesim.ModelSpec{
			{Name: "sim-qwen3-vl", ContextLength: 4096, Capabilities: []string{"completion", "tools", "thinking", "vision"}},
			{Name: "sim-embed", ContextLength: 2048, Capabilities: []string{"embedding"}, EmbeddingDim: 16},
		}})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{
		{Name: "ollama-sim", Engine: "ollama", URL: ollamaURL},
		{Name: "vllm-sim", Engine: "vllm", URL: vllmURL},
	}})
	client := ollamaClient(t, c, c.AdminKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	require.NoError(t, client.Heartbeat(ctx), "HEAD / answers like Ollama")
	version, err := client.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, "0.17.4", version)
	list, err := client.List(ctx)
	require.NoError(t, err, c.Logs())
	var names []string
	for _, m := range list.Models {
		names = append(names, strings.TrimSuffix(m.Name, ":latest"))
		require.Len(t, m.Digest, 64)
	}
	require.ElementsMatch(t, []string{"sim-ollama", "sim-ollama-embed", "sim-qwen3-vl", "sim-embed"}, names)

	for _, tc := range []struct{ engine, model, embedModel string }{
		{"ollama", "sim-ollama", "sim-ollama-embed"},
		{"vllm", "sim-qwen3-vl", "sim-embed"},
	} {
		t.Run(tc.engine, func(t *testing.T) {
			t.Parallel()
			// The subtests run after this function returns and may wait for
			// a free slot first, so their deadline starts when they do.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			t.Cleanup(cancel)
			simScenarios(ctx, t, c, client, tc.model, tc.embedModel)
		})
	}

	ps, err := client.ListRunning(ctx)
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(ps.Models, func(m api.ProcessModelResponse) bool {
		return strings.HasPrefix(m.Name, "sim-qwen3-vl")
	}), "vLLM models are always loaded: %+v", ps.Models)
}

func simScenarios(ctx context.Context, t *testing.T, c *cluster.Cluster, client *api.Client, model, embedModel string) {
	user := func(s string) []api.Message { return []api.Message{{Role: "user", Content: s}} }

	t.Run("chat streamed by default", func(t *testing.T) {
		resp, n, err := chat(ctx, client, &api.ChatRequest{Model: model, Messages: user("hello")})
		require.NoError(t, err, c.Logs())
		require.Equal(t, 7, n, "six tokens and the done line")
		require.Equal(t, enginesim.DefaultText(6), resp.Message.Content)
		require.True(t, resp.Done)
		require.Equal(t, "stop", resp.DoneReason)
		require.Equal(t, 6, resp.EvalCount, "the engine's exact count")
		require.Positive(t, resp.PromptEvalCount)
		require.Positive(t, resp.TotalDuration)
		require.Positive(t, resp.EvalDuration)
		require.False(t, resp.CreatedAt.IsZero())
	})
	t.Run("chat whole", func(t *testing.T) {
		resp, n, err := chat(ctx, client, &api.ChatRequest{Model: model, Messages: user("hello"), Stream: streamOff,
			Options: map[string]any{"num_predict": 3, "temperature": 0.1, "num_ctx": 999999}})
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, enginesim.DefaultText(3), resp.Message.Content)
		require.Equal(t, "length", resp.DoneReason)
		require.Equal(t, 3, resp.EvalCount)
	})
	t.Run("generate streamed and whole", func(t *testing.T) {
		resp, n, err := generate(ctx, client, &api.GenerateRequest{Model: model, Prompt: "hello", System: "be brief"})
		require.NoError(t, err)
		require.Equal(t, 7, n)
		require.Equal(t, enginesim.DefaultText(6), resp.Response)
		require.Equal(t, 6, resp.EvalCount)
		require.True(t, resp.Done)
		resp, n, err = generate(ctx, client, &api.GenerateRequest{Model: model, Prompt: "hello", Stream: streamOff})
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, enginesim.DefaultText(6), resp.Response)
		require.Equal(t, "stop", resp.DoneReason)
	})
	t.Run("show", func(t *testing.T) {
		show, err := client.Show(ctx, &api.ShowRequest{Model: model})
		require.NoError(t, err)
		arch, _ := show.ModelInfo["general.architecture"].(string)
		require.NotEmpty(t, arch)
		require.EqualValues(t, 4096, show.ModelInfo[arch+".context_length"], "the gateway's context cap")
		require.Equal(t, []string{"completion", "tools", "vision", "thinking"}, capabilities(show))
	})
	t.Run("tool cycle", func(t *testing.T) {
		var tools api.Tools
		require.NoError(t, json.Unmarshal([]byte(weatherTools), &tools))
		for _, stream := range []*bool{streamOn, streamOff} {
			msgs := user("weather and time?")
			resp, _, err := chat(ctx, client, &api.ChatRequest{Model: model, Messages: msgs, Tools: tools, Stream: stream})
			require.NoError(t, err, c.Logs())
			calls := resp.Message.ToolCalls
			require.Len(t, calls, 2, "two whole calls")
			require.Equal(t, "get_weather", calls[0].Function.Name)
			require.Equal(t, map[string]any{"city": "Tokyo", "unit": "celsius"}, calls[0].Function.Arguments.ToMap())
			require.Equal(t, "get_time", calls[1].Function.Name)
			require.Equal(t, map[string]any{"zone": "Asia/Tokyo"}, calls[1].Function.Arguments.ToMap())
			require.Equal(t, 1, calls[1].Function.Index)
			require.NotEmpty(t, calls[0].ID)
			require.NotEqual(t, calls[0].ID, calls[1].ID)

			msgs = append(msgs, api.Message{Role: "assistant", ToolCalls: calls},
				api.Message{Role: "tool", ToolName: "get_weather", Content: "sunny, 21C"},
				api.Message{Role: "tool", ToolName: "get_time", Content: "12:00"})
			resp, _, err = chat(ctx, client, &api.ChatRequest{Model: model, Messages: msgs, Tools: tools, Stream: stream})
			require.NoError(t, err, c.Logs())
			require.Equal(t, "Results: sunny, 21C / 12:00", resp.Message.Content)
			require.Empty(t, resp.Message.ToolCalls)
		}
	})
	t.Run("structured output", func(t *testing.T) {
		schema := json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"},"temp":{"type":"integer"}},"required":["city","temp"]}`)
		for _, stream := range []*bool{streamOn, streamOff} {
			resp, _, err := chat(ctx, client, &api.ChatRequest{Model: model, Messages: user("json please"), Format: schema, Stream: stream})
			require.NoError(t, err, c.Logs())
			require.JSONEq(t, `{"city":"Tokyo","temp":21}`, resp.Message.Content)
		}
		gen, _, err := generate(ctx, client, &api.GenerateRequest{Model: model, Prompt: "json please", Format: json.RawMessage(`"json"`), Stream: streamOff})
		require.NoError(t, err)
		require.JSONEq(t, `{"city":"Tokyo","temp":21}`, gen.Response)

		_, _, err = chat(ctx, client, &api.ChatRequest{Model: model, Messages: user("broken json"), Format: schema, Stream: streamOff})
		var se api.StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, http.StatusUnprocessableEntity, se.StatusCode, "invalid output is not passed on as success")
		require.NotEmpty(t, se.ErrorMessage)
	})
	t.Run("thinking", func(t *testing.T) {
		for _, think := range []*api.ThinkValue{{Value: true}, {Value: "high"}} {
			resp, _, err := chat(ctx, client, &api.ChatRequest{Model: model, Messages: user("think"), Think: think})
			require.NoError(t, err, c.Logs())
			require.Equal(t, "17 times 23 is 391.", resp.Message.Thinking)
			require.Equal(t, "391", resp.Message.Content)
		}
		gen, _, err := generate(ctx, client, &api.GenerateRequest{Model: model, Prompt: "think", Think: &api.ThinkValue{Value: true}})
		require.NoError(t, err)
		require.Equal(t, "17 times 23 is 391.", gen.Thinking)
		require.Equal(t, "391", gen.Response)
	})
	t.Run("vision", func(t *testing.T) {
		resp, _, err := chat(ctx, client, &api.ChatRequest{Model: model, Stream: streamOff,
			Messages: []api.Message{{Role: "user", Content: "look", Images: []api.ImageData{onePixelPNG}}}})
		require.NoError(t, err, c.Logs())
		require.Equal(t, "I see an image.", resp.Message.Content)
		gen, _, err := generate(ctx, client, &api.GenerateRequest{Model: model, Prompt: "look", Images: []api.ImageData{onePixelPNG}})
		require.NoError(t, err)
		require.Equal(t, "I see an image.", gen.Response)
	})
	t.Run("embeddings", func(t *testing.T) {
		resp, err := client.Embed(ctx, &api.EmbedRequest{Model: embedModel, Input: []string{"hello", "world"}})
		require.NoError(t, err, c.Logs())
		require.Equal(t, embedModel, resp.Model)
		require.Len(t, resp.Embeddings, 2)
		require.Len(t, resp.Embeddings[0], 16)
		require.NotEqual(t, resp.Embeddings[0], resp.Embeddings[1])
		require.Positive(t, resp.PromptEvalCount)
		one, err := client.Embeddings(ctx, &api.EmbeddingRequest{Model: embedModel, Prompt: "hello"})
		require.NoError(t, err)
		require.Len(t, one.Embedding, 16)
		for i, f := range one.Embedding {
			require.InDelta(t, float64(resp.Embeddings[0][i]), f, 1e-6, "the same vector, in Ollama's legacy shape")
		}
	})
	t.Run("load", func(t *testing.T) {
		resp, n, err := chat(ctx, client, &api.ChatRequest{Model: model})
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, "load", resp.DoneReason)
	})
	t.Run("errors", func(t *testing.T) {
		_, _, err := chat(ctx, client, &api.ChatRequest{Model: "nope", Messages: user("hi")})
		var se api.StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, http.StatusNotFound, se.StatusCode)
		require.Equal(t, "model 'nope' not found", se.ErrorMessage)
		_, err = client.Show(ctx, &api.ShowRequest{Model: "nope"})
		require.ErrorAs(t, err, &se)
		require.Equal(t, http.StatusNotFound, se.StatusCode)

		bad := ollamaClient(t, c, cluster.NewKey(t))
		for _, stream := range []*bool{streamOn, streamOff} {
			_, _, err = chat(ctx, bad, &api.ChatRequest{Model: model, Messages: user("hi"), Stream: stream})
			var ae api.AuthorizationError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, http.StatusUnauthorized, ae.StatusCode)
		}
		_, err = bad.List(ctx)
		var ae api.AuthorizationError
		require.ErrorAs(t, err, &ae)

		_, err = client.Embed(ctx, &api.EmbedRequest{Model: model, Input: "x"})
		require.ErrorAs(t, err, &se)
		require.Equal(t, http.StatusBadRequest, se.StatusCode, "a chat model cannot embed")
	})
}

// TestOllamaClientRealOllama drives Ollama's Go client through the gateway
// to a real CPU Ollama serving the tiny random model: the same client
// against the gateway sees what it would see against Ollama.
func TestOllamaClientRealOllama(t *testing.T) {
	t.Parallel()
	ol := ollamatest.Shared(t)
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "ollama", Engine: "ollama", URL: ol.URL}}})
	client := ollamaClient(t, c, c.AdminKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	require.NoError(t, client.Heartbeat(ctx))
	version, err := client.Version(ctx)
	require.NoError(t, err)
	direct := api.NewClient(mustURL(t, ol.URL), http.DefaultClient)
	realVersion, err := direct.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, realVersion, version, "the gateway speaks the API of the Ollama release it names")
	list, err := client.List(ctx)
	require.NoError(t, err, c.Logs())
	require.Len(t, list.Models, 1)
	model := list.Models[0].Name
	require.Equal(t, "tiny", strings.TrimSuffix(model, ":latest"))
	require.Equal(t, "llama", list.Models[0].Details.Family)
	require.Equal(t, "gguf", list.Models[0].Details.Format)

	show, err := client.Show(ctx, &api.ShowRequest{Model: "tiny"})
	require.NoError(t, err)
	require.EqualValues(t, 256, show.ModelInfo["llama.context_length"], "the Modelfile's num_ctx caps the context")
	require.Equal(t, []string{"completion"}, capabilities(show))

	opts := map[string]any{"temperature": 0, "seed": 1, "num_predict": 8}
	whole, _, err := chat(ctx, client, &api.ChatRequest{Model: model, Messages: []api.Message{{Role: "user", Content: "hello"}},
		Stream: streamOff, Options: opts})
	require.NoError(t, err, c.Logs())
	require.Equal(t, "length", whole.DoneReason)
	require.Equal(t, 8, whole.EvalCount, "Ollama's eval_count, passed through")
	require.Positive(t, whole.PromptEvalCount)

	streamed, n, err := chat(ctx, client, &api.ChatRequest{Model: model, Messages: []api.Message{{Role: "user", Content: "hello"}}, Options: opts})
	require.NoError(t, err, c.Logs())
	require.Greater(t, n, 1, "streamed by default")
	require.Equal(t, whole.Message.Content, streamed.Message.Content, "seeded greedy decoding repeats, streamed or not")
	require.Equal(t, 8, streamed.EvalCount)

	want, _, err := generate(ctx, direct, &api.GenerateRequest{Model: model, Prompt: "hello", Options: opts, Stream: streamOff})
	require.NoError(t, err)
	got, n, err := generate(ctx, client, &api.GenerateRequest{Model: model, Prompt: "hello", Options: opts})
	require.NoError(t, err, c.Logs())
	require.Greater(t, n, 1)
	require.Equal(t, 8, got.EvalCount)
	require.Equal(t, "length", got.DoneReason)
	require.Equal(t, want.Response, got.Response, "generate through the gateway is Ollama's own generate")
	got, _, err = generate(ctx, client, &api.GenerateRequest{Model: model, Prompt: "hello", Options: opts, Stream: streamOff})
	require.NoError(t, err)
	require.Equal(t, 8, got.EvalCount)

	_, _, err = chat(ctx, client, &api.ChatRequest{Model: "nope", Messages: []api.Message{{Role: "user", Content: "hi"}}})
	var se api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.StatusCode)
	require.Equal(t, "model 'nope' not found", se.ErrorMessage, "the wording real Ollama uses")

	_, err = client.Embed(ctx, &api.EmbedRequest{Model: model, Input: "hello"})
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.StatusCode, "Ollama does not list embedding for this model")

	var ae api.AuthorizationError
	_, _, err = chat(ctx, ollamaClient(t, c, cluster.NewKey(t)), &api.ChatRequest{Model: model, Messages: []api.Message{{Role: "user", Content: "hi"}}})
	require.True(t, errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized, "err: %v", err)

	require.Eventually(t, func() bool {
		ps, err := client.ListRunning(ctx)
		return err == nil && len(ps.Models) == 1 && ps.Models[0].ContextLength == 256
	}, 45*time.Second, 500*time.Millisecond, "the loaded model appears in /api/ps")
}

func capabilities(show *api.ShowResponse) []string {
	out := make([]string, 0, len(show.Capabilities))
	for _, c := range show.Capabilities {
		out = append(out, string(c))
	}
	return out
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}
