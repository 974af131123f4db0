package openai

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// encodeResponseReflect is EncodeResponse as it was written with encoding/json
// and the wire types; the direct encoder must write the same bytes.
func encodeResponseReflect(resp *canonical.Response, meta Meta) ([]byte, error) {
	out := ChatCompletion{ID: meta.ID, Object: "chat.completion", Created: meta.Created, Model: meta.Model,
		Choices: make([]CompletionChoice, 0, len(resp.Choices))}
	for _, ch := range resp.Choices {
		msg := ChatMessage{Role: string(canonical.RoleAssistant), ReasoningContent: ch.Message.Reasoning}
		if text := ch.Message.Text(); text != "" || len(ch.Message.ToolCalls) == 0 {
			msg.Content = StringContent(text)
		}
		for _, tc := range ch.Message.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: tc.ID, Type: "function",
				Function: FunctionCall{Name: tc.Name, Arguments: Arguments(tc.Arguments)}})
		}
		var finish *string
		if ch.FinishReason != "" {
			s := string(ch.FinishReason)
			finish = &s
		}
		out.Choices = append(out.Choices, CompletionChoice{Index: ch.Index, Message: msg, FinishReason: finish})
	}
	if resp.Usage != nil {
		out.Usage = wireUsage(*resp.Usage)
	}
	return marshal(out)
}

func fuzzResponse(text, reasoning, id, name, args, finish string, index int, calls uint8, usage bool) *canonical.Response {
	msg := canonical.Message{Role: canonical.RoleAssistant, Reasoning: reasoning}
	if text != "" {
		msg.Content = []canonical.Part{canonical.TextPart(text)}
	}
	for i := range int(calls % 3) {
		msg.ToolCalls = append(msg.ToolCalls, canonical.ToolCall{ID: id[:min(i, len(id))], Name: name, Arguments: args})
	}
	resp := &canonical.Response{Choices: []canonical.Choice{{Index: index, Message: msg, FinishReason: canonical.FinishReason(finish)}}}
	if calls%5 == 4 {
		resp.Choices = append(resp.Choices, canonical.Choice{Index: index + 1})
	}
	if calls%7 == 6 {
		resp.Choices = nil
	}
	if usage {
		resp.Usage = &canonical.Usage{Prompt: int64(len(text)), Completion: int64(index)}
	}
	return resp
}

func TestEncodeResponseMatchesEncodingJSON(t *testing.T) {
	meta := Meta{ID: "chatcmpl-1", Model: "m<&>", Created: 1751234567}
	for _, resp := range []*canonical.Response{
		fuzzResponse("Hello <b>", "", "", "", "", "stop", 0, 0, true),
		fuzzResponse("", "thought\n", "call_1", "get_weather", `{"city":"Paris"}`, "tool_calls", 0, 2, false),
		fuzzResponse("both", "r", "c", "f", "", "", 3, 1, true),
		fuzzResponse("", "", "", "", "", "", 0, 4, false),
		fuzzResponse("x", "", "", "", "", "length", 0, 6, true),
	} {
		want, err := encodeResponseReflect(resp, meta)
		require.NoError(t, err)
		got, err := EncodeResponse(resp, meta)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got))
	}
}

func FuzzEncodeResponse(f *testing.F) {
	f.Add("Hello", "", "call_1", "fn", `{"a":1}`, "stop", 0, uint8(0), true, "id", "model")
	f.Add("", "why\u2028", "", "", "", "tool_calls", 2, uint8(2), false, "", "<m>")
	f.Add("\xff\x00", "\b\f", "c", "n", "", "", -1, uint8(4), true, "\"", "\\")
	f.Fuzz(func(t *testing.T, text, reasoning, id, name, args, finish string, index int, calls uint8, usage bool, metaID, model string) {
		resp := fuzzResponse(text, reasoning, id, name, args, finish, index, calls, usage)
		meta := Meta{ID: metaID, Model: model, Created: int64(index)}
		want, err := encodeResponseReflect(resp, meta)
		if err != nil {
			t.Skip()
		}
		got, err := EncodeResponse(resp, meta)
		if err != nil || string(got) != string(want) {
			t.Fatalf("EncodeResponse = %s, %v; encoding/json writes %s", got, err, want)
		}
	})
}
