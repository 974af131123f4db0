package openai_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/golden"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

var meta = openai.Meta{ID: "chatcmpl-test", Model: "qwen3", Created: 1700000000}

// decodeUpstream reads an engine's SSE fixture into canonical chunks.
func decodeUpstream(t *testing.T, path string) []canonical.Chunk {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := stream.NewSSEReader(f, 0)
	var dec openai.ChunkDecoder
	var out []canonical.Chunk
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if string(ev.Data) == "[DONE]" {
			continue
		}
		chunks, err := dec.Decode(ev.Data)
		require.NoError(t, err)
		out = append(out, chunks...)
	}
}

func encodeStream(chunks []canonical.Chunk, includeUsage bool) []byte {
	enc := openai.NewChunkEncoder(meta, includeUsage)
	var out []byte
	for i := range chunks {
		out = enc.AppendChunk(out, &chunks[i])
	}
	return openai.AppendDone(out)
}

// TestStreamGolden translates recorded vLLM streams to what OpenAI clients get.
func TestStreamGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/stream/*.vllm.sse")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, in := range files {
		name := strings.TrimSuffix(in, ".vllm.sse")
		t.Run(filepath.Base(name), func(t *testing.T) {
			t.Parallel()
			chunks := decodeUpstream(t, in)
			golden.Assert(t, name+".openai.golden", encodeStream(chunks, true))
			assertValidStream(t, encodeStream(chunks, true))

			// Without include_usage no usage event is written.
			plain := encodeStream(chunks, false)
			require.NotContains(t, string(plain), `"usage"`)
		})
	}
}

// assertValidStream checks the invariants OpenAI clients rely on: each event is
// JSON, the first event of each choice says role assistant, every tool call's
// first delta has id, type and name and later ones do not, and [DONE] ends it.
func assertValidStream(t *testing.T, sse []byte) {
	t.Helper()
	r := stream.NewSSEReader(bytes.NewReader(sse), 0)
	roleSeen := map[int]bool{}
	opened := map[[2]int]string{}
	var last string
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		last = string(ev.Data)
		if last == "[DONE]" {
			continue
		}
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Index int `json:"index"`
				Delta struct {
					Role      *string `json:"role"`
					ToolCalls []struct {
						Index    int     `json:"index"`
						ID       *string `json:"id"`
						Type     *string `json:"type"`
						Function struct {
							Name *string `json:"name"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"delta"`
			} `json:"choices"`
		}
		require.NoError(t, json.Unmarshal(ev.Data, &c), "event %s", ev.Data)
		require.Equal(t, "chat.completion.chunk", c.Object)
		for _, ch := range c.Choices {
			if !roleSeen[ch.Index] {
				require.NotNil(t, ch.Delta.Role, "first event of choice %d has no role", ch.Index)
				roleSeen[ch.Index] = true
			} else {
				require.Nil(t, ch.Delta.Role)
			}
			for _, tc := range ch.Delta.ToolCalls {
				key := [2]int{ch.Index, tc.Index}
				if _, ok := opened[key]; !ok {
					require.NotNil(t, tc.ID)
					require.NotEmpty(t, *tc.ID)
					require.Equal(t, "function", *tc.Type)
					require.NotNil(t, tc.Function.Name)
					opened[key] = *tc.ID
					continue
				}
				require.Nil(t, tc.ID, "id repeated for call %d", tc.Index)
				require.Nil(t, tc.Function.Name, "name repeated for call %d", tc.Index)
			}
		}
	}
	require.Equal(t, "[DONE]", last)
}

func TestChunkEncoderMintsMissingToolCallIDs(t *testing.T) {
	t.Parallel()
	enc := openai.NewChunkEncoder(meta, false)
	out := enc.AppendChunk(nil, &canonical.Chunk{ToolCalls: []canonical.ToolCallDelta{{Index: 0, Name: "f", Arguments: "{"}}})
	out = enc.AppendChunk(out, &canonical.Chunk{ToolCalls: []canonical.ToolCallDelta{{Index: 0, Arguments: "}"}}})
	out = enc.AppendChunk(out, &canonical.Chunk{FinishReason: canonical.FinishToolCalls})
	require.Contains(t, string(out), `"id":"call_test_0","type":"function","function":{"name":"f","arguments":"{"}`)
	require.Contains(t, string(out), `{"index":0,"function":{"arguments":"}"}}`)
	require.Contains(t, string(out), `"delta":{},"logprobs":null,"finish_reason":"tool_calls"`)
	require.Empty(t, enc.AppendChunk(nil, &canonical.Chunk{}), "an empty chunk writes nothing")
}

func TestEncodeResponseGolden(t *testing.T) {
	t.Parallel()
	resp := &canonical.Response{
		Choices: []canonical.Choice{
			{Index: 0, FinishReason: canonical.FinishStop, Message: canonical.Message{
				Role: canonical.RoleAssistant, Reasoning: "short", Content: []canonical.Part{canonical.TextPart("Hi <b> & \"you\"")},
			}},
			{Index: 1, FinishReason: canonical.FinishToolCalls, Message: canonical.Message{
				Role: canonical.RoleAssistant, ToolCalls: []canonical.ToolCall{{ID: "call_a", Name: "f", Arguments: `{"x":1}`}},
			}},
		},
		Usage: &canonical.Usage{Prompt: 10, Completion: 5, Estimated: true},
	}
	b, err := openai.EncodeResponse(resp, meta)
	require.NoError(t, err)
	golden.Assert(t, "testdata/response.golden", golden.Indent(b))
	require.NotContains(t, string(b), "estimated", "the estimate flag is for accounting, not clients")
}

func TestEncodeErrorGolden(t *testing.T) {
	t.Parallel()
	errs := []*canonical.Error{
		canonical.Invalid("messages[0].role", "bad role"),
		{Kind: canonical.KindAuthentication, Message: "Invalid API key"},
		{Kind: canonical.KindPermission, Message: "not allowed"},
		{Kind: canonical.KindNotFound, Message: "The model `x` does not exist"},
		{Kind: canonical.KindTooLarge, Message: "too big"},
		{Kind: canonical.KindUnprocessable, Message: "empty structured output"},
		{Kind: canonical.KindRateLimited, Message: "slow down", Wait: 1500 * time.Millisecond},
		{Kind: canonical.KindQuotaExhausted, Message: "budget spent", Wait: time.Hour},
		{Kind: canonical.KindUnavailable, Code: "queue_full", Message: "queue full"},
		{Kind: canonical.KindBackend, Message: "all 3 backend attempts failed"},
		{Kind: canonical.KindInternal, Message: "Internal server error"},
		{Kind: canonical.KindInvalidRequest, Status: http.StatusNotFound, Message: "model \"x\" not found, try pulling it first"},
		{Kind: canonical.KindInvalidRequest, Status: http.StatusUnprocessableEntity, Message: "backend refused"},
	}
	var out bytes.Buffer
	for _, e := range errs {
		r := openai.EncodeError(e)
		require.True(t, json.Valid(r.Body))
		out.WriteString(http.StatusText(r.Status) + " " + r.RetryAfter.String() + " " + string(r.Body) + "\n")
	}
	golden.Assert(t, "testdata/errors.golden", out.Bytes())
	require.Equal(t, "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"param\":null,\"code\":\"backend_error\"}}\n\n",
		string(openai.AppendStreamError(nil, &canonical.Error{Kind: canonical.KindBackend, Message: "boom"})))
}

func TestEncodeModelList(t *testing.T) {
	t.Parallel()
	b, err := openai.EncodeModelList([]openai.Model{
		{ID: "llama3.2", Created: 1, ContextLength: 8192, ModelMaxContext: 8192, Capabilities: openai.Capabilities{Tools: true}},
		{ID: "sim-llama", Created: 2, Simulated: true},
	})
	require.NoError(t, err)
	golden.Assert(t, "testdata/models.golden", golden.Indent(b))
}

func TestUpstreamResponse(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"reasoning":"hmm","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`)
	resp, err := openai.DecodeUpstreamResponse(body)
	require.NoError(t, err)
	require.Equal(t, &canonical.Response{Model: "m", Choices: []canonical.Choice{{
		FinishReason: canonical.FinishToolCalls,
		Message: canonical.Message{Role: canonical.RoleAssistant, Reasoning: "hmm",
			ToolCalls: []canonical.ToolCall{{ID: "t1", Name: "f", Arguments: `{"a":1}`}}},
	}}, Usage: &canonical.Usage{Prompt: 5, Completion: 7}}, resp)
}

func TestChunkDecoderErrors(t *testing.T) {
	t.Parallel()
	var dec openai.ChunkDecoder
	_, err := dec.Decode([]byte(`{"error":{"message":"engine dead","type":"InternalServerError","code":500}}`))
	var se *openai.StreamError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "engine dead", se.Message)
	_, err = dec.Decode([]byte(`{"object":"error","message":"old shape","code":400}`))
	require.ErrorAs(t, err, &se)
	require.Equal(t, "old shape", se.Message)
	_, err = dec.Decode([]byte(`{"choices":`))
	require.Error(t, err)
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		`{"error":{"message":"The model does not exist.","type":"NotFoundError","code":404}}`: "The model does not exist.",
		`{"object":"error","message":"bad","type":"BadRequestError","code":400}`:              "bad",
		`{"detail":"Not Found"}`:                               "Not Found",
		`{"detail":[{"loc":["body"],"msg":"field required"}]}`: `[{"loc":["body"],"msg":"field required"}]`,
		"Internal Server Error":                                "Internal Server Error",
		"  " + strings.Repeat("x", 600):                        strings.Repeat("x", 512),
	}
	for body, want := range tests {
		require.Equal(t, want, openai.ErrorMessage([]byte(body)))
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("quote \" backslash \\ newline \n tab \t nul \x00 bell \x07")
	f.Add("utf8 é ✓ \u2028 \u2029 invalid \xff\xfe")
	f.Fuzz(func(t *testing.T, s string) {
		enc := openai.NewChunkEncoder(openai.Meta{}, false)
		out := enc.AppendChunk(nil, &canonical.Chunk{Role: canonical.RoleAssistant, Content: s})
		data := bytes.TrimSuffix(bytes.TrimPrefix(out, []byte("data: ")), []byte("\n\n"))
		var c struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatalf("invalid JSON for %q: %v\n%s", s, err, data)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if !utf8.ValidString(s) {
			// encoding/json replaces each invalid byte, not each run.
			var b strings.Builder
			for i := 0; i < len(s); {
				r, n := utf8.DecodeRuneInString(s[i:])
				b.WriteRune(r)
				i += n
			}
			want = b.String()
		}
		if got := c.Choices[0].Delta.Content; got != want {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
	})
}

func BenchmarkChunkEncoder(b *testing.B) {
	enc := openai.NewChunkEncoder(meta, true)
	c := canonical.Chunk{Content: "Hello, world! This is one token of a streamed answer."}
	buf := make([]byte, 0, 512)
	enc.AppendChunk(buf, &c) // the first chunk carries the role
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.AppendChunk(buf[:0], &c)
	}
}

func BenchmarkChunkDecoder(b *testing.B) {
	data := []byte(`{"id":"chatcmpl-9f","object":"chat.completion.chunk","created":1751234567,"model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}`)
	var dec openai.ChunkDecoder
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
