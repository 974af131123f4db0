package openai_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/golden"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// TestChatGolden decodes each testdata/chat/*.in.json client request and
// checks the canonical request and the request sent on to a vLLM engine.
func TestChatGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/chat/*.in.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, in := range files {
		name := strings.TrimSuffix(in, ".in.json")
		t.Run(filepath.Base(name), func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			req, err := openai.DecodeChatRequest(body)
			require.NoError(t, err)
			golden.JSON(t, name+".canonical.golden", req)

			up, err := openai.EncodeUpstreamRequest(req, openai.UpstreamOptions{Model: "backend/" + req.Model, MaxTokens: 256, Stream: req.Stream})
			require.NoError(t, err)
			golden.Assert(t, name+".vllm.golden", golden.Indent(up))
		})
	}
}

func TestDecodeChatRequestRefusals(t *testing.T) {
	t.Parallel()
	const user = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body, param, message string
	}{
		{"empty body", ``, "", "request body is empty"},
		{"not JSON", `{"model":`, "", "invalid JSON body"},
		{"array body", `[1]`, "", "request body must be a JSON object"},
		{"no model", `{` + user + `}`, "model", "you must provide a model parameter"},
		{"no messages", `{"model":"m"}`, "messages", "messages must be a non-empty array"},
		{"empty messages", `{"model":"m","messages":[]}`, "messages", "non-empty"},
		{"bad role", `{"model":"m","messages":[{"role":"bot","content":"x"}]}`, "messages[0].role", `got "bot"`},
		{"missing role", `{"model":"m","messages":[{"content":"x"}]}`, "messages[0].role", "has no role"},
		{"null user content", `{"model":"m","messages":[{"role":"user","content":null}]}`, "messages[0].content", "required"},
		{"content of wrong type", `{"model":"m","messages":[{"role":"user","content":5}]}`, "messages.content", "got number"},
		{"image in system", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, "messages[0].content", "only allowed in user"},
		{"bad data url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, "messages[0].content[0].image_url.url", "base64"},
		{"file url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]}`, "messages[0].content[0].image_url.url", "http(s)"},
		{"audio part", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "messages[0].content[0].type", "not supported"},
		{"tool calls on user", `{"model":"m","messages":[{"role":"user","content":"x","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}`, "messages[0].tool_calls", "only assistant"},
		{"temperature", `{"model":"m",` + user + `,"temperature":3}`, "temperature", "between 0 and 2"},
		{"top_p", `{"model":"m",` + user + `,"top_p":-0.1}`, "top_p", "between 0 and 1"},
		{"n", `{"model":"m",` + user + `,"n":9}`, "n", "between 1 and 8"},
		{"max_tokens", `{"model":"m",` + user + `,"max_tokens":0}`, "max_tokens", "at least 1"},
		{"max_completion_tokens", `{"model":"m",` + user + `,"max_completion_tokens":-1}`, "max_completion_tokens", "at least 1"},
		{"tool type", `{"model":"m",` + user + `,"tools":[{"type":"web_search"}]}`, "tools[0].type", "only \"function\""},
		{"tool name", `{"model":"m",` + user + `,"tools":[{"type":"function","function":{}}]}`, "tools[0].function.name", "required"},
		{"tool_choice string", `{"model":"m",` + user + `,"tool_choice":"always"}`, "tool_choice", `got "always"`},
		{"tool_choice object", `{"model":"m",` + user + `,"tool_choice":{"type":"function"}}`, "tool_choice", "tool_choice object"},
		{"response_format", `{"model":"m",` + user + `,"response_format":{"type":"xml"}}`, "response_format.type", `got "xml"`},
		{"json_schema without schema", `{"model":"m",` + user + `,"response_format":{"type":"json_schema"}}`, "response_format.json_schema", "needs"},
		{"think", `{"model":"m",` + user + `,"think":"max"}`, "think", "think must be"},
		{"thinking", `{"model":"m",` + user + `,"thinking":{"type":"on"}}`, "thinking.type", "enabled"},
		{"reasoning_effort", `{"model":"m",` + user + `,"reasoning_effort":"huge"}`, "reasoning_effort", "reasoning_effort must be"},
		{"stop of wrong type", `{"model":"m",` + user + `,"stop":5}`, "stop", "got number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := openai.DecodeChatRequest([]byte(tc.body))
			require.Error(t, err)
			ce := canonical.AsError(err)
			require.Equal(t, canonical.KindInvalidRequest, ce.Kind, "error: %v", err)
			require.Equal(t, tc.param, ce.Param)
			require.Contains(t, ce.Error(), tc.message)
		})
	}
}

func TestDecodeChatRequestDefaults(t *testing.T) {
	t.Parallel()
	req, err := openai.DecodeChatRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true},"top_k":-1}`))
	require.NoError(t, err)
	require.False(t, req.Stream)
	require.False(t, req.IncludeUsage, "include_usage only matters for streams")
	require.Nil(t, req.Sampling.TopK, "top_k -1 means disabled")
	require.Nil(t, req.Think)
	require.Nil(t, req.ToolChoice)
	require.Nil(t, req.ResponseFormat)
}

func FuzzDecodeChatRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/chat/*.in.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := openai.DecodeChatRequest(body)
		if err != nil {
			ce := canonical.AsError(err)
			if ce.Kind != canonical.KindInvalidRequest || ce.Message == "" {
				t.Fatalf("refusal %v is not a clear invalid-request error", err)
			}
			return
		}
		if req.Model == "" || len(req.Messages) == 0 {
			t.Fatal("accepted a request without model or messages")
		}
		for _, m := range req.Messages {
			if !m.Role.Valid() {
				t.Fatalf("accepted role %q", m.Role)
			}
		}
		// Whatever was accepted must translate for both engines without panicking.
		if _, err := openai.EncodeUpstreamRequest(req, openai.UpstreamOptions{Model: "m", Stream: req.Stream}); err != nil {
			t.Fatalf("accepted request does not encode: %v", err)
		}
	})
}

func BenchmarkDecodeChatRequest(b *testing.B) {
	body, err := os.ReadFile("testdata/chat/tools.in.json")
	require.NoError(b, err)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := openai.DecodeChatRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}
