package ollama_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
)

func TestDecodeEmbed(t *testing.T) {
	t.Parallel()
	truncate := false
	tests := []struct {
		name, body string
		want       *canonical.EmbeddingRequest
		load       *ollama.Load
		param      string
	}{
		{"string", `{"model":"m","input":"hello"}`, &canonical.EmbeddingRequest{Model: "m", Input: []string{"hello"}}, nil, ""},
		{"list", `{"model":"m","input":["a","b"],"truncate":false,"dimensions":64,"keep_alive":"5m","options":{"num_ctx":9}}`,
			&canonical.EmbeddingRequest{Model: "m", Input: []string{"a", "b"}, Truncate: &truncate, Dimensions: 64}, nil, ""},
		{"empty string loads", `{"model":"m","input":""}`, nil, &ollama.Load{Model: "m"}, ""},
		{"no input loads", `{"model":"m"}`, nil, &ollama.Load{Model: "m"}, ""},
		{"empty list unloads", `{"model":"m","input":[],"keep_alive":0}`, nil, &ollama.Load{Model: "m", Unload: true}, ""},
		{"no model", `{"input":"x"}`, nil, nil, "model"},
		{"number input", `{"model":"m","input":5}`, nil, nil, "input"},
		{"mixed list", `{"model":"m","input":["a",1]}`, nil, nil, "input"},
		{"negative dimensions", `{"model":"m","input":"a","dimensions":-1}`, nil, nil, "dimensions"},
		{"bad JSON", `{"model":`, nil, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, load, err := ollama.DecodeEmbed([]byte(tc.body))
			if tc.want == nil && tc.load == nil {
				ce := canonical.AsError(err)
				require.Equal(t, canonical.KindInvalidRequest, ce.Kind)
				require.Equal(t, tc.param, ce.Param)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, req)
			require.Equal(t, tc.load, load)
		})
	}

	req, load, err := ollama.DecodeEmbeddings([]byte(`{"model":"m","prompt":"hi","options":{"temperature":1}}`))
	require.NoError(t, err)
	require.Nil(t, load)
	require.Equal(t, &canonical.EmbeddingRequest{Model: "m", Input: []string{"hi"}}, req)
	_, load, err = ollama.DecodeEmbeddings([]byte(`{"model":"m"}`))
	require.NoError(t, err)
	require.Equal(t, &ollama.Load{Model: "m"}, load)
	_, _, err = ollama.DecodeEmbeddings([]byte(`{"prompt":"x"}`))
	require.Equal(t, "model", canonical.AsError(err).Param)
}

// TestEncodeEmbed: both answers in Ollama's own shapes (the recorded keys),
// not OpenAI's.
func TestEncodeEmbed(t *testing.T) {
	t.Parallel()
	resp := &canonical.EmbeddingResponse{Model: "backend-name", Embeddings: [][]float32{{0.4098881, -0.061584197}, {1, 0}},
		Usage: &canonical.Usage{Prompt: 11}}
	meta := ollama.Meta{Model: "tiny", Timings: ollama.Timings{Total: 4 * time.Millisecond, Load: time.Millisecond}}
	b, err := ollama.EncodeEmbedResponse(resp, meta)
	require.NoError(t, err)
	require.Equal(t, `{"model":"tiny","embeddings":[[0.4098881,-0.061584197],[1,0]],"total_duration":4000000,"load_duration":1000000,"prompt_eval_count":11}`, string(b))
	raw, err := os.ReadFile("../../enginesim/testdata/recorded/ollama_embed.json")
	require.NoError(t, err)
	require.Equal(t, keySets(ndjsonLines(t, compact(t, raw))), keySets(ndjsonLines(t, b)))

	b, err = ollama.EncodeEmbeddingsResponse(resp)
	require.NoError(t, err)
	require.Equal(t, `{"embedding":[0.4098880887031555,-0.061584196984767914]}`, string(b), "float32 widened as Ollama widens it")

	b, err = ollama.EncodeEmbedResponse(nil, ollama.Meta{Model: "tiny"})
	require.NoError(t, err)
	require.Equal(t, `{"model":"tiny","embeddings":[]}`, string(b))
	b, err = ollama.EncodeEmbeddingsResponse(nil)
	require.NoError(t, err)
	require.Equal(t, `{"embedding":[]}`, string(b))
}

func FuzzDecodeEmbed(f *testing.F) {
	files, _ := filepath.Glob("testdata/embed/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, decode := range []func([]byte) (*canonical.EmbeddingRequest, *ollama.Load, error){ollama.DecodeEmbed, ollama.DecodeEmbeddings} {
			req, load, err := decode(body)
			if err != nil {
				if canonical.AsError(err).Kind != canonical.KindInvalidRequest {
					t.Fatalf("refusal %v is not an invalid-request error", err)
				}
				continue
			}
			if (req == nil) == (load == nil) {
				t.Fatalf("want exactly one of request and load, got %v and %v", req, load)
			}
			if req != nil && (len(req.Input) == 0 || req.Model == "") {
				t.Fatalf("accepted request without input or model: %+v", req)
			}
		}
	})
}
