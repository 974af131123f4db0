package ollama_test

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/golden"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
)

var cards = []ollama.ModelCard{
	{Name: "llama3.2:latest", Family: "llama", ParameterSize: "3.2B", Quantization: "Q4_K_M", Format: "gguf",
		ContextLength: 32768, Capabilities: []string{"completion", "tools"}, ModifiedAt: time.Unix(1700000000, 0)},
	{Name: "Qwen/Qwen3-Embedding-8B", Format: "safetensors", ContextLength: 8192, EmbeddingLength: 4096,
		Capabilities: []string{"embedding"}},
}

// TestModelEndpointsGolden: tags, ps and show answers, with the keys real
// Ollama 0.17.4 writes (recorded), the gateway's context cap in show's
// model_info, and digests that clients can shorten to 12 characters.
func TestModelEndpointsGolden(t *testing.T) {
	t.Parallel()
	tags, err := ollama.EncodeTags(cards)
	require.NoError(t, err)
	golden.Assert(t, "testdata/client/tags.golden", golden.Indent(tags))
	ps, err := ollama.EncodePS(cards[:1], time.Date(2125, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	golden.Assert(t, "testdata/client/ps.golden", golden.Indent(ps))
	show, err := ollama.EncodeShow(&cards[0])
	require.NoError(t, err)
	golden.Assert(t, "testdata/client/show.golden", golden.Indent(show))
	show2, err := ollama.EncodeShow(&cards[1])
	require.NoError(t, err)
	golden.Assert(t, "testdata/client/show_embedding.golden", golden.Indent(show2))

	for _, c := range []struct {
		recorded string
		got      []byte
	}{{"ollama_tags.json", tags}, {"ollama_ps.json", ps}} {
		raw, err := os.ReadFile("../../enginesim/testdata/recorded/" + c.recorded)
		require.NoError(t, err)
		require.Equal(t, listKeys(t, raw), listKeys(t, c.got), c.recorded)
	}
	var s map[string]any
	require.NoError(t, json.Unmarshal(show, &s))
	require.EqualValues(t, 32768, s["model_info"].(map[string]any)["llama.context_length"])
	require.Len(t, cards[0].Digest(), 64)
	require.Equal(t, "{\"version\":\"0.17.4\"}", string(ollama.EncodeVersion("0.17.4")))
}

// listKeys returns the keys of the first model of a tags or ps answer,
// details included.
func listKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var w struct {
		Models []map[string]any `json:"models"`
	}
	require.NoError(t, json.Unmarshal(b, &w))
	require.NotEmpty(t, w.Models)
	keys := slices.Sorted(maps.Keys(w.Models[0]))
	for _, k := range slices.Sorted(maps.Keys(w.Models[0]["details"].(map[string]any))) {
		keys = append(keys, "details."+k)
	}
	return keys
}

func TestDecodeShowRequest(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{`{"model":"a"}`: "a", `{"name":"b"}`: "b", `{"model":"a","name":"b"}`: "a"} {
		got, err := ollama.DecodeShowRequest([]byte(body))
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	for _, body := range []string{`{}`, `{"model":" "}`, `[`} {
		_, err := ollama.DecodeShowRequest([]byte(body))
		require.Equal(t, canonical.KindInvalidRequest, canonical.AsError(err).Kind, body)
	}
}
