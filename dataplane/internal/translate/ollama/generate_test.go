package ollama_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/golden"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// TestGenerateGolden: /api/generate bodies become chats (system, then the
// prompt and images as the user's turn) and go on to both engines.
func TestGenerateGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/generate/*.in.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, in := range files {
		name := strings.TrimSuffix(in, ".in.json")
		t.Run(filepath.Base(name), func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			req, load, err := ollama.DecodeGenerate(body)
			require.NoError(t, err)
			require.Nil(t, load)
			golden.JSON(t, name+".canonical.golden", req)
			up, err := openai.EncodeUpstreamRequest(req, openai.UpstreamOptions{Model: req.Model, MaxTokens: req.Sampling.MaxTokens, Stream: req.Stream})
			require.NoError(t, err)
			golden.Assert(t, name+".vllm.golden", golden.Indent(up))
			up, err = ollama.EncodeUpstreamRequest(req, ollama.UpstreamOptions{Model: req.Model, NumCtx: 8192, MaxTokens: req.Sampling.MaxTokens, Stream: req.Stream})
			require.NoError(t, err)
			golden.Assert(t, name+".ollama.golden", golden.Indent(up))
		})
	}
}

func TestDecodeGenerateRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body, param string }{
		{"bad JSON", `{"model":`, ""},
		{"no model", `{"prompt":"x"}`, "model"},
		{"raw with system", `{"model":"m","prompt":"x","raw":true,"system":"s"}`, "raw"},
		{"raw with context", `{"model":"m","prompt":"x","raw":true,"context":[1,2]}`, "raw"},
		{"bad image", `{"model":"m","prompt":"x","images":["%%%"]}`, "images[0]"},
		{"empty image", `{"model":"m","prompt":"x","images":["ok==",""]}`, "images[1]"},
		{"bad format", `{"model":"m","prompt":"x","format":"yaml"}`, "format"},
		{"bad think", `{"model":"m","prompt":"x","think":"max"}`, "think"},
		{"bad option", `{"model":"m","prompt":"x","options":{"top_k":1.5}}`, "options.top_k"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ollama.DecodeGenerate([]byte(tc.body))
			ce := canonical.AsError(err)
			require.Equal(t, canonical.KindInvalidRequest, ce.Kind)
			require.Equal(t, tc.param, ce.Param)
		})
	}
}

// TestLoadRequests: what Ollama clients send to load and unload a model.
func TestLoadRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		decode     func([]byte) (*canonical.Request, *ollama.Load, error)
		want       *ollama.Load
	}{
		{"chat without messages", `{"model":"m"}`, ollama.DecodeChat, &ollama.Load{Model: "m"}},
		{"chat with empty messages", `{"model":"m","messages":[],"keep_alive":"10m"}`, ollama.DecodeChat, &ollama.Load{Model: "m"}},
		{"chat unload", `{"model":"m","keep_alive":0}`, ollama.DecodeChat, &ollama.Load{Model: "m", Unload: true}},
		{"generate without prompt", `{"model":"m"}`, ollama.DecodeGenerate, &ollama.Load{Model: "m"}},
		{"generate unload", `{"model":"m","keep_alive":"0s"}`, ollama.DecodeGenerate, &ollama.Load{Model: "m", Unload: true}},
		{"generate unload string zero", `{"model":"m","keep_alive":"0"}`, ollama.DecodeGenerate, &ollama.Load{Model: "m", Unload: true}},
		{"keep forever is no unload", `{"model":"m","keep_alive":-1}`, ollama.DecodeGenerate, &ollama.Load{Model: "m"}},
		{"generate with prompt", `{"model":"m","prompt":"hi","keep_alive":0}`, ollama.DecodeGenerate, nil},
		{"chat with messages", `{"model":"m","messages":[{"role":"user","content":"hi"}],"keep_alive":0}`, ollama.DecodeChat, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, load, err := tc.decode([]byte(tc.body))
			require.NoError(t, err)
			require.Equal(t, tc.want, load)
			require.Equal(t, tc.want == nil, req != nil)
			if req != nil {
				require.True(t, req.Stream, "Ollama streams unless told not to")
			}
		})
	}
	_, err := ollama.DecodeChatRequest([]byte(`{"model":"m"}`))
	require.Equal(t, "messages", canonical.AsError(err).Param, "DecodeChatRequest still refuses a load")

	meta := ollama.Meta{Model: "m", CreatedAt: "2025-01-01T00:00:00Z"}
	require.JSONEq(t, `{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"load"}`,
		string(ollama.EncodeLoad(&ollama.Load{Model: "m"}, meta, ollama.ShapeChat)))
	require.JSONEq(t, `{"model":"m","created_at":"2025-01-01T00:00:00Z","response":"","done":true,"done_reason":"unload"}`,
		string(ollama.EncodeLoad(&ollama.Load{Model: "m", Unload: true}, meta, ollama.ShapeGenerate)))
}

// TestEncodeGenerateResponse: a whole /api/generate answer in real Ollama's
// shape (the recorded one's keys, but context), with thinking and timings.
func TestEncodeGenerateResponse(t *testing.T) {
	t.Parallel()
	resp := &canonical.Response{Choices: []canonical.Choice{{FinishReason: canonical.FinishLength, Message: canonical.Message{
		Role: canonical.RoleAssistant, Reasoning: "hmm", Content: []canonical.Part{canonical.TextPart("]]]]")},
	}}}, Usage: &canonical.Usage{Prompt: 18, Completion: 4}}
	meta := ollama.Meta{Model: "tiny", CreatedAt: "2025-01-01T00:00:00Z",
		Timings: ollama.Timings{Total: 3 * time.Millisecond, Load: time.Millisecond, PromptEval: time.Millisecond, Eval: time.Millisecond}}
	b, err := ollama.EncodeGenerateResponse(resp, meta)
	require.NoError(t, err)
	golden.Assert(t, "testdata/client/generate_response.golden", golden.Indent(b))

	raw, err := os.ReadFile("../../enginesim/testdata/recorded/ollama_generate.json")
	require.NoError(t, err)
	want := ndjsonLines(t, compact(t, raw))
	delete(want[0], "context")
	got := ndjsonLines(t, b)
	delete(got[0], "thinking")
	require.Equal(t, keySets(want), keySets(got))

	raw, err = os.ReadFile("../../enginesim/testdata/recorded/ollama_chat.json")
	require.NoError(t, err)
	b, err = ollama.EncodeResponse(resp, meta)
	require.NoError(t, err)
	got = ndjsonLines(t, b)
	delete(got[0]["message"].(map[string]any), "thinking")
	require.Equal(t, keySets(ndjsonLines(t, compact(t, raw))), keySets(got))
}

func FuzzDecodeGenerate(f *testing.F) {
	files, _ := filepath.Glob("testdata/generate/*.in.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, load, err := ollama.DecodeGenerate(body)
		if err != nil {
			if canonical.AsError(err).Kind != canonical.KindInvalidRequest {
				t.Fatalf("refusal %v is not an invalid-request error", err)
			}
			return
		}
		if (req == nil) == (load == nil) {
			t.Fatalf("want exactly one of request and load, got %v and %v", req, load)
		}
		if load != nil {
			return
		}
		if len(req.Messages) == 0 || req.Messages[len(req.Messages)-1].Role != canonical.RoleUser {
			t.Fatalf("generate must end with the user's prompt: %+v", req.Messages)
		}
		if _, err := ollama.EncodeUpstreamRequest(req, ollama.UpstreamOptions{Model: "m"}); err != nil {
			t.Fatalf("accepted request does not encode for Ollama: %v", err)
		}
		if _, err := openai.EncodeUpstreamRequest(req, openai.UpstreamOptions{Model: "m"}); err != nil &&
			canonical.AsError(err).Kind != canonical.KindInvalidRequest {
			t.Fatalf("accepted request does not encode for vLLM: %v", err)
		}
	})
}
