package anthropic_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/anthropic"
)

func TestEncodeResponse(t *testing.T) {
	t.Parallel()
	meta := anthropic.Meta{ID: "msg_abc", Model: "llama3.2"}
	tests := []struct {
		name string
		resp *canonical.Response
		want string
	}{
		{
			name: "text",
			resp: &canonical.Response{Choices: []canonical.Choice{{Message: msg(canonical.RoleAssistant, tp("Hi <there>")), FinishReason: canonical.FinishStop}},
				Usage: &canonical.Usage{Prompt: 10, Completion: 2}},
			want: `{"id":"msg_abc","type":"message","role":"assistant","model":"llama3.2","content":[{"type":"text","text":"Hi <there>"}],` +
				`"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2}}`,
		},
		{
			name: "thinking, text and two tool calls",
			resp: &canonical.Response{Choices: []canonical.Choice{{
				Message: canonical.Message{Role: canonical.RoleAssistant, Reasoning: "hm", Content: []canonical.Part{tp("Checking.")},
					ToolCalls: []canonical.ToolCall{{ID: "call_1", Name: "f", Arguments: `{ "a" : 1 }`}, {Name: "g", Arguments: `not json`}}},
				FinishReason: canonical.FinishToolCalls,
			}}, Usage: &canonical.Usage{Prompt: 3, Completion: 4}},
			want: `{"id":"msg_abc","type":"message","role":"assistant","model":"llama3.2","content":[` +
				`{"type":"thinking","thinking":"hm","signature":""},{"type":"text","text":"Checking."},` +
				`{"type":"tool_use","id":"toolu_call_1","name":"f","input":{"a":1}},{"type":"tool_use","id":"toolu_abc_1","name":"g","input":{}}],` +
				`"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":4}}`,
		},
		{
			name: "nothing, cut short",
			resp: &canonical.Response{Choices: []canonical.Choice{{FinishReason: canonical.FinishLength}}},
			want: `{"id":"msg_abc","type":"message","role":"assistant","model":"llama3.2","content":[{"type":"text","text":""}],` +
				`"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`,
		},
		{
			name: "stop sequence",
			resp: &canonical.Response{Choices: []canonical.Choice{{Message: msg(canonical.RoleAssistant, tp("a")), FinishReason: canonical.FinishStop, StopSequence: "\n\n"}},
				Usage: &canonical.Usage{Prompt: 1, Completion: 1}},
			want: `{"id":"msg_abc","type":"message","role":"assistant","model":"llama3.2","content":[{"type":"text","text":"a"}],` +
				`"stop_reason":"stop_sequence","stop_sequence":"\n\n","usage":{"input_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, string(anthropic.EncodeResponse(tc.resp, meta)))
		})
	}
}

func TestStopReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		finish canonical.FinishReason
		seq    string
		tools  bool
		want   string
	}{
		{canonical.FinishStop, "", false, "end_turn"},
		{"", "", false, "end_turn"},
		{canonical.FinishLength, "", true, "max_tokens"},
		{canonical.FinishStop, "", true, "tool_use"},
		{canonical.FinishToolCalls, "", false, "end_turn"},
		{canonical.FinishStop, "END", false, "stop_sequence"},
		{canonical.FinishContentFilter, "", false, "refusal"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, anthropic.StopReason(tc.finish, tc.seq, tc.tools), "%+v", tc)
	}
}

func TestToolUseID(t *testing.T) {
	t.Parallel()
	require.Equal(t, "toolu_01", anthropic.ToolUseID("msg_x", "toolu_01", 0))
	require.Equal(t, "toolu_chatcmpl-tool-ab", anthropic.ToolUseID("msg_x", "chatcmpl-tool-ab", 0))
	require.Equal(t, "toolu_a_b_c", anthropic.ToolUseID("msg_x", "a.b/c", 0))
	require.Equal(t, "toolu_x_3", anthropic.ToolUseID("msg_x", "", 3))
}

func TestEncodeError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    *canonical.Error
		status int
		typ    string
		wait   time.Duration
	}{
		{"invalid", canonical.Invalid("max_tokens", "max_tokens: Field required"), 400, "invalid_request_error", 0},
		{"auth", &canonical.Error{Kind: canonical.KindAuthentication, Message: "bad key"}, 401, "authentication_error", 0},
		{"permission", &canonical.Error{Kind: canonical.KindPermission, Message: "no"}, 403, "permission_error", 0},
		{"not found", &canonical.Error{Kind: canonical.KindNotFound, Message: "no model"}, 404, "not_found_error", 0},
		{"too large", &canonical.Error{Kind: canonical.KindTooLarge, Message: "big"}, 413, "request_too_large", 0},
		{"invalid output", canonical.InvalidOutput("not JSON"), 422, "invalid_request_error", 0},
		{"rate", &canonical.Error{Kind: canonical.KindRateLimited, Message: "slow", Wait: 3 * time.Second}, 429, "rate_limit_error", 3 * time.Second},
		{"quota", &canonical.Error{Kind: canonical.KindQuotaExhausted, Message: "spent"}, 429, "rate_limit_error", time.Second},
		{"overloaded", &canonical.Error{Kind: canonical.KindUnavailable, Message: "queue full", Code: "queue_full"}, 529, "overloaded_error", time.Second},
		{"timeout", &canonical.Error{Kind: canonical.KindUnavailable, Message: "timed out", Code: "timeout"}, 504, "timeout_error", 0},
		{"backend", &canonical.Error{Kind: canonical.KindBackend, Message: "backend"}, 502, "api_error", 0},
		{"internal", &canonical.Error{Kind: canonical.KindInternal, Message: "Internal server error"}, 500, "api_error", 0},
		{"backend refusal passes through", &canonical.Error{Kind: canonical.KindInvalidRequest, Status: http.StatusNotFound, Message: "x"}, 404, "not_found_error", 0},
		{"backend 503 passes through", &canonical.Error{Kind: canonical.KindUnavailable, Status: 503, Message: "x"}, 503, "overloaded_error", time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			er := anthropic.EncodeError(tc.err, "req_1")
			require.Equal(t, tc.status, er.Status)
			require.Equal(t, tc.wait, er.RetryAfter)
			require.JSONEq(t, `{"type":"error","error":{"type":"`+tc.typ+`","message":"`+tc.err.Message+`"},"request_id":"req_1"}`, string(er.Body))
		})
	}
	require.Equal(t, `{"type":"error","error":{"type":"api_error","message":"Internal Server Error"}}`,
		string(anthropic.EncodeError(&canonical.Error{}, "").Body), "no request id, no message: the status text")
}

func TestModels(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	models := []anthropic.Model{{ID: "a", DisplayName: "a", CreatedAt: at}, {ID: "b", DisplayName: "b", CreatedAt: at}, {ID: "c", DisplayName: "c", CreatedAt: at}}
	ids := func(ms []anthropic.Model) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	tests := []struct {
		limit         int
		after, before string
		want          []string
		more          bool
	}{
		{0, "", "", []string{"a", "b", "c"}, false},
		{2, "", "", []string{"a", "b"}, true},
		{2, "b", "", []string{"c"}, false},
		{1, "a", "", []string{"b"}, true},
		{1, "", "c", []string{"b"}, true},
		{5, "", "b", []string{"a"}, false},
		{5, "zz", "", nil, false},
	}
	for _, tc := range tests {
		page, more := anthropic.Page(models, tc.limit, tc.after, tc.before)
		require.Equal(t, tc.want, ids(page), "%+v", tc)
		require.Equal(t, tc.more, more, "%+v", tc)
	}
	require.Equal(t, `{"data":[{"type":"model","id":"a","display_name":"a","created_at":"2025-01-02T03:04:05Z"}],"has_more":true,"first_id":"a","last_id":"a"}`,
		string(anthropic.EncodeModelList(models[:1], true)))
	require.Equal(t, `{"data":[],"has_more":false,"first_id":null,"last_id":null}`, string(anthropic.EncodeModelList(nil, false)))
	require.Equal(t, `{"type":"model","id":"b","display_name":"b","created_at":"2025-01-02T03:04:05Z"}`, string(anthropic.EncodeModel(models[1])))
	require.Equal(t, `{"type":"model","id":"b","display_name":"b","created_at":"2025-01-02T03:04:05Z","max_input_tokens":8192,"max_tokens":8192}`,
		string(anthropic.EncodeModel(anthropic.Model{ID: "b", DisplayName: "b", CreatedAt: at, ContextLength: 8192})))
}
