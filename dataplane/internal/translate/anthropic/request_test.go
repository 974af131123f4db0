package anthropic_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic"
)

func msg(role canonical.Role, parts ...canonical.Part) canonical.Message {
	return canonical.Message{Role: role, Content: parts}
}

func tp(s string) canonical.Part { return canonical.TextPart(s) }

func TestDecodeMessagesRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want *canonical.Request
	}{
		{
			name: "minimal",
			body: `{"model":"m","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`,
			want: &canonical.Request{Model: "m", Messages: []canonical.Message{msg(canonical.RoleUser, tp("hi"))},
				Sampling: canonical.Sampling{MaxTokens: 16}},
		},
		{
			name: "system blocks, sampling, stop sequences, metadata, stream",
			body: `{"model":"m","max_tokens":100,"stream":true,"system":[{"type":"text","text":"be brief","cache_control":{"type":"ephemeral"}},{"type":"text","text":"be kind"}],
				"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
				"temperature":0.5,"top_p":0.9,"top_k":40,"stop_sequences":["###","END"],"metadata":{"user_id":"u-1"}}`,
			want: &canonical.Request{Model: "m", Stream: true, User: "u-1",
				Messages: []canonical.Message{msg(canonical.RoleSystem, tp("be brief"), tp("be kind")), msg(canonical.RoleUser, tp("a"), tp("b"))},
				Sampling: canonical.Sampling{Temperature: ptr(0.5), TopP: ptr(0.9), TopK: ptr(int64(40)), MaxTokens: 100, Stop: []string{"###", "END"}}},
		},
		{
			name: "tool cycle with images, thinking history and parallel results",
			body: `{"model":"m","max_tokens":2048,
				"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}},{"name":"noargs"}],
				"tool_choice":{"type":"any","disable_parallel_tool_use":false},
				"thinking":{"type":"enabled","budget_tokens":1024},
				"messages":[
				 {"role":"user","content":[{"type":"text","text":"weather?"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}},
				   {"type":"image","source":{"type":"url","url":"https://example.com/a.jpg"}}]},
				 {"role":"assistant","content":[{"type":"thinking","thinking":"two cities","signature":"sig"},{"type":"redacted_thinking","data":"xx"},
				   {"type":"text","text":"Checking."},
				   {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city": "Tokyo"}},
				   {"type":"tool_use","id":"toolu_2","name":"get_weather","input":{"city":"Paris"}}]},
				 {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"},
				   {"type":"tool_result","tool_use_id":"toolu_2","is_error":true,"content":[{"type":"text","text":"rain"},{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"BBBB"}}]},
				   {"type":"text","text":"and now?"}]}]}`,
			want: &canonical.Request{Model: "m",
				Messages: []canonical.Message{
					msg(canonical.RoleUser, tp("weather?"),
						canonical.Part{Type: canonical.PartImage, Image: &canonical.Image{MediaType: "image/png", Data: "AAAA"}},
						canonical.Part{Type: canonical.PartImage, Image: &canonical.Image{URL: "https://example.com/a.jpg"}}),
					{Role: canonical.RoleAssistant, Content: []canonical.Part{tp("Checking.")}, Reasoning: "two cities",
						ToolCalls: []canonical.ToolCall{{ID: "toolu_1", Name: "get_weather", Arguments: `{"city":"Tokyo"}`}, {ID: "toolu_2", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
					{Role: canonical.RoleTool, ToolCallID: "toolu_1", Content: []canonical.Part{tp("sunny")}},
					{Role: canonical.RoleTool, ToolCallID: "toolu_2", Content: []canonical.Part{tp("rain")}},
					msg(canonical.RoleUser, canonical.Part{Type: canonical.PartImage, Image: &canonical.Image{MediaType: "image/jpeg", Data: "BBBB"}}, tp("and now?")),
				},
				Tools: []canonical.Tool{
					{Name: "get_weather", Description: "Weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)},
					{Name: "noargs", Parameters: json.RawMessage(`{"type":"object","properties":{}}`)},
				},
				ToolChoice:        &canonical.ToolChoice{Mode: canonical.ToolChoiceRequired},
				ParallelToolCalls: ptr(true),
				Think:             &canonical.Thinking{Enabled: true, BudgetTokens: 1024},
				Sampling:          canonical.Sampling{MaxTokens: 2048}},
		},
		{
			name: "forced tool, no parallel calls, adaptive thinking with effort, structured output",
			body: `{"model":"m","max_tokens":10,"tools":[{"type":"custom","name":"f","input_schema":{"type":"object"}}],
				"tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true},"thinking":{"type":"adaptive"},
				"output_config":{"effort":"max","format":{"type":"json_schema","schema":{"type":"object"}}},
				"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"doc"}}]},{"role":"assistant","content":"{"}]}`,
			want: &canonical.Request{Model: "m",
				Messages:          []canonical.Message{msg(canonical.RoleUser, tp("doc")), msg(canonical.RoleAssistant, tp("{"))},
				Tools:             []canonical.Tool{{Name: "f", Parameters: json.RawMessage(`{"type":"object"}`)}},
				ToolChoice:        &canonical.ToolChoice{Mode: canonical.ToolChoiceFunction, Name: "f"},
				ParallelToolCalls: ptr(false),
				Think:             &canonical.Thinking{Enabled: true, Effort: "high"},
				ResponseFormat:    &canonical.ResponseFormat{Type: canonical.FormatJSONSchema, Schema: json.RawMessage(`{"type":"object"}`)},
				Sampling:          canonical.Sampling{MaxTokens: 10}},
		},
		{
			name: "thinking disabled, tool_choice none, data URL image, beta output_format",
			body: `{"model":"m","max_tokens":1,"thinking":{"type":"disabled"},"tool_choice":{"type":"none"},
				"output_format":{"type":"json_schema","schema":{"type":"object"}},
				"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"data:image/gif;base64,R0lG"}}]}]}`,
			want: &canonical.Request{Model: "m",
				Messages:       []canonical.Message{msg(canonical.RoleUser, canonical.Part{Type: canonical.PartImage, Image: &canonical.Image{MediaType: "image/gif", Data: "R0lG"}})},
				ToolChoice:     &canonical.ToolChoice{Mode: canonical.ToolChoiceNone},
				Think:          &canonical.Thinking{Enabled: false},
				ResponseFormat: &canonical.ResponseFormat{Type: canonical.FormatJSONSchema, Schema: json.RawMessage(`{"type":"object"}`)},
				Sampling:       canonical.Sampling{MaxTokens: 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := anthropic.DecodeMessagesRequest([]byte(tc.body))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeRefusals(t *testing.T) {
	t.Parallel()
	const user = `"messages":[{"role":"user","content":"x"}]`
	tests := []struct {
		name, body, param string
	}{
		{"empty body", ``, ""},
		{"not an object", `[]`, ""},
		{"bad JSON", `{"model":`, ""},
		{"wrong type", `{"model":"m","max_tokens":"10",` + user + `}`, "max_tokens"},
		{"no model", `{"max_tokens":1,` + user + `}`, "model"},
		{"no max_tokens", `{"model":"m",` + user + `}`, "max_tokens"},
		{"zero max_tokens", `{"model":"m","max_tokens":0,` + user + `}`, "max_tokens"},
		{"no messages", `{"model":"m","max_tokens":1,"messages":[]}`, "messages"},
		{"system role", `{"model":"m","max_tokens":1,"messages":[{"role":"system","content":"x"}]}`, "messages.0.role"},
		{"no content", `{"model":"m","max_tokens":1,"messages":[{"role":"user"}]}`, "messages.0.content"},
		{"content a number", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":5}]}`, "messages.content"},
		{"unknown block", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"search_result"}]}]}`, "messages.0.content.0.type"},
		{"tool_use from user", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_use","id":"a","name":"f"}]}]}`, "messages.0.content.0.type"},
		{"image from assistant", `{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"A"}}]}]}`, "messages.0.content.0.type"},
		{"tool_use input not an object", `{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":[1]}]}]}`, "messages.0.content.0.input"},
		{"tool_result without id", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}`, "messages.0.content.0.tool_use_id"},
		{"file image", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`, "messages.0.content.0.source.type"},
		{"ftp image", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"ftp://x"}}]}]}`, "messages.0.content.0.source.url"},
		{"pdf document", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"A"}}]}]}`, "messages.0.content.0.source.type"},
		{"image system", `{"model":"m","max_tokens":1,"system":[{"type":"image"}],` + user + `}`, "system.0.type"},
		{"temperature above 1", `{"model":"m","max_tokens":1,"temperature":1.5,` + user + `}`, "temperature"},
		{"negative top_k", `{"model":"m","max_tokens":1,"top_k":-1,` + user + `}`, "top_k"},
		{"empty stop sequence", `{"model":"m","max_tokens":1,"stop_sequences":["a",""],` + user + `}`, "stop_sequences.1"},
		{"server tool", `{"model":"m","max_tokens":1,"tools":[{"type":"web_search_20250305","name":"web_search"}],` + user + `}`, "tools.0.type"},
		{"nameless tool", `{"model":"m","max_tokens":1,"tools":[{"input_schema":{}}],` + user + `}`, "tools.0.name"},
		{"duplicate tool", `{"model":"m","max_tokens":1,"tools":[{"name":"f"},{"name":"f"}],` + user + `}`, "tools.1.name"},
		{"schema not an object", `{"model":"m","max_tokens":1,"tools":[{"name":"f","input_schema":"x"}],` + user + `}`, "tools.0.input_schema"},
		{"unknown tool_choice", `{"model":"m","max_tokens":1,"tool_choice":{"type":"some"},` + user + `}`, "tool_choice.type"},
		{"tool_choice names no tool", `{"model":"m","max_tokens":1,"tools":[{"name":"f"}],"tool_choice":{"type":"tool","name":"g"},` + user + `}`, "tool_choice.name"},
		{"thinking without budget", `{"model":"m","max_tokens":2000,"thinking":{"type":"enabled"},` + user + `}`, "thinking.budget_tokens"},
		{"thinking budget too small", `{"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":100},` + user + `}`, "thinking.budget_tokens"},
		{"thinking budget over max_tokens", `{"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":2000},` + user + `}`, "thinking.budget_tokens"},
		{"unknown thinking", `{"model":"m","max_tokens":1,"thinking":{"type":"on"},` + user + `}`, "thinking.type"},
		{"unknown effort", `{"model":"m","max_tokens":1,"output_config":{"effort":"huge"},` + user + `}`, "output_config.effort"},
		{"text output format", `{"model":"m","max_tokens":1,"output_config":{"format":{"type":"text"}},` + user + `}`, "output_config.format.type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := anthropic.DecodeMessagesRequest([]byte(tc.body))
			var ce *canonical.Error
			require.ErrorAs(t, err, &ce, "got %v", err)
			require.Equal(t, canonical.KindInvalidRequest, ce.Kind)
			require.Equal(t, tc.param, ce.Param)
			require.NotEmpty(t, ce.Message)
		})
	}
}

func TestDecodeCountTokensRequest(t *testing.T) {
	t.Parallel()
	req, err := anthropic.DecodeCountTokensRequest([]byte(`{"model":"m","system":"s","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err, "count_tokens needs no max_tokens")
	require.Equal(t, []canonical.Message{msg(canonical.RoleSystem, tp("s")), msg(canonical.RoleUser, tp("hi"))}, req.Messages)
	_, err = anthropic.DecodeCountTokensRequest([]byte(`{"messages":[{"role":"user","content":"hi"}]}`))
	require.Error(t, err)
}
