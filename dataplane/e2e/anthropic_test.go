package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/ollamatest"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// anthropicClient points the official SDK at the gateway's /anthropic prefix
// (the SDK appends v1/messages), or at its root (/v1/messages) when root is set.
func anthropicClient(c *cluster.Cluster, key string, root bool) anthropic.Client {
	base := c.DataPlaneURL + "/anthropic/"
	if root {
		base = c.DataPlaneURL + "/"
	}
	return anthropic.NewClient(option.WithBaseURL(base), option.WithAPIKey(key), option.WithMaxRetries(0))
}

// anthropicScript answers by the last message: tool results get a summary,
// "weather?" two parallel calls, "think" a reasoned answer; anything else the
// simulator's default text.
func anthropicScript(req enginesim.Request) *enginesim.Reply {
	if len(req.Messages) == 0 {
		return nil
	}
	last := req.Messages[len(req.Messages)-1]
	switch {
	case last.Role == "tool":
		return &enginesim.Reply{Content: "Sunny in Tokyo, rain in Paris."}
	case last.Content == "weather?":
		return &enginesim.Reply{Content: "Checking both.", ToolCalls: []enginesim.ToolCall{
			{Name: "get_weather", Arguments: `{"city":"Tokyo"}`}, {Name: "get_weather", Arguments: `{"city":"Paris"}`},
		}}
	case last.Content == "think":
		return &enginesim.Reply{Thinking: "17 times 23 is 391.", Content: "391"}
	}
	return nil
}

var weatherTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
	Name: "get_weather", Description: anthropic.String("Current weather in a city"),
	InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]string{"type": "string"}}, Required: []string{"city"}},
}}

// streamMessage sends a streamed request and folds it with the SDK's accumulator.
func streamMessage(ctx context.Context, t *testing.T, c *cluster.Cluster, client anthropic.Client, params anthropic.MessageNewParams) anthropic.Message {
	t.Helper()
	stream := client.Messages.NewStreaming(ctx, params)
	var msg anthropic.Message
	events := 0
	for stream.Next() {
		require.NoError(t, msg.Accumulate(stream.Current()), "a well-formed event sequence")
		events++
	}
	require.NoError(t, stream.Err(), c.Logs())
	require.Positive(t, events)
	return msg
}

type toolCall struct{ id, name, input string }

func toolCalls(m anthropic.Message) (text string, calls []toolCall) {
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			text += b.Text
		case "tool_use":
			calls = append(calls, toolCall{b.ID, b.Name, string(b.Input)})
		}
	}
	return text, calls
}

// TestAnthropicSDK drives anthropic-sdk-go through the data plane and the
// control plane to an Ollama-dialect and a vLLM-dialect simulator.
func TestAnthropicSDK(t *testing.T) {
	t.Parallel()
	ollamaSim, ollamaURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, CompletionTokens: 12, Script: anthropicScript,
		Models: []enginesim.ModelSpec{{Name: "sim-ollama", ContextLength: 4096, Capabilities: []string{"completion", "tools", "thinking"}}}})
	vllmSim, vllmURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, CompletionTokens: 12, Script: anthropicScript,
		Models: []enginesim.ModelSpec{{Name: "sim-qwen3", ContextLength: 4096}}})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{
		{Name: "ollama-sim", Engine: "ollama", URL: ollamaURL},
		{Name: "vllm-sim", Engine: "vllm", URL: vllmURL},
	}})
	client := anthropicClient(c, c.AdminKey, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	page, err := client.Models.List(ctx, anthropic.ModelListParams{})
	require.NoError(t, err, c.Logs())
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
		require.Equal(t, m.ID, m.DisplayName)
		require.EqualValues(t, 4096, m.MaxInputTokens)
	}
	require.ElementsMatch(t, []string{"sim-ollama", "sim-qwen3"}, stripLatest(ids))
	require.False(t, page.HasMore)

	for _, tc := range []struct {
		model string
		sim   *enginesim.Server
	}{{"sim-ollama", ollamaSim}, {"sim-qwen3", vllmSim}} {
		lastBody := func(t *testing.T) map[string]any {
			var body map[string]any
			require.NoError(t, json.Unmarshal(tc.sim.Stats().LastRequestBody, &body))
			return body
		}
		t.Run(tc.model+"/plain", func(t *testing.T) {
			msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{
				Model: anthropic.Model(tc.model), MaxTokens: 5,
				System:   []anthropic.TextBlockParam{{Text: "You are terse."}},
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
			})
			require.NoError(t, err, c.Logs())
			require.True(t, strings.HasPrefix(msg.ID, "msg_"), msg.ID)
			require.Equal(t, tc.model, string(msg.Model))
			require.Equal(t, anthropic.StopReasonMaxTokens, msg.StopReason)
			require.Len(t, msg.Content, 1)
			require.Equal(t, enginesim.DefaultText(5), msg.Content[0].Text)
			require.EqualValues(t, 5, msg.Usage.OutputTokens, "the engine's exact count")
			require.Positive(t, msg.Usage.InputTokens)
			first := lastBody(t)["messages"].([]any)[0].(map[string]any)
			require.Equal(t, "system", first["role"], "the system prompt reaches the engine first")
			require.Equal(t, "You are terse.", first["content"])
		})
		t.Run(tc.model+"/streamed", func(t *testing.T) {
			msg := streamMessage(ctx, t, c, client, anthropic.MessageNewParams{
				Model: anthropic.Model(tc.model), MaxTokens: 64,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("count"))},
			})
			require.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)
			require.Len(t, msg.Content, 1)
			require.Equal(t, enginesim.DefaultText(12), msg.Content[0].Text, "every token arrives, in order")
			require.EqualValues(t, 12, msg.Usage.OutputTokens)
			require.Positive(t, msg.Usage.InputTokens)
		})
		for _, streamed := range []bool{false, true} {
			t.Run(tc.model+"/tool cycle"+map[bool]string{true: " streamed", false: ""}[streamed], func(t *testing.T) {
				send := func(params anthropic.MessageNewParams) anthropic.Message {
					if streamed {
						return streamMessage(ctx, t, c, client, params)
					}
					msg, err := client.Messages.New(ctx, params)
					require.NoError(t, err, c.Logs())
					return *msg
				}
				messages := []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather?"))}
				params := anthropic.MessageNewParams{Model: anthropic.Model(tc.model), MaxTokens: 256, Tools: []anthropic.ToolUnionParam{weatherTool}}
				params.Messages = messages
				first := send(params)
				require.Equal(t, anthropic.StopReasonToolUse, first.StopReason)
				text, calls := toolCalls(first)
				require.Equal(t, "Checking both.", strings.TrimSpace(text))
				require.Len(t, calls, 2, "two parallel calls")
				require.JSONEq(t, `{"city":"Tokyo"}`, calls[0].input)
				require.JSONEq(t, `{"city":"Paris"}`, calls[1].input)
				require.Equal(t, "get_weather", calls[1].name)
				require.NotEqual(t, calls[0].id, calls[1].id)

				params.Messages = append(messages, first.ToParam(), anthropic.NewUserMessage(
					anthropic.NewToolResultBlock(calls[0].id, "sunny", false),
					anthropic.NewToolResultBlock(calls[1].id, "rain", false),
				))
				second := send(params)
				require.Equal(t, anthropic.StopReasonEndTurn, second.StopReason)
				text, calls = toolCalls(second)
				require.Empty(t, calls)
				require.Equal(t, "Sunny in Tokyo, rain in Paris.", strings.TrimSpace(text))

				sent := lastBody(t)["messages"].([]any)
				require.Len(t, sent, 4, "user, assistant with two calls, two tool results")
				assistant := sent[1].(map[string]any)
				require.Len(t, assistant["tool_calls"], 2)
				for i, result := range []string{"sunny", "rain"} {
					m := sent[2+i].(map[string]any)
					require.Equal(t, "tool", m["role"])
					require.Equal(t, result, m["content"])
				}
			})
		}
		t.Run(tc.model+"/thinking", func(t *testing.T) {
			for _, streamed := range []bool{false, true} {
				params := anthropic.MessageNewParams{
					Model: anthropic.Model(tc.model), MaxTokens: 2048, Thinking: anthropic.ThinkingConfigParamOfEnabled(1024),
					Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("think"))},
				}
				var msg anthropic.Message
				if streamed {
					msg = streamMessage(ctx, t, c, client, params)
				} else {
					m, err := client.Messages.New(ctx, params)
					require.NoError(t, err, c.Logs())
					msg = *m
				}
				require.Len(t, msg.Content, 2, "streamed=%v", streamed)
				require.Equal(t, "thinking", msg.Content[0].Type)
				require.Equal(t, "17 times 23 is 391.", strings.TrimSpace(msg.Content[0].Thinking))
				require.Equal(t, "text", msg.Content[1].Type)
				require.Equal(t, "391", strings.TrimSpace(msg.Content[1].Text))
			}
		})
		t.Run(tc.model+"/stop sequences", func(t *testing.T) {
			msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{
				Model: anthropic.Model(tc.model), MaxTokens: 64, StopSequences: []string{"###", "END"},
				Temperature: anthropic.Float(0.3), TopK: anthropic.Int(5),
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("count"))},
			})
			require.NoError(t, err, c.Logs())
			require.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)
			body := lastBody(t)
			stop, sampling := body["stop"], body
			if opts, ok := body["options"].(map[string]any); ok {
				stop, sampling = opts["stop"], opts
			}
			require.Equal(t, []any{"###", "END"}, stop, "stop sequences reach the engine")
			require.InDelta(t, 0.3, sampling["temperature"], 1e-9)
			require.EqualValues(t, 5, sampling["top_k"])
		})
		t.Run(tc.model+"/count tokens", func(t *testing.T) {
			n, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
				Model:    anthropic.Model(tc.model),
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello there, how are you today?"))},
			})
			require.NoError(t, err, c.Logs())
			require.Positive(t, n.InputTokens)
		})
	}

	t.Run("root /v1/messages", func(t *testing.T) {
		root := anthropicClient(c, c.AdminKey, true)
		msg, err := root.Messages.New(ctx, anthropic.MessageNewParams{
			Model: "sim-qwen3", MaxTokens: 3, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
		})
		require.NoError(t, err, c.Logs())
		require.EqualValues(t, 3, msg.Usage.OutputTokens)
	})

	t.Run("errors", func(t *testing.T) {
		hi := []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}
		var apiErr *anthropic.Error
		_, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "no-such-model", MaxTokens: 5, Messages: hi})
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusNotFound, apiErr.StatusCode)
		require.EqualValues(t, "not_found_error", apiErr.Type())

		stream := client.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: "no-such-model", MaxTokens: 5, Messages: hi})
		require.False(t, stream.Next())
		require.ErrorAs(t, stream.Err(), &apiErr)
		require.Equal(t, http.StatusNotFound, apiErr.StatusCode, "refused before the stream starts")

		_, err = client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "no-such-model", Messages: hi})
		require.ErrorAs(t, err, &apiErr)
		require.EqualValues(t, "not_found_error", apiErr.Type())

		bad := anthropicClient(c, cluster.NewKey(t), false)
		for name, call := range map[string]func() error{
			"messages": func() error {
				_, err := bad.Messages.New(ctx, anthropic.MessageNewParams{Model: "sim-qwen3", MaxTokens: 5, Messages: hi})
				return err
			},
			"count_tokens": func() error {
				_, err := bad.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "sim-qwen3", Messages: hi})
				return err
			},
			"models": func() error {
				_, err := bad.Models.List(ctx, anthropic.ModelListParams{})
				return err
			},
		} {
			err := call()
			require.ErrorAs(t, err, &apiErr, "%s: %v", name, err)
			require.Equal(t, http.StatusUnauthorized, apiErr.StatusCode, name)
			require.EqualValues(t, "authentication_error", apiErr.Type(), name)
		}

		_, err = client.Messages.New(ctx, anthropic.MessageNewParams{Model: "sim-qwen3", Messages: hi})
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusBadRequest, apiErr.StatusCode, "max_tokens is required")
		require.EqualValues(t, "invalid_request_error", apiErr.Type())
	})
}

// TestAnthropicRealOllama sends the Anthropic SDK through the gateway to a real
// CPU Ollama serving a tiny random model, which cannot call tools or think:
// plain and streamed only.
func TestAnthropicRealOllama(t *testing.T) {
	t.Parallel()
	ol := ollamatest.Shared(t)
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "ollama", Engine: "ollama", URL: ol.URL}}})
	client := anthropicClient(c, c.AdminKey, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	page, err := client.Models.List(ctx, anthropic.ModelListParams{})
	require.NoError(t, err, c.Logs())
	require.Len(t, page.Data, 1)
	model := page.Data[0].ID
	require.Contains(t, []string{"tiny", "tiny:latest"}, model)

	params := anthropic.MessageNewParams{
		Model: anthropic.Model(model), MaxTokens: 8, Temperature: anthropic.Float(0),
		System:   []anthropic.TextBlockParam{{Text: "be brief"}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
	}
	msg, err := client.Messages.New(ctx, params)
	require.NoError(t, err, c.Logs())
	require.Equal(t, anthropic.StopReasonMaxTokens, msg.StopReason)
	require.EqualValues(t, 8, msg.Usage.OutputTokens, "Ollama's eval_count, passed through")
	require.Positive(t, msg.Usage.InputTokens)
	require.Len(t, msg.Content, 1)

	streamed := streamMessage(ctx, t, c, client, params)
	require.Equal(t, anthropic.StopReasonMaxTokens, streamed.StopReason)
	require.EqualValues(t, 8, streamed.Usage.OutputTokens)
	require.Equal(t, msg.Usage.InputTokens, streamed.Usage.InputTokens, "message_delta carries the engine's prompt count")
	require.Len(t, streamed.Content, 1)
	require.Equal(t, msg.Content[0].Text, streamed.Content[0].Text, "greedy decoding repeats, streamed or not")
}
