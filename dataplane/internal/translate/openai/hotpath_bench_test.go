package openai_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// The non-streamed hot path of a small chat request served by vLLM, as the
// load benchmark sends it: the client's request in, the engine's request out,
// the engine's answer in, the client's answer out.

var benchChatBody = []byte(`{"model":"bench-vllm","messages":[{"role":"user","content":"Say something short."}],"max_tokens":16}`)

func BenchmarkHotPathDecodeChatRequest(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchChatBody)))
	for b.Loop() {
		if _, err := openai.DecodeChatRequest(benchChatBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHotPathEncodeUpstreamRequest(b *testing.B) {
	req, err := openai.DecodeChatRequest(benchChatBody)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := openai.EncodeUpstreamRequest(req, openai.UpstreamOptions{Model: "Qwen/Qwen3-8B", MaxTokens: 16}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHotPathDecodeUpstreamResponse(b *testing.B) {
	body, err := os.ReadFile("../../enginesim/testdata/recorded/vllm_chat.json")
	require.NoError(b, err)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := openai.DecodeUpstreamResponse(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHotPathEncodeResponse(b *testing.B) {
	body, err := os.ReadFile("../../enginesim/testdata/recorded/vllm_chat.json")
	require.NoError(b, err)
	resp, err := openai.DecodeUpstreamResponse(body)
	require.NoError(b, err)
	meta := openai.Meta{ID: "chatcmpl-0123456789abcdef", Model: "bench-vllm", Created: 1751234567}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := openai.EncodeResponse(resp, meta); err != nil {
			b.Fatal(err)
		}
	}
}
