package openai

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/jsonw"
)

// checkRequestDecoding reads body with the direct reader and with
// encoding/json into the wire request.
func checkRequestDecoding(t *testing.T, body []byte) bool {
	return checkAgreement(t, body,
		func() (ChatRequest, error) {
			var w ChatRequest
			err := readChatRequestFast(body, &w)
			return w, err
		},
		func() (ChatRequest, error) {
			var w ChatRequest
			err := json.Unmarshal(body, &w)
			return w, err
		})
}

func requestSeeds(t testing.TB) [][]byte {
	files, err := filepath.Glob("testdata/chat/*.in.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var seeds [][]byte
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		seeds = append(seeds, b)
	}
	return append(seeds,
		[]byte(`{"model":"bench-vllm","messages":[{"role":"user","content":"Say something short."}],"max_tokens":16}`),
		[]byte(`{"model":"m","messages":[{"role":"system","content":null,"name":"n"},{"role":"tool","tool_call_id":"c","content":"42","tool_calls":null}],`+
			`"temperature":0.5,"top_p":null,"top_k":-1,"min_p":1e-3,"presence_penalty":0,"frequency_penalty":-2,"repetition_penalty":1.05,`+
			`"seed":7,"max_tokens":null,"max_completion_tokens":9,"n":2,"stream":true,"stream_options":{"include_usage":true},`+
			`"user":"u","reasoning_effort":"low","logit_bias":{"1":2},"store":false}`),
		[]byte(`{"model":"m","messages":[],"stream":null,"stream_options":null}`),
		[]byte(`{"model":"m","messages":null,"temperature":1e400}`),
		[]byte(`{"Model":"m"}`),
		[]byte(`{"model":"m","model":"n"}`),
		[]byte(`{"model":"m","top_k":1.5}`),
		[]byte(`{"model":"m","stream":"yes"}`),
		[]byte(`{"model":"m","messages":[],"user":"a","user":"b"}`),
		[]byte(`{"model":"m","messages":[],"reasoning_effort":"low","reasoning_effort":null}`),
	)
}

func TestReadChatRequestFastAgreesWithEncodingJSON(t *testing.T) {
	accepted := 0
	for _, b := range requestSeeds(t) {
		if checkRequestDecoding(t, b) {
			accepted++
		}
	}
	assert.GreaterOrEqual(t, accepted, 3)
	// A repeated key is left to encoding/json, whichever field it is.
	for _, b := range []string{`{"model":"m","user":"a","user":"b"}`, `{"model":"m","reasoning_effort":"low","reasoning_effort":"high"}`} {
		var w ChatRequest
		require.ErrorIs(t, readChatRequestFast([]byte(b), &w), jsonw.ErrDecline, b)
	}
	var w ChatRequest
	require.NoError(t, readChatRequestFast([]byte(`{"model":"bench-vllm","messages":[{"role":"user","content":"hi"}],"max_tokens":16}`), &w))
}

func FuzzDecodeChatRequestFast(f *testing.F) {
	for _, b := range requestSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkRequestDecoding(t, body)
	})
}

func TestKnownFieldListsFitTheSeenSet(t *testing.T) {
	for _, known := range [][]string{requestFields, requestMessageFields, streamOptionsFields, completionFields,
		usageFields, choiceFields, messageFields, toolCallFields, functionFields, chunkFields, chunkChoiceFields, deltaFields} {
		assert.LessOrEqual(t, len(known), 32, "fields is a 32-bit set: %v", known)
	}
}
