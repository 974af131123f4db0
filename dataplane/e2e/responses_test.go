package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/ollamatest"
)

// TestResponsesAPI drives /v1/responses with the official openai-go
// Responses client against both engine simulators: plain and streamed
// answers, a conversation continued through previous_response_id, a
// function-tool round trip, structured output, max_output_tokens, and the
// stored response's lifecycle (get, input items, delete).
func TestResponsesAPI(t *testing.T) {
	t.Parallel()
	c := cluster.Start(t, cluster.Options{Backends: oaiSims(t)})
	client := openaiClient(c, c.AdminKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, model := range []string{oaiOllamaChat, oaiVLLMChat} {
		t.Run(model+"/plain and stored", func(t *testing.T) { respPlain(ctx, t, c, client, model) })
		t.Run(model+"/streamed", func(t *testing.T) { respStreamed(ctx, t, c, client, model) })
		t.Run(model+"/multi-turn", func(t *testing.T) { respMultiTurn(ctx, t, c, client, model) })
		t.Run(model+"/function tool", func(t *testing.T) { respTools(ctx, t, c, client, model) })
		t.Run(model+"/structured output", func(t *testing.T) { respStructured(ctx, t, c, client, model) })
	}
}

// respUserKey creates a student and an inference key of theirs.
func respUserKey(ctx context.Context, t *testing.T, c *cluster.Cluster, name string) string {
	t.Helper()
	id := createUser(t, c, name, "student")
	var k struct {
		FullKey string `json:"full_key"`
	}
	status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodPost, "/api/admin/users/"+id+"/api-keys",
		map[string]any{"name": "other", "scopes": []string{"inference"}}, &k)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	return k.FullKey
}

func respInput(s string) responses.ResponseNewParamsInputUnion {
	return responses.ResponseNewParamsInputUnion{OfString: openai.String(s)}
}

func respPlain(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client, model string) {
	resp, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Input: respInput("hello"),
		Instructions: openai.String("Be brief.")})
	require.NoError(t, err, c.Logs())
	require.True(t, strings.HasPrefix(resp.ID, "resp_"), resp.ID)
	require.Equal(t, responses.ResponseStatusCompleted, resp.Status)
	require.Equal(t, "sim token 1 sim token 2 sim token 3 sim token 4 sim token 5 sim token 6", resp.OutputText())
	require.Positive(t, resp.Usage.InputTokens)
	require.EqualValues(t, 6, resp.Usage.OutputTokens)
	require.Equal(t, resp.Usage.InputTokens+resp.Usage.OutputTokens, resp.Usage.TotalTokens)
	require.Equal(t, "Be brief.", resp.Instructions.OfString)

	got, err := client.Responses.Get(ctx, resp.ID, responses.ResponseGetParams{})
	require.NoError(t, err)
	require.Equal(t, resp.OutputText(), got.OutputText())
	items, err := client.Responses.InputItems.List(ctx, resp.ID, responses.InputItemListParams{})
	require.NoError(t, err)
	require.Len(t, items.Data, 1)
	require.Equal(t, "message", items.Data[0].Type)
	require.Contains(t, items.Data[0].RawJSON(), `"text":"hello"`)

	// Another user cannot see it.
	other := openaiClient(c, respUserKey(ctx, t, c, "resp-"+strings.ReplaceAll(model, "-", "")))
	_, err = other.Responses.Get(ctx, resp.ID, responses.ResponseGetParams{})
	require.Equal(t, http.StatusNotFound, oaiAPIError(t, err).StatusCode)

	// Cut off by max_output_tokens: incomplete, with the reason.
	short, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Input: respInput("hello"), MaxOutputTokens: openai.Int(2)})
	require.NoError(t, err)
	require.Equal(t, responses.ResponseStatusIncomplete, short.Status)
	require.Equal(t, "max_output_tokens", string(short.IncompleteDetails.Reason))

	require.NoError(t, client.Responses.Delete(ctx, resp.ID))
	_, err = client.Responses.Get(ctx, resp.ID, responses.ResponseGetParams{})
	require.Equal(t, http.StatusNotFound, oaiAPIError(t, err).StatusCode)

	// Not stored: nothing to continue from.
	unstored, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Input: respInput("hello"), Store: openai.Bool(false)})
	require.NoError(t, err)
	_, err = client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Input: respInput("again"),
		PreviousResponseID: openai.String(unstored.ID)})
	apiErr := oaiAPIError(t, err)
	require.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
	require.Equal(t, "previous_response_not_found", apiErr.Code)
}

// respCollect reads a Responses stream to its end, checking that sequence
// numbers rise by one: the event types in order, the text and reasoning
// summary deltas joined, and the final response (completed or incomplete).
func respCollect(t *testing.T, c *cluster.Cluster, s *ssestream.Stream[responses.ResponseStreamEventUnion]) (types []string, text, reasoning string, final responses.Response) {
	t.Helper()
	var tb, rb strings.Builder
	seq := int64(-1)
	for s.Next() {
		ev := s.Current()
		require.Equal(t, seq+1, ev.SequenceNumber, "sequence numbers rise by one")
		seq = ev.SequenceNumber
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			tb.WriteString(ev.Delta)
		case "response.reasoning_summary_text.delta":
			rb.WriteString(ev.Delta)
		case "response.completed", "response.incomplete":
			final = ev.Response
		}
	}
	require.NoError(t, s.Err(), c.Logs())
	return types, tb.String(), rb.String(), final
}

func respStreamed(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client, model string) {
	s := client.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: model, Input: respInput("THINK"),
		Reasoning: shared.ReasoningParam{Effort: shared.ReasoningEffortLow, Summary: shared.ReasoningSummaryAuto}})
	types, text, reasoning, final := respCollect(t, c, s)
	require.Equal(t, []string{"response.created", "response.in_progress"}, types[:2])
	require.Equal(t, "response.completed", types[len(types)-1])
	for _, want := range []string{"response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_text.delta",
		"response.reasoning_summary_text.done", "response.content_part.added", "response.output_text.done", "response.content_part.done", "response.output_item.done"} {
		require.Contains(t, types, want)
	}
	require.Equal(t, "It is 42.", text)
	require.Equal(t, "Six times seven.", reasoning)
	require.Equal(t, "It is 42.", final.OutputText())
	require.Equal(t, "reasoning", final.Output[0].Type)
	require.Positive(t, final.Usage.OutputTokens)

	got, err := client.Responses.Get(ctx, final.ID, responses.ResponseGetParams{})
	require.NoError(t, err, "a streamed response is stored too")
	require.Equal(t, "It is 42.", got.OutputText())
}

func respMultiTurn(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client, model string) {
	first, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Input: respInput("THINK")})
	require.NoError(t, err, c.Logs())
	second, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Input: respInput("and now?"),
		PreviousResponseID: openai.String(first.ID)})
	require.NoError(t, err, c.Logs())
	require.Equal(t, first.ID, second.PreviousResponseID)
	third, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Input: respInput("ECHO-HISTORY"),
		PreviousResponseID: openai.String(second.ID)})
	require.NoError(t, err, c.Logs())
	// The script answers with the conversation the engine saw.
	require.Equal(t, "user:THINK|assistant:It is 42.|user:and now?|assistant:"+second.OutputText()+"|user:ECHO-HISTORY", third.OutputText())
}

func respTools(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client, model string) {
	tool := responses.ToolParamOfFunction("get_weather", map[string]any{"type": "object",
		"properties": map[string]any{"city": map[string]any{"type": "string"}, "unit": map[string]any{"type": "string"}}, "required": []string{"city"}}, false)
	for _, stream := range []bool{false, true} {
		params := responses.ResponseNewParams{Model: model, Input: respInput("WEATHER in Paris and Tokyo?"), Tools: []responses.ToolUnionParam{tool}}
		var resp responses.Response
		if stream {
			s := client.Responses.NewStreaming(ctx, params)
			var args []string
			for s.Next() {
				ev := s.Current()
				if ev.Type == "response.function_call_arguments.done" {
					args = append(args, ev.Arguments)
				}
				if ev.Type == "response.completed" {
					resp = ev.Response
				}
			}
			require.NoError(t, s.Err(), c.Logs())
			require.Equal(t, []string{`{"city":"Paris","unit":"celsius"}`, `{"city":"Tokyo","unit":"celsius"}`}, args)
		} else {
			r, err := client.Responses.New(ctx, params)
			require.NoError(t, err, c.Logs())
			resp = *r
		}
		var calls []responses.ResponseFunctionToolCall
		for _, it := range resp.Output {
			if it.Type == "function_call" {
				calls = append(calls, it.AsFunctionCall())
			}
		}
		require.Len(t, calls, 2)
		require.Equal(t, "get_weather", calls[0].Name)
		require.JSONEq(t, `{"city":"Tokyo","unit":"celsius"}`, calls[1].Arguments)
		var input responses.ResponseInputParam
		for _, call := range calls {
			out := responses.ResponseInputItemParamOfFunctionCallOutput("sunny")
			out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
			input = append(input, out)
		}
		answer, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model, PreviousResponseID: openai.String(resp.ID),
			Input: responses.ResponseNewParamsInputUnion{OfInputItemList: input}, Tools: []responses.ToolUnionParam{tool}})
		require.NoError(t, err, c.Logs())
		require.Equal(t, "Sunny in Paris, rainy in Tokyo.", answer.OutputText())
	}
}

func respStructured(ctx context.Context, t *testing.T, c *cluster.Cluster, client openai.Client, model string) {
	format := responses.ResponseTextConfigParam{Format: responses.ResponseFormatTextConfigUnionParam{OfJSONSchema: &responses.ResponseFormatTextJSONSchemaConfigParam{
		Name: "weather", Schema: map[string]any{"type": "object", "properties": map[string]any{
			"city": map[string]any{"type": "string"}, "temp": map[string]any{"type": "number"}}, "required": []string{"city", "temp"}},
	}}}
	resp, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Input: respInput("JSON-OK"), Text: format})
	require.NoError(t, err, c.Logs())
	require.JSONEq(t, `{"city":"Oslo","temp":-3}`, resp.OutputText())

	resp, err = client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Input: respInput("the weather"), Text: format})
	require.NoError(t, err, c.Logs())
	var v struct {
		City *string  `json:"city"`
		Temp *float64 `json:"temp"`
	}
	require.NoError(t, json.Unmarshal([]byte(resp.OutputText()), &v), resp.OutputText())
	require.NotNil(t, v.City)
	require.NotNil(t, v.Temp)

	_, err = client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Input: respInput("JSON-BAD"), Text: format})
	require.Equal(t, http.StatusUnprocessableEntity, oaiAPIError(t, err).StatusCode)
}

// TestResponsesRealOllama drives /v1/responses with the openai-go Responses
// client against a real CPU Ollama serving the tiny random model: a plain
// answer, a streamed one (the typed event sequence in order), and a second
// turn through previous_response_id whose prompt carries the first. The
// model's text is random, so only structure is asserted.
func TestResponsesRealOllama(t *testing.T) {
	t.Parallel()
	ol := ollamatest.Shared(t)
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "ollama", Engine: "ollama", URL: ol.URL}}})
	client := openaiClient(c, c.AdminKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	model := ol.ModelName
	params := func(input string) responses.ResponseNewParams {
		return responses.ResponseNewParams{Model: model, Input: respInput(input), MaxOutputTokens: openai.Int(8),
			Temperature: openai.Float(0), Instructions: openai.String("Answer briefly.")}
	}
	finished := func(t *testing.T, r *responses.Response) {
		t.Helper()
		require.True(t, strings.HasPrefix(r.ID, "resp_"), r.ID)
		require.Equal(t, model, r.Model)
		require.Contains(t, []responses.ResponseStatus{responses.ResponseStatusCompleted, responses.ResponseStatusIncomplete}, r.Status)
		if r.Status == responses.ResponseStatusIncomplete {
			require.Equal(t, "max_output_tokens", string(r.IncompleteDetails.Reason))
		}
		require.NotEmpty(t, r.Output)
		last := r.Output[len(r.Output)-1]
		require.Equal(t, "message", last.Type, r.RawJSON())
		require.Equal(t, "assistant", string(last.Role))
		require.Positive(t, r.Usage.InputTokens, "Ollama's prompt_eval_count")
		require.Positive(t, r.Usage.OutputTokens, "Ollama's eval_count")
		require.LessOrEqual(t, r.Usage.OutputTokens, int64(8), "max_output_tokens reaches the engine")
		require.Equal(t, r.Usage.InputTokens+r.Usage.OutputTokens, r.Usage.TotalTokens)
	}

	// Plain, stored, retrievable.
	first, err := client.Responses.New(ctx, params("zebraquartz first turn"))
	require.NoError(t, err, c.Logs())
	finished(t, first)
	got, err := client.Responses.Get(ctx, first.ID, responses.ResponseGetParams{})
	require.NoError(t, err, "the response is stored")
	require.Equal(t, first.ID, got.ID)
	require.Equal(t, first.OutputText(), got.OutputText())
	require.Equal(t, first.Usage.OutputTokens, got.Usage.OutputTokens)

	// Streamed: the events come in the documented order and end with the
	// final response, which is stored too.
	s := client.Responses.NewStreaming(ctx, params("hello stream"))
	types, text, _, final := respCollect(t, c, s)
	require.GreaterOrEqual(t, len(types), 6, types)
	require.Equal(t, []string{"response.created", "response.in_progress"}, types[:2])
	require.Contains(t, []string{"response.completed", "response.incomplete"}, types[len(types)-1])
	order := []string{"response.output_item.added", "response.content_part.added", "response.output_text.done",
		"response.content_part.done", "response.output_item.done"}
	at := 0
	for _, want := range order {
		i := slices.Index(types[at:], want)
		require.GreaterOrEqual(t, i, 0, "%s after %v in %v", want, order[:slices.Index(order, want)], types)
		at += i + 1
	}
	finished(t, &final)
	require.Equal(t, text, final.OutputText(), "the deltas add up to the final text")
	got, err = client.Responses.Get(ctx, final.ID, responses.ResponseGetParams{})
	require.NoError(t, err, "a streamed response is stored too")
	require.Equal(t, final.OutputText(), got.OutputText())

	// Second turn: the engine's prompt holds the first turn, so it is longer
	// than the first's prompt and output together, and the audit trail finds
	// the first turn's words in both requests.
	second, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: model, Input: respInput("and then?"),
		PreviousResponseID: openai.String(first.ID), MaxOutputTokens: openai.Int(8), Temperature: openai.Float(0)})
	require.NoError(t, err, c.Logs())
	finished(t, second)
	require.Equal(t, first.ID, second.PreviousResponseID)
	require.Greater(t, second.Usage.InputTokens, first.Usage.InputTokens, "the history reached the engine")
	items, err := client.Responses.InputItems.List(ctx, second.ID, responses.InputItemListParams{})
	require.NoError(t, err)
	require.NotEmpty(t, items.Data)
	require.Contains(t, items.Data[0].RawJSON(), "and then?", "the newest input item first")
	require.Eventually(t, func() bool {
		return len(auditRecords(t, c, "&surface=openai-responses&text=zebraquartz")) == 2
	}, 30*time.Second, 200*time.Millisecond, "both turns' prompts hold the first turn's words")
}
