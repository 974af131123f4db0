package openai

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/jsonw"
)

// checkAgreement runs a direct reader (fast) and the encoding/json decoder it
// stands in for (slow) on input: where the reader accepts, encoding/json must
// accept too and give the same result. It reports whether the reader accepted.
func checkAgreement[T any](t *testing.T, input []byte, fast, slow func() (T, error)) bool {
	t.Helper()
	got, ferr := fast()
	want, serr := slow()
	if ferr != nil {
		if !errors.Is(ferr, jsonw.ErrDecline) {
			t.Fatalf("the direct reader failed with %v instead of declining", ferr)
		}
		return false
	}
	if serr != nil {
		t.Fatalf("the direct reader accepted %q, which encoding/json refuses: %v", input, serr)
	}
	assert.Equal(t, want, got, "%s", input)
	return true
}

// checkUpstreamDecoding decodes body with the direct reader and with
// encoding/json.
func checkUpstreamDecoding(t *testing.T, body []byte) bool {
	return checkAgreement(t, body,
		func() (*canonical.Response, error) { return decodeUpstreamFast(body) },
		func() (*canonical.Response, error) { return decodeUpstreamReflect(body) })
}

func upstreamSeeds(t testing.TB) [][]byte {
	files, err := filepath.Glob("../../enginesim/testdata/recorded/vllm_chat*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var seeds [][]byte
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		seeds = append(seeds, b)
	}
	return append(seeds,
		[]byte(`{"id":"x","choices":[{"index":1,"message":{"role":"assistant","content":null,"reasoning_content":"r","tool_calls":[{"id":"c","type":"function","index":0,"function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":0}}`),
		[]byte(` {"model":"m\u00e9","choices":[],"usage":null,"extra":{"a":[1,2.5e3,true,false,null,"\n"]}} `),
		[]byte(`{"choices":null,"created":1.5}`),
		[]byte(`{"ID":"x","choices":[{"message":{"content":[{"type":"text","text":"parts"}]}}]}`),
		[]byte(`{"choices":[{"message":{"content":"a"},"message":{"content":"b"}}]}`),
		[]byte(`{"choices":[{"message":{"tool_calls":[{"function":{"arguments":{"a":1}}}]}}]}`),
		[]byte(`{"choices":[null]}`),
		[]byte(`{"ıd":1}`),
		[]byte(`{"choices":[]} x`),
	)
}

func TestDecodeUpstreamFastAgreesWithEncodingJSON(t *testing.T) {
	accepted := 0
	for _, b := range upstreamSeeds(t) {
		if checkUpstreamDecoding(t, b) {
			accepted++
		}
	}
	// Every recorded vLLM answer takes the direct path.
	assert.GreaterOrEqual(t, accepted, 4)
	for _, name := range []string{"vllm_chat.json", "vllm_chat_tools.json"} {
		b, err := os.ReadFile("../../enginesim/testdata/recorded/" + name)
		require.NoError(t, err)
		_, err = decodeUpstreamFast(b)
		require.NoError(t, err, name)
	}
}

func FuzzDecodeUpstreamResponse(f *testing.F) {
	for _, b := range upstreamSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkUpstreamDecoding(t, body)
	})
}

// checkChunkDecoding decodes data with the direct reader and with
// encoding/json (no chunks at all compare equal however the slice is empty).
func checkChunkDecoding(t *testing.T, data []byte) bool {
	decode := func(f func(*ChunkDecoder, []byte) ([]canonical.Chunk, error)) func() ([]canonical.Chunk, error) {
		return func() ([]canonical.Chunk, error) {
			var d ChunkDecoder
			out, err := f(&d, data)
			if len(out) == 0 {
				out = nil
			}
			return out, err
		}
	}
	return checkAgreement(t, data, decode((*ChunkDecoder).decodeFast), decode((*ChunkDecoder).decodeReflect))
}

func chunkSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	files, err := filepath.Glob("../../enginesim/testdata/recorded/vllm_chat*stream.sse")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		for line := range bytes.Lines(b) {
			if data, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data: ")); ok && !bytes.Equal(data, []byte("[DONE]")) {
				seeds = append(seeds, data)
			}
		}
	}
	return append(seeds,
		[]byte(`{"choices":[{"index":0,"delta":{"reasoning_content":"","reasoning":"r"}}]}`),
		[]byte(`{"choices":[{"index":0,"delta":{"reasoning_content":null,"reasoning":"r"}}]}`),
		[]byte(`{"choices":[],"usage":{}}`),
		[]byte(`{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{"}},{"index":null,"id":"c"}]}}]}`),
		[]byte(`{"object":"error","message":"boom","code":500}`),
		[]byte(`{"error":{"message":"boom"}}`),
		[]byte(`{"error":null,"choices":null,"usage":null}`),
		[]byte(`{"choices":[{"delta":{"content":"a"}}],"choices":null}`),
	)
}

func TestChunkDecoderFastAgreesWithEncodingJSON(t *testing.T) {
	accepted := 0
	for _, b := range chunkSeeds(t) {
		if checkChunkDecoding(t, b) {
			accepted++
		}
	}
	assert.Greater(t, accepted, 10)
}

func FuzzChunkDecoder(f *testing.F) {
	for _, b := range chunkSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkChunkDecoding(t, data)
	})
}
