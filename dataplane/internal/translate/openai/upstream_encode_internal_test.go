package openai

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkUpstreamEncoding encodes the request decoded from body as a vLLM
// request both ways: the direct encoder must write what json.Marshal writes.
func checkUpstreamEncoding(t *testing.T, body []byte, stream bool, maxTokens int64) {
	req, err := DecodeChatRequest(body)
	if err != nil {
		return
	}
	w := upstreamRequest(req, UpstreamOptions{Model: "engine-<model>", MaxTokens: maxTokens, Stream: stream})
	want, werr := json.Marshal(&w)
	got, gerr := appendChatRequest(nil, &w)
	if werr != nil {
		if gerr == nil {
			t.Fatalf("json.Marshal refused (%v) what the direct encoder wrote: %s", werr, got)
		}
		return
	}
	if gerr != nil || string(got) != string(want) {
		t.Fatalf("direct encoder wrote\n%s (%v)\njson.Marshal writes\n%s", got, gerr, want)
	}
}

func TestEncodeUpstreamRequestMatchesMarshal(t *testing.T) {
	files, err := filepath.Glob("testdata/chat/*.in.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, p := range files {
		body, err := os.ReadFile(p)
		require.NoError(t, err)
		t.Run(filepath.Base(p), func(t *testing.T) {
			checkUpstreamEncoding(t, body, false, 0)
			checkUpstreamEncoding(t, body, true, 77)
		})
	}
	// A request with every simple field set.
	body := []byte(`{"model":"m","messages":[{"role":"system","content":"be <brief> & kind"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":\"<x>\"}"}}]},` +
		`{"role":"tool","tool_call_id":"c1","content":"42"}],"temperature":0.7,"top_p":1e-7,"top_k":40,"min_p":0.05,` +
		`"presence_penalty":-0.5,"frequency_penalty":1.5,"repetition_penalty":1.1,"seed":-3,"stop":["\n","END"],"n":2,"user":"u&me"}`)
	checkUpstreamEncoding(t, body, false, 10)
	req, err := DecodeChatRequest(body)
	require.NoError(t, err)
	got, err := EncodeUpstreamRequest(req, UpstreamOptions{Model: "m"})
	require.NoError(t, err)
	assert.True(t, json.Valid(got))
}

func FuzzEncodeUpstreamRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/chat/*.in.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, false, int64(0))
		}
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"<&>"}],"temperature":1e21,"stop":"x"}`), true, int64(5))
	f.Fuzz(func(t *testing.T, body []byte, stream bool, maxTokens int64) {
		checkUpstreamEncoding(t, body, stream, maxTokens)
	})
}
