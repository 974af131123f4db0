package openai_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/golden"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

func TestDecodeResponsesRequest(t *testing.T) {
	r, err := openai.DecodeResponsesRequest([]byte(`{"model":"m","instructions":"be brief","input":[
		{"role":"user","content":[{"type":"input_text","text":"hi"}]},
		{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\":1}"},
		{"type":"function_call_output","call_id":"c1","output":"42"}],
		"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],
		"tool_choice":{"type":"function","name":"f"},
		"text":{"format":{"type":"json_schema","name":"x","schema":{"type":"object"}}},
		"reasoning":{"effort":"minimal","summary":"auto"},"max_output_tokens":7,"stream":true}`))
	require.NoError(t, err)
	require.True(t, r.Summary)
	require.EqualValues(t, 7, r.Chat.Sampling.MaxTokens)
	require.Equal(t, "low", r.Chat.Think.Effort)
	require.Equal(t, canonical.FormatJSONSchema, r.Chat.ResponseFormat.Type)
	require.Equal(t, "f", r.Chat.ToolChoice.Name)
	require.True(t, r.Chat.IncludeUsage, "a stream asks the engine for usage")
	msgs, err := openai.ItemsToMessages(r.Items, "input")
	require.NoError(t, err)
	require.Len(t, msgs, 3)
	require.Equal(t, "c1", msgs[1].ToolCalls[0].ID)
	require.Equal(t, canonical.RoleTool, msgs[2].Role)

	for body, param := range map[string]string{
		`{"model":"m"}`: "input",
		`{"input":"x"}`: "model",
		`{"model":"m","input":"x","background":true}`:               "background",
		`{"model":"m","input":[{"type":"item_reference"}]}`:         "input[0].type",
		`{"model":"m","input":"x","tools":[{"type":"web_search"}]}`: "tools[0].type",
		`{"model":"m","input":"x","max_output_tokens":0}`:           "max_output_tokens",
		`{"model":"m","input":[{"role":"robot","content":"x"}]}`:    "input[0].role",
	} {
		_, err := openai.DecodeResponsesRequest([]byte(body))
		require.Error(t, err, body)
		require.Equal(t, param, canonical.AsError(err).Param, body)
	}
}

// TestResponsesStreamGolden fixes the event sequence of a streamed response
// with reasoning (summarised), text and two function calls.
func TestResponsesStreamGolden(t *testing.T) {
	r, err := openai.DecodeResponsesRequest([]byte(`{"model":"m","input":"hi","stream":true,"reasoning":{"summary":"auto"}}`))
	require.NoError(t, err)
	id := "resp_00000000000000000000000000000001"
	enc := openai.NewResponsesStream(openai.NewResponseObject(r, id, 1700000000), openai.NewItemIDs(id), r.Summary)
	b := enc.AppendStart(nil)
	for _, c := range []canonical.Chunk{
		{Role: canonical.RoleAssistant}, {Reasoning: "Think"}, {Reasoning: "ing."}, {Content: "Hello"}, {Content: " there."},
		{ToolCalls: []canonical.ToolCallDelta{{Index: 0, ID: "call_a", Name: "f", Arguments: `{"x"`}}},
		{ToolCalls: []canonical.ToolCallDelta{{Index: 0, Arguments: `:1}`}}},
		{ToolCalls: []canonical.ToolCallDelta{{Index: 1, ID: "call_b", Name: "g"}}},
		{FinishReason: canonical.FinishToolCalls},
	} {
		b = enc.AppendChunk(b, &c)
	}
	b = enc.AppendEnd(b, canonical.Usage{Prompt: 5, Completion: 9})
	golden.Assert(t, filepath.Join("testdata", "responses", "stream.golden"), b)
	require.Equal(t, "completed", enc.Object().Status)
	require.Len(t, enc.Object().Output, 4)
}

func TestResponsesIncomplete(t *testing.T) {
	r, err := openai.DecodeResponsesRequest([]byte(`{"model":"m","input":"hi","max_output_tokens":2}`))
	require.NoError(t, err)
	obj := openai.NewResponseObject(r, "resp_1", 1)
	resp := &canonical.Response{Choices: []canonical.Choice{{Message: canonical.Message{Role: canonical.RoleAssistant,
		Content: []canonical.Part{canonical.TextPart("a b")}}, FinishReason: canonical.FinishLength}}}
	obj.Finish(openai.OutputItems(resp, openai.NewItemIDs("resp_1"), false), canonical.FinishLength, canonical.Usage{Prompt: 3, Completion: 2})
	b, err := json.Marshal(obj)
	require.NoError(t, err)
	require.Contains(t, string(b), `"status":"incomplete","background":false,"error":null,"incomplete_details":{"reason":"max_output_tokens"}`)
	require.Contains(t, string(b), `"usage":{"input_tokens":3,"input_tokens_details":{"cached_tokens":0},"output_tokens":2,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":5}`)
}

// FuzzDecodeResponsesRequest: any body either decodes to a request whose
// items all convert, or fails with a canonical error; nothing panics.
func FuzzDecodeResponsesRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","input":"hi"}`,
		`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo="}]}]}`,
		`{"model":"m","input":[{"type":"reasoning","summary":[{"type":"summary_text","text":"t"}]},{"type":"function_call","call_id":"c","name":"f"}]}`,
		`{"model":"m","input":"x","text":{"format":{"type":"json_schema","schema":null}}}`,
		`{"model":"m","input":"x","reasoning":{"effort":"huge"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := openai.DecodeResponsesRequest(body)
		if err != nil {
			require.NotNil(t, canonical.AsError(err))
			return
		}
		_, err = openai.ItemsToMessages(r.Items, "input")
		require.NoError(t, err)
	})
}
