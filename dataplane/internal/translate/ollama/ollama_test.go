package ollama_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/golden"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// TestUpstreamRequestGolden sends the OpenAI client requests of translate/openai
// on to an Ollama engine: OpenAI → canonical → Ollama.
func TestUpstreamRequestGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../openai/testdata/chat/*.in.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			req, err := openai.DecodeChatRequest(body)
			require.NoError(t, err)
			out, err := ollama.EncodeUpstreamRequest(req, ollama.UpstreamOptions{Model: "backend-" + req.Model, NumCtx: 32768, MaxTokens: req.Sampling.MaxTokens, Stream: req.Stream})
			if name == "vision" {
				// The request carries an image by URL, which Ollama cannot take.
				ce := canonical.AsError(err)
				require.Equal(t, canonical.KindInvalidRequest, ce.Kind)
				require.Contains(t, ce.Message, "inline images only")
				req.Messages[1].Content = req.Messages[1].Content[:2]
				out, err = ollama.EncodeUpstreamRequest(req, ollama.UpstreamOptions{Model: "backend-" + req.Model, Stream: true})
			}
			require.NoError(t, err)
			golden.Assert(t, "testdata/upstream/"+name+".golden", golden.Indent(out))
		})
	}
}

func decodeStream(t *testing.T, path string) []canonical.Chunk {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := stream.NewNDJSONReader(f, 0)
	dec := ollama.StreamDecoder{IDPrefix: "call_fixed"}
	var out []canonical.Chunk
	for {
		line, err := r.Next()
		if errors.Is(err, io.EOF) {
			t.Fatal("stream ended without done")
		}
		require.NoError(t, err)
		c, done, err := dec.Decode(line)
		require.NoError(t, err)
		if !c.Empty() {
			out = append(out, c)
		}
		if done {
			return out
		}
	}
}

// TestStreamToOpenAIGolden translates recorded Ollama streams, whose tool
// calls come whole, into the OpenAI deltas clients get: Ollama → canonical →
// OpenAI, with stable indexes and ids and finish_reason tool_calls.
func TestStreamToOpenAIGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/stream/*.ndjson")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	meta := openai.Meta{ID: "chatcmpl-test", Model: "llama3.2", Created: 1700000000}
	for _, in := range files {
		name := strings.TrimSuffix(in, ".ndjson")
		t.Run(filepath.Base(name), func(t *testing.T) {
			t.Parallel()
			chunks := decodeStream(t, in)
			enc := openai.NewChunkEncoder(meta, true)
			var out []byte
			for i := range chunks {
				out = enc.AppendChunk(out, &chunks[i])
			}
			golden.Assert(t, name+".openai.golden", openai.AppendDone(out))
		})
	}
}

func TestStreamDecoderToolCalls(t *testing.T) {
	t.Parallel()
	chunks := decodeStream(t, "testdata/stream/two_calls_two_lines.ndjson")
	var acc canonical.Accumulator
	for _, c := range chunks {
		acc.Add(c)
	}
	resp := acc.Response()
	require.Equal(t, canonical.FinishToolCalls, resp.Choices[0].FinishReason, "calls in earlier lines still finish with tool_calls")
	require.Equal(t, []canonical.ToolCall{
		{ID: "call_fixed_0", Name: "get_weather", Arguments: `{"city":"Tokyo"}`},
		{ID: "call_fixed_1", Name: "get_time", Arguments: `{"zone":"Europe/Paris","exact":true}`},
	}, resp.Choices[0].Message.ToolCalls)
	require.Equal(t, &canonical.Usage{Prompt: 50, Completion: 30}, resp.Usage)
}

func TestStreamDecoderErrorLine(t *testing.T) {
	t.Parallel()
	var dec ollama.StreamDecoder
	_, _, err := dec.Decode([]byte(`{"error":"model runner has unexpectedly stopped"}`))
	var se *ollama.StreamError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "model runner has unexpectedly stopped", se.Message)
	_, _, err = dec.Decode([]byte(`{"message":`))
	require.Error(t, err)
}

func TestDecodeUpstreamResponse(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("../../enginesim/testdata/recorded/ollama_chat_tools.json")
	require.NoError(t, err)
	resp, err := ollama.DecodeUpstreamResponse(body, "call_x")
	require.NoError(t, err)
	require.Equal(t, canonical.FinishToolCalls, resp.Choices[0].FinishReason)
	require.NotEmpty(t, resp.Choices[0].Message.ToolCalls)
	require.NotEmpty(t, resp.Choices[0].Message.ToolCalls[0].ID)
	require.NotNil(t, resp.Usage)

	plain, err := ollama.DecodeUpstreamResponse([]byte(`{"model":"m","message":{"role":"assistant","content":"hi","thinking":"hm"},"done":true,"done_reason":"length","eval_count":1}`), "p")
	require.NoError(t, err)
	require.Equal(t, canonical.FinishLength, plain.Choices[0].FinishReason)
	require.Equal(t, "hm", plain.Choices[0].Message.Reasoning)
	require.Equal(t, &canonical.Usage{Completion: 1}, plain.Usage)
}

// TestClientGolden covers the Ollama client side: requests in, answers out,
// including vLLM's argument fragments re-assembled into whole calls.
func TestClientGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/client/*.in.json")
	require.NoError(t, err)
	for _, in := range files {
		name := strings.TrimSuffix(in, ".in.json")
		t.Run(filepath.Base(name), func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			req, err := ollama.DecodeChatRequest(body)
			require.NoError(t, err)
			golden.JSON(t, name+".canonical.golden", req)
			up, err := openai.EncodeUpstreamRequest(req, openai.UpstreamOptions{Model: req.Model, Stream: req.Stream})
			require.NoError(t, err)
			golden.Assert(t, name+".vllm.golden", golden.Indent(up))
		})
	}

	meta := ollama.Meta{Model: "qwen3", CreatedAt: "2025-01-01T00:00:00Z"}
	f, err := os.Open("../openai/testdata/stream/parallel_tools.vllm.sse")
	require.NoError(t, err)
	defer f.Close()
	r := stream.NewSSEReader(f, 0)
	var dec openai.ChunkDecoder
	enc := ollama.NewChunkEncoder(meta)
	var out []byte
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) || string(ev.Data) == "[DONE]" {
			break
		}
		require.NoError(t, err)
		chunks, err := dec.Decode(ev.Data)
		require.NoError(t, err)
		for i := range chunks {
			out = enc.AppendChunk(out, &chunks[i])
		}
	}
	out = enc.AppendEnd(out)
	golden.Assert(t, "testdata/client/vllm_tools_stream.ndjson.golden", out)

	resp := &canonical.Response{Choices: []canonical.Choice{{FinishReason: canonical.FinishToolCalls, Message: canonical.Message{
		Role: canonical.RoleAssistant, Reasoning: "r", ToolCalls: []canonical.ToolCall{{ID: "c", Name: "f", Arguments: "not json"}},
	}}}, Usage: &canonical.Usage{Prompt: 3, Completion: 4}}
	b, err := ollama.EncodeResponse(resp, meta)
	require.NoError(t, err)
	golden.Assert(t, "testdata/client/response.golden", golden.Indent(b))
}

func TestDecodeChatRequestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body, param string }{
		{"no model", `{"messages":[{"role":"user","content":"x"}]}`, "model"},
		{"no messages", `{"model":"m"}`, "messages"},
		{"bad role", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, "messages[0].role"},
		{"bad image", `{"model":"m","messages":[{"role":"user","content":"x","images":["%%%"]}]}`, "messages[0].images[0]"},
		{"bad format", `{"model":"m","messages":[{"role":"user","content":"x"}],"format":"yaml"}`, "format"},
		{"bad think", `{"model":"m","messages":[{"role":"user","content":"x"}],"think":"max"}`, "think"},
		{"bad option", `{"model":"m","messages":[{"role":"user","content":"x"}],"options":{"temperature":"hot"}}`, "options.temperature"},
		{"bad stop", `{"model":"m","messages":[{"role":"user","content":"x"}],"options":{"stop":[1]}}`, "options.stop"},
		{"tool without name", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{}}]}`, "tools[0].function.name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ollama.DecodeChatRequest([]byte(tc.body))
			ce := canonical.AsError(err)
			require.Equal(t, canonical.KindInvalidRequest, ce.Kind)
			require.Equal(t, tc.param, ce.Param)
		})
	}
	status, body := ollama.EncodeError(&canonical.Error{Kind: canonical.KindNotFound, Message: "model 'x' not found"})
	require.Equal(t, 404, status)
	require.JSONEq(t, `{"error":"model 'x' not found"}`, string(body))
	require.Equal(t, "{\"error\":\"boom\"}\n", string(ollama.AppendStreamError(nil, &canonical.Error{Kind: canonical.KindBackend, Message: "boom"})))
}

func FuzzDecodeChatRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/client/*.in.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ollama.DecodeChatRequest(body)
		if err != nil {
			if canonical.AsError(err).Kind != canonical.KindInvalidRequest {
				t.Fatalf("refusal %v is not an invalid-request error", err)
			}
			return
		}
		if _, err := ollama.EncodeUpstreamRequest(req, ollama.UpstreamOptions{Model: "m"}); err != nil {
			if canonical.AsError(err).Kind != canonical.KindInvalidRequest {
				t.Fatalf("accepted request does not encode: %v", err)
			}
		}
	})
}

func FuzzStreamDecoder(f *testing.F) {
	for _, p := range []string{"testdata/stream/tools.ndjson", "testdata/stream/thinking.ndjson"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := stream.NewNDJSONReader(bytes.NewReader(in), 1<<16)
		dec := ollama.StreamDecoder{IDPrefix: "p"}
		seen := map[int]bool{}
		for {
			line, err := r.Next()
			if err != nil {
				return
			}
			c, done, err := dec.Decode(line)
			if err != nil {
				continue
			}
			for _, d := range c.ToolCalls {
				if seen[d.Index] || d.ID == "" {
					t.Fatalf("tool call index %d repeated or without id", d.Index)
				}
				seen[d.Index] = true
			}
			if done {
				return
			}
		}
	})
}
