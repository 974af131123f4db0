package ollama_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
)

// TestUpstreamToolChoice checks what Ollama, which has no tool_choice field,
// is sent for each tool_choice: the tools it may call and the instruction.
func TestUpstreamToolChoice(t *testing.T) {
	t.Parallel()
	tools := []canonical.Tool{
		{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object"}`)},
		{Name: "get_time", Parameters: json.RawMessage(`{"type":"object"}`)},
	}
	user := canonical.Message{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart("weather?")}}
	system := canonical.Message{Role: canonical.RoleSystem, Content: []canonical.Part{canonical.TextPart("Be brief.")}}
	tests := []struct {
		name      string
		choice    *canonical.ToolChoice
		system    bool
		wantTools []string
		wantSys   string // the first message's content; "" for no system message
		required  bool
		named     string
	}{
		{"absent keeps all tools", nil, false, []string{"get_weather", "get_time"}, "", false, ""},
		{"auto keeps all tools", &canonical.ToolChoice{Mode: canonical.ToolChoiceAuto}, true, []string{"get_weather", "get_time"}, "Be brief.", false, ""},
		{"none sends no tools", &canonical.ToolChoice{Mode: canonical.ToolChoiceNone}, false, nil, "", false, ""},
		{"required keeps the tools and instructs", &canonical.ToolChoice{Mode: canonical.ToolChoiceRequired}, false,
			[]string{"get_weather", "get_time"}, "You must respond by calling one or more of the provided tools. Do not answer with text.", true, ""},
		{"required joins the client's system message", &canonical.ToolChoice{Mode: canonical.ToolChoiceRequired}, true,
			[]string{"get_weather", "get_time"}, "Be brief.\n\nYou must respond by calling one or more of the provided tools. Do not answer with text.", true, ""},
		{"a named function sends only that tool", &canonical.ToolChoice{Mode: canonical.ToolChoiceFunction, Name: "get_time"}, false,
			[]string{"get_time"}, `You must respond by calling the tool "get_time". Do not answer with text.`, true, "get_time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := &canonical.Request{Model: "m", Tools: tools, ToolChoice: tc.choice, Messages: []canonical.Message{user}}
			if tc.system {
				req.Messages = []canonical.Message{system, user}
			}
			required, named := ollama.ToolCallRequired(req)
			require.Equal(t, tc.required, required)
			require.Equal(t, tc.named, named)
			body, err := ollama.EncodeUpstreamRequest(req, ollama.UpstreamOptions{Model: "m"})
			require.NoError(t, err)
			var sent ollama.ChatRequest
			require.NoError(t, json.Unmarshal(body, &sent))
			var names []string
			for _, tool := range sent.Tools {
				names = append(names, tool.Function.Name)
			}
			require.Equal(t, tc.wantTools, names)
			require.NotContains(t, string(body), "tool_choice", "Ollama has no such field")
			if tc.wantSys == "" {
				require.Len(t, sent.Messages, 1)
				require.Equal(t, "user", sent.Messages[0].Role)
				return
			}
			require.Equal(t, "system", sent.Messages[0].Role)
			require.Equal(t, tc.wantSys, sent.Messages[0].Content)
			require.Equal(t, "weather?", sent.Messages[len(sent.Messages)-1].Content)
		})
	}
}

// TestUpstreamToolChoiceUnknownName: a named function that is not among the
// tools is the client's error (vLLM refuses it too).
func TestUpstreamToolChoiceUnknownName(t *testing.T) {
	t.Parallel()
	req := &canonical.Request{Model: "m", Tools: []canonical.Tool{{Name: "a"}},
		ToolChoice: &canonical.ToolChoice{Mode: canonical.ToolChoiceFunction, Name: "b"},
		Messages:   []canonical.Message{{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart("hi")}}}}
	_, err := ollama.EncodeUpstreamRequest(req, ollama.UpstreamOptions{Model: "m"})
	var ce *canonical.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, canonical.KindInvalidRequest, ce.Kind)
	require.Equal(t, "tool_choice", ce.Param)
}
