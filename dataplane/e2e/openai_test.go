package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/ollamatest"
	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	ollamaengine "github.com/mindrouter/mindrouter/dataplane/internal/engine/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// Models the OpenAI conformance simulators serve. The control plane reads
// Ollama's capabilities from /api/show and guesses vLLM's from the model id
// ("-vl" vision, "qwen3" thinking, "embed" and "rerank" pooling).
const (
	oaiOllamaChat  = "sim-ollama"
	oaiOllamaEmbed = "ollama-embed"
	oaiVLLMChat    = "qwen3-vl-sim"
	oaiVLLMEmbed   = "bge-embed-sim"
	oaiVLLMRerank  = "bge-reranker-sim"
)

// oaiScript answers by a marker in the last message, so that one simulator
// serves every scenario; the same script runs on both engines, which emit it
// in their own shapes (Ollama's whole tool calls, vLLM's fragments).
func oaiScript(r enginesim.Request) *enginesim.Reply {
	last := r.Messages[len(r.Messages)-1]
	switch {
	case strings.Contains(last.Content, "ECHO-HISTORY"):
		turns := make([]string, 0, len(r.Messages))
		for _, m := range r.Messages {
			turns = append(turns, m.Role+":"+m.Content)
		}
		return &enginesim.Reply{Content: strings.Join(turns, "|")}
	case last.Role == "tool":
		return &enginesim.Reply{Content: "Sunny in Paris, rainy in Tokyo."}
	case strings.Contains(last.Content, "WEATHER"):
		return &enginesim.Reply{ToolCalls: []enginesim.ToolCall{
			{Name: "get_weather", Arguments: `{"city":"Paris","unit":"celsius"}`},
			{Name: "get_weather", Arguments: `{"city":"Tokyo","unit":"celsius"}`},
		}}
	case strings.Contains(last.Content, "JSON-OK"):
		return &enginesim.Reply{Content: `{"city": "Oslo", "temp": -3}`}
	case strings.Contains(last.Content, "PROSE"):
		return &enginesim.Reply{Content: "plain words, not JSON"}
	case strings.Contains(last.Content, "JSON-BAD"):
		return &enginesim.Reply{Content: `{"city": "Oslo"}`}
	case strings.Contains(last.Content, "THINK-INLINE"):
		return &enginesim.Reply{Content: "<think>The user wants 6 times 7.</think>\n\nIt is 42."}
	case strings.Contains(last.Content, "THINK"):
		return &enginesim.Reply{Thinking: "Six times seven.", Content: "It is 42."}
	case strings.Contains(last.Content, "IMAGE"):
		desc := "no image"
		if len(last.Images) > 0 {
			desc = "image " + last.Images[0][:min(len(last.Images[0]), 40)]
		}
		return &enginesim.Reply{Content: desc}
	}
	return nil
}

// oaiSims starts the two conformance simulators and returns the cluster's backends.
func oaiSims(t *testing.T) []cluster.Backend {
	t.Helper()
	_, ollamaURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, Script: oaiScript, CompletionTokens: 6, Models: []enginesim.ModelSpec{
		{Name: oaiOllamaChat, ContextLength: 4096, Capabilities: []string{"completion", "tools", "vision", "thinking"}},
		{Name: oaiOllamaEmbed, ContextLength: 2048, Capabilities: []string{"embedding"}, EmbeddingDim: 32},
	}})
	_, vllmURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, Script: oaiScript, CompletionTokens: 6, Models: []enginesim.ModelSpec{
		{Name: oaiVLLMChat, ContextLength: 4096, Capabilities: []string{"completion", "tools", "vision", "thinking"}},
		{Name: oaiVLLMEmbed, ContextLength: 2048, Capabilities: []string{"embedding"}, EmbeddingDim: 32},
		{Name: oaiVLLMRerank, ContextLength: 2048, Capabilities: []string{"embedding"}},
	}})
	return []cluster.Backend{{Name: "ollama-sim", Engine: "ollama", URL: ollamaURL}, {Name: "vllm-sim", Engine: "vllm", URL: vllmURL}}
}

func oaiUser(s string) []openai.ChatCompletionMessageParamUnion {
	return []openai.ChatCompletionMessageParamUnion{openai.UserMessage(s)}
}

// oaiReasoning reads the reasoning_content the gateway adds to a message or delta.
func oaiReasoning(t *testing.T, raw string) string {
	t.Helper()
	var v struct {
		ReasoningContent string `json:"reasoning_content"`
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &v))
	return v.ReasoningContent
}

func oaiAPIError(t *testing.T, err error) *openai.Error {
	t.Helper()
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr, "want an API error, got %v", err)
	return apiErr
}

var oaiWeatherTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name: "get_weather", Description: openai.String("Current weather"),
	Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{
		"city": map[string]any{"type": "string"}, "unit": map[string]any{"type": "string"}}, "required": []string{"city"}},
})

// TestOpenAIConformance drives openai-go through the gateway to the Ollama
// and vLLM simulators, scenario by scenario.
func TestOpenAIConformance(t *testing.T) {
	t.Parallel()
	c := cluster.Start(t, cluster.Options{Backends: oaiSims(t)})
	client := openaiClient(c, c.AdminKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for _, model := range []string{oaiOllamaChat, oaiVLLMChat} {
		t.Run(model+"/tool cycle", func(t *testing.T) { oaiToolCycle(ctx, t, c, client, model, false) })
		t.Run(model+"/tool cycle streamed", func(t *testing.T) { oaiToolCycle(ctx, t, c, client, model, true) })
		t.Run(model+"/structured output", func(t *testing.T) { oaiStructured(ctx, t, c, client, model) })
		t.Run(model+"/thinking", func(t *testing.T) { oaiThinking(ctx, t, c, client, model) })
		t.Run(model+"/completions", func(t *testing.T) { oaiCompletions(ctx, t, c, client, model) })
		t.Run(model+"/vision", func(t *testing.T) { oaiVision(ctx, t, c, client, model, false) })
	}
	for _, model := range []string{oaiOllamaEmbed, oaiVLLMEmbed} {
		t.Run(model+"/embeddings", func(t *testing.T) { oaiEmbeddings(ctx, t, c, client, model) })
	}
	t.Run("rerank and score", func(t *testing.T) { oaiRerankScore(ctx, t, c, client) })
	t.Run("errors", func(t *testing.T) { oaiErrors(ctx, t, c, client) })

	var backends []backendJSON
	_, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/backends", nil, &backends)
	require.NoError(t, err)
	for _, b := range backends {
		require.Zero(t, b.CurrentConcurrent, "every lease released: %s", b.Name)
	}
}

func oaiToolCycle(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client, model string, stream bool) {
	params := openai.ChatCompletionNewParams{
		Model: model, Messages: oaiUser("WEATHER in Paris and Tokyo?"),
		Tools: []openai.ChatCompletionToolUnionParam{oaiWeatherTool},
	}
	var msg openai.ChatCompletionMessage
	var finish string
	if stream {
		s := client.Chat.Completions.NewStreaming(ctx, params)
		var acc openai.ChatCompletionAccumulator
		ids := map[int64]string{}
		for s.Next() {
			chunk := s.Current()
			require.True(t, acc.AddChunk(chunk))
			for _, ch := range chunk.Choices {
				for _, tc := range ch.Delta.ToolCalls {
					if tc.ID != "" {
						require.NotContains(t, ids, tc.Index, "a call's id comes once")
						ids[tc.Index] = tc.ID
						require.Equal(t, "get_weather", tc.Function.Name)
					}
				}
			}
		}
		require.NoError(t, s.Err(), c.Logs())
		require.Len(t, ids, 2)
		msg, finish = acc.Choices[0].Message, acc.Choices[0].FinishReason
	} else {
		resp, err := client.Chat.Completions.New(ctx, params)
		require.NoError(t, err, c.Logs())
		msg, finish = resp.Choices[0].Message, resp.Choices[0].FinishReason
	}
	require.Equal(t, "tool_calls", finish)
	require.Len(t, msg.ToolCalls, 2, "two parallel calls")
	require.NotEqual(t, msg.ToolCalls[0].ID, msg.ToolCalls[1].ID)
	require.JSONEq(t, `{"city":"Paris","unit":"celsius"}`, msg.ToolCalls[0].Function.Arguments)
	require.JSONEq(t, `{"city":"Tokyo","unit":"celsius"}`, msg.ToolCalls[1].Function.Arguments)

	params.Messages = append(params.Messages, msg.ToParam(),
		openai.ToolMessage(`{"sky":"sunny"}`, msg.ToolCalls[0].ID), openai.ToolMessage(`{"sky":"rain"}`, msg.ToolCalls[1].ID))
	resp, err := client.Chat.Completions.New(ctx, params)
	require.NoError(t, err, c.Logs())
	require.Equal(t, "Sunny in Paris, rainy in Tokyo.", resp.Choices[0].Message.Content)
	require.Equal(t, "stop", resp.Choices[0].FinishReason)
}

func oaiStructured(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client, model string) {
	format := openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
		JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "weather", Schema: map[string]any{
			"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}, "temp": map[string]any{"type": "number"}},
			"required": []string{"city", "temp"}}},
	}}
	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model, Messages: oaiUser("JSON-OK"), ResponseFormat: format})
	require.NoError(t, err, c.Logs())
	require.JSONEq(t, `{"city":"Oslo","temp":-3}`, resp.Choices[0].Message.Content)

	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model, Messages: oaiUser("JSON-BAD"), ResponseFormat: format})
	apiErr := oaiAPIError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, apiErr.StatusCode)
	require.Equal(t, "invalid_response_error", apiErr.Type)
	require.Equal(t, "invalid_structured_output", apiErr.Code)
	require.Contains(t, apiErr.Message, "missing property 'temp'")

	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model, Messages: oaiUser("PROSE"),
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &shared.ResponseFormatJSONObjectParam{}}})
	require.Equal(t, http.StatusUnprocessableEntity, oaiAPIError(t, err).StatusCode, "prose is not a JSON object")

	// Unscripted, the simulator decodes under the schema as a real engine
	// with constrained decoding does: the gateway's own check passes.
	resp, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model, Messages: oaiUser("the weather, please"), ResponseFormat: format})
	require.NoError(t, err, c.Logs())
	var weather struct {
		City *string  `json:"city"`
		Temp *float64 `json:"temp"`
	}
	require.NoError(t, json.Unmarshal([]byte(resp.Choices[0].Message.Content), &weather), resp.Choices[0].Message.Content)
	require.NotNil(t, weather.City)
	require.NotNil(t, weather.Temp)
}

func oaiThinking(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client, model string) {
	for _, marker := range []string{"THINK", "THINK-INLINE"} {
		resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model, Messages: oaiUser(marker),
			ReasoningEffort: shared.ReasoningEffortLow})
		require.NoError(t, err, c.Logs())
		require.NotEmpty(t, oaiReasoning(t, resp.Choices[0].Message.RawJSON()), marker)
		require.Equal(t, "It is 42.", resp.Choices[0].Message.Content, marker)

		s := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: model, Messages: oaiUser(marker)})
		var reasoning, content strings.Builder
		for s.Next() {
			for _, ch := range s.Current().Choices {
				reasoning.WriteString(oaiReasoning(t, ch.Delta.RawJSON()))
				content.WriteString(ch.Delta.Content)
			}
		}
		require.NoError(t, s.Err(), c.Logs())
		require.Equal(t, oaiReasoning(t, resp.Choices[0].Message.RawJSON()), reasoning.String(), marker)
		require.Equal(t, "It is 42.", content.String(), marker)
	}
}

func oaiCompletions(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client, model string) {
	resp, err := client.Completions.New(ctx, openai.CompletionNewParams{
		Model: openai.CompletionNewParamsModel(model), MaxTokens: openai.Int(4),
		Prompt: openai.CompletionNewParamsPromptUnion{OfArrayOfStrings: []string{"Once upon", "a time"}},
	})
	require.NoError(t, err, c.Logs())
	require.Equal(t, "text_completion", string(resp.Object))
	require.True(t, strings.HasPrefix(resp.ID, "cmpl-"))
	require.Len(t, resp.Choices, 2, "one choice per prompt")
	for i, ch := range resp.Choices {
		require.EqualValues(t, i, ch.Index)
		require.Equal(t, "length", string(ch.FinishReason))
		require.NotEmpty(t, ch.Text)
	}
	require.EqualValues(t, 8, resp.Usage.CompletionTokens, "4 tokens per prompt, summed")

	s := client.Completions.NewStreaming(ctx, openai.CompletionNewParams{
		Model: openai.CompletionNewParamsModel(model), Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var text strings.Builder
	var finish string
	var usage openai.CompletionUsage
	for s.Next() {
		chunk := s.Current()
		require.Equal(t, "text_completion", string(chunk.Object))
		for _, ch := range chunk.Choices {
			text.WriteString(ch.Text)
			if ch.FinishReason != "" {
				finish = string(ch.FinishReason)
			}
		}
		if chunk.Usage.TotalTokens > 0 {
			usage = chunk.Usage
		}
	}
	require.NoError(t, s.Err(), c.Logs())
	require.Equal(t, enginesim.DefaultText(6), text.String())
	require.Equal(t, "stop", finish)
	require.EqualValues(t, 6, usage.CompletionTokens)
}

func oaiPNG(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, image.NewGray(image.Rect(0, 0, 2, 2))))
	return buf.Bytes()
}

// oaiImageServer serves a PNG on loopback, which the SSRF guard refuses
// unless the operator allows it.
func oaiImageServer(t *testing.T) string {
	t.Helper()
	img := oaiPNG(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(img)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/cat.png"
}

func oaiVision(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client, model string, loopbackAllowed bool) {
	b64 := base64.StdEncoding.EncodeToString(oaiPNG(t))
	ask := func(url string) (*openai.ChatCompletion, error) {
		return client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model, Messages: []openai.ChatCompletionMessageParamUnion{
			openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
				openai.TextContentPart("IMAGE: what is this?"),
				openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: url}),
			}),
		}})
	}
	want := "image " + b64[:40]
	if model == oaiVLLMChat {
		want = "image " + ("data:image/png;base64," + b64)[:40]
	}
	resp, err := ask("data:image/png;base64," + b64)
	require.NoError(t, err, c.Logs())
	require.Equal(t, want, resp.Choices[0].Message.Content, "the image reaches the engine inline")

	resp, err = ask(oaiImageServer(t))
	if !loopbackAllowed {
		apiErr := oaiAPIError(t, err)
		require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
		require.Equal(t, "invalid_request_error", apiErr.Type)
		require.Contains(t, apiErr.Message, "image URL points to a loopback address")
		return
	}
	require.NoError(t, err, c.Logs())
	require.Equal(t, want, resp.Choices[0].Message.Content, "the gateway fetched the URL and sent the bytes")
}

// TestOpenAIVisionAllowList: an operator's -image-fetch-allow lets the
// gateway fetch from a loopback image server.
func TestOpenAIVisionAllowList(t *testing.T) {
	t.Parallel()
	c := cluster.Start(t, cluster.Options{Backends: oaiSims(t), DataPlaneArgs: []string{"-image-fetch-allow", "127.0.0.1/32"}})
	client := openaiClient(c, c.AdminKey)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, model := range []string{oaiOllamaChat, oaiVLLMChat} {
		t.Run(model, func(t *testing.T) { oaiVision(ctx, t, c, client, model, true) })
	}
}

func oaiEmbeddings(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client, model string) {
	input := openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello world", "a longer second text"}}
	resp, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: model, Input: input})
	require.NoError(t, err, c.Logs())
	require.Equal(t, model, resp.Model)
	require.Len(t, resp.Data, 2)
	require.Len(t, resp.Data[0].Embedding, 32)
	require.EqualValues(t, 1, resp.Data[1].Index)
	require.Positive(t, resp.Usage.PromptTokens)
	require.Equal(t, resp.Usage.PromptTokens, resp.Usage.TotalTokens)

	b64, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: model, Input: input,
		EncodingFormat: openai.EmbeddingNewParamsEncodingFormatBase64, Dimensions: openai.Int(8)})
	require.NoError(t, err, c.Logs())
	require.Len(t, b64.Data[0].Embedding, 8, "dimensions reach the engine; the SDK decodes base64")
	for i := range b64.Data[0].Embedding {
		require.NotZero(t, b64.Data[0].Embedding[i])
	}
}

func oaiRerankScore(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client) {
	var rr struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Results []struct {
			Index    int `json:"index"`
			Document struct {
				Text string `json:"text"`
			} `json:"document"`
			RelevanceScore float64 `json:"relevance_score"`
		} `json:"results"`
		Usage struct {
			TotalTokens int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	docs := []string{"bananas are yellow", "Paris is the capital of France", "the capital of France"}
	require.NoError(t, client.Post(ctx, "rerank", map[string]any{"model": oaiVLLMRerank, "query": "capital of France", "documents": docs, "top_n": 2}, &rr), c.Logs())
	require.True(t, strings.HasPrefix(rr.ID, "rerank-"))
	require.Len(t, rr.Results, 2)
	require.GreaterOrEqual(t, rr.Results[0].RelevanceScore, rr.Results[1].RelevanceScore)
	require.Equal(t, docs[rr.Results[0].Index], rr.Results[0].Document.Text)
	require.Positive(t, rr.Usage.TotalTokens)

	var sc struct {
		Object string `json:"object"`
		Data   []struct {
			Index int     `json:"index"`
			Score float64 `json:"score"`
		} `json:"data"`
	}
	require.NoError(t, client.Post(ctx, "score", map[string]any{"model": oaiVLLMRerank, "text_1": "capital", "text_2": docs}, &sc), c.Logs())
	require.Equal(t, "list", sc.Object)
	require.Len(t, sc.Data, 3)

	for _, path := range []string{"rerank", "score"} {
		body := map[string]any{"model": oaiOllamaChat, "query": "q", "documents": []string{"d"}, "text_1": "a", "text_2": "b"}
		apiErr := oaiAPIError(t, client.Post(ctx, path, body, nil))
		require.Equal(t, http.StatusBadRequest, apiErr.StatusCode, path)
		require.Equal(t, "invalid_request_error", apiErr.Type)
		require.Equal(t, path+" is only available on vLLM backends", apiErr.Message)
	}
}

func oaiErrors(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client) {
	_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "no-such-model", Messages: oaiUser("hi")})
	apiErr := oaiAPIError(t, err)
	require.Equal(t, http.StatusNotFound, apiErr.StatusCode)
	require.Equal(t, "model_not_found", apiErr.Code)

	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: oaiVLLMChat, Messages: oaiUser("hi"), Temperature: openai.Float(5)})
	apiErr = oaiAPIError(t, err)
	require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	require.Equal(t, "temperature", apiErr.Param)

	_, err = client.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: oaiOllamaChat,
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}})
	apiErr = oaiAPIError(t, err)
	require.Equal(t, http.StatusBadRequest, apiErr.StatusCode, "a chat model does not embed")
	require.Contains(t, apiErr.Message, "does not support embeddings")

	stranger := openaiClient(c, cluster.NewKey(t))
	_, err = stranger.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: oaiVLLMChat, Messages: oaiUser("hi")})
	require.Equal(t, http.StatusUnauthorized, oaiAPIError(t, err).StatusCode)
}

// TestOpenAIRealOllama runs the scenarios a tiny random model can serve
// against a real Ollama: text completions, streamed and not, and the wire
// shape of embeddings (/api/embed works on any Ollama model; the control
// plane admits embeddings only for models Ollama reports as embedding models,
// which the tiny model is not).
func TestOpenAIRealOllama(t *testing.T) {
	t.Parallel()
	ol := ollamatest.Shared(t)
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "ollama", Engine: "ollama", URL: ol.URL}}})
	client := openaiClient(c, c.AdminKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	model := ol.ModelName

	resp, err := client.Completions.New(ctx, openai.CompletionNewParams{Model: openai.CompletionNewParamsModel(model),
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("hello")}, MaxTokens: openai.Int(6),
		Temperature: openai.Float(0), Seed: openai.Int(1)})
	require.NoError(t, err, c.Logs())
	require.Equal(t, "text_completion", string(resp.Object))
	require.Equal(t, "length", string(resp.Choices[0].FinishReason))
	require.EqualValues(t, 6, resp.Usage.CompletionTokens, "Ollama's eval_count")

	s := client.Completions.NewStreaming(ctx, openai.CompletionNewParams{Model: openai.CompletionNewParamsModel(model),
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("hello")}, MaxTokens: openai.Int(6),
		Temperature: openai.Float(0), Seed: openai.Int(1)})
	var text strings.Builder
	for s.Next() {
		for _, ch := range s.Current().Choices {
			text.WriteString(ch.Text)
		}
	}
	require.NoError(t, s.Err(), c.Logs())
	require.Equal(t, resp.Choices[0].Text, text.String(), "greedy decoding repeats, streamed or not")

	_, err = client.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: model, Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}})
	apiErr := oaiAPIError(t, err)
	require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	require.Contains(t, apiErr.Message, "does not support embeddings")

	// The engine's /api/embed call against the real server, past the control plane.
	eng := ollamaengine.New(ollamaengine.Config{Client: http.DefaultClient})
	emb, err := eng.Embed(ctx, engine.Target{URL: ol.URL, Model: model}, &canonical.EmbeddingRequest{Input: []string{"hello", "world wide"}})
	require.NoError(t, err, ol.Log())
	require.Len(t, emb.Embeddings, 2)
	require.Len(t, emb.Embeddings[0], ollamatest.TinyEmbedding)
	require.NotEqual(t, emb.Embeddings[0], emb.Embeddings[1])
	require.Positive(t, emb.Usage.Prompt, "prompt_eval_count")

	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model, Messages: oaiUser("hi"),
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &shared.ResponseFormatJSONObjectParam{}},
		MaxTokens:      openai.Int(4), Temperature: openai.Float(0)})
	// Random weights under a JSON grammar: either valid JSON (unlikely in 4
	// tokens) or a clear 422, never gibberish passed on as success.
	if err != nil {
		require.Equal(t, http.StatusUnprocessableEntity, oaiAPIError(t, err).StatusCode, fmt.Sprint(err))
	}
}
