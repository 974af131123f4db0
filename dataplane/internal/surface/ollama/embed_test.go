package ollama_test

import (
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/server"
	surface "github.com/mindrouter/mindrouter/dataplane/internal/surface/ollama"
)

// TestEmbeddings: /api/embed and /api/embeddings answer in Ollama's own
// shapes from both engines, charged as embedding operations.
func TestEmbeddings(t *testing.T) {
	t.Parallel()
	for _, eng := range engines {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, sim(t, 1, eng, nil))
			m := readJSON(t, g.post(t, "/api/embed", `{"model":"nomic","input":["hello","world"]}`))
			require.Equal(t, "nomic", m["model"])
			vecs := m["embeddings"].([]any)
			require.Len(t, vecs, 2)
			for _, v := range vecs {
				require.Len(t, v, 8)
				var norm float64
				for _, x := range v.([]any) {
					norm += x.(float64) * x.(float64)
				}
				require.InDelta(t, 1, math.Sqrt(norm), 1e-3, "unit vectors")
			}
			require.NotEqual(t, vecs[0], vecs[1])
			require.Positive(t, m["prompt_eval_count"])
			require.Positive(t, m["total_duration"])

			one := readJSON(t, g.post(t, "/api/embed", `{"model":"nomic","input":"hello"}`))
			require.Equal(t, vecs[0], one["embeddings"].([]any)[0], "same input, same vector")

			m = readJSON(t, g.post(t, "/api/embeddings", `{"model":"nomic","prompt":"hello"}`))
			require.Len(t, m, 1, "the legacy answer is only the vector")
			require.Len(t, m["embedding"], 8)

			admits := g.fake.Admits()
			require.Len(t, admits, 3)
			for i, ep := range []string{"/api/embed", "/api/embed", "/api/embeddings"} {
				require.Equal(t, relay.OperationEmbedding, admits[i].Operation)
				require.Equal(t, ep, admits[i].Endpoint)
			}
		})
	}
}

func TestEmbeddingsWithoutEmbedder(t *testing.T) {
	t.Parallel()
	srv, err := server.New(server.Options{
		Surfaces: []server.Surface{surface.New(nil, nil, nil, surface.Config{}, slog.New(slog.DiscardHandler))},
		Log:      slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	resp := (&gateway{url: hs.URL}).post(t, "/api/embed", `{"model":"m","input":"x"}`)
	require.Equal(t, http.StatusNotImplemented, resp.StatusCode)
	errorMessage(t, resp)
}
