package openai_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// TestUpstreamToolChoicePassThrough: vLLM enforces tool_choice itself (guided
// decoding), so every form a client sends, in either dialect, reaches it as
// OpenAI's tool_choice with all the tools.
func TestUpstreamToolChoicePassThrough(t *testing.T) {
	t.Parallel()
	const tools = `"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object"}}},{"type":"function","function":{"name":"b","parameters":{"type":"object"}}}]`
	const atools = `"tools":[{"name":"a","input_schema":{"type":"object"}},{"name":"b","input_schema":{"type":"object"}}]`
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body string
		anthropic  bool
		want       string
	}{
		{"auto", `{"model":"m",` + msgs + `,` + tools + `,"tool_choice":"auto"}`, false, `"auto"`},
		{"none", `{"model":"m",` + msgs + `,` + tools + `,"tool_choice":"none"}`, false, `"none"`},
		{"required", `{"model":"m",` + msgs + `,` + tools + `,"tool_choice":"required"}`, false, `"required"`},
		{"named", `{"model":"m",` + msgs + `,` + tools + `,"tool_choice":{"type":"function","function":{"name":"b"}}}`, false,
			`{"function":{"name":"b"},"type":"function"}`},
		{"anthropic any", `{"model":"m","max_tokens":10,` + msgs + `,` + atools + `,"tool_choice":{"type":"any"}}`, true, `"required"`},
		{"anthropic tool", `{"model":"m","max_tokens":10,` + msgs + `,` + atools + `,"tool_choice":{"type":"tool","name":"b"}}`, true,
			`{"function":{"name":"b"},"type":"function"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			decode := openai.DecodeChatRequest
			if tc.anthropic {
				decode = anthropic.DecodeMessagesRequest
			}
			req, err := decode([]byte(tc.body))
			require.NoError(t, err)
			body, err := openai.EncodeUpstreamRequest(req, openai.UpstreamOptions{Model: "m"})
			require.NoError(t, err)
			var sent struct {
				Tools      []json.RawMessage `json:"tools"`
				ToolChoice json.RawMessage   `json:"tool_choice"`
			}
			require.NoError(t, json.Unmarshal(body, &sent))
			require.JSONEq(t, tc.want, string(sent.ToolChoice))
			require.Len(t, sent.Tools, 2, "vLLM gets every tool")
		})
	}
}
