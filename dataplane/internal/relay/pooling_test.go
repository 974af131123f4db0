package relay_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

// poolingBackend serves an embedding (and reranking) model on a simulator.
func poolingBackend(t testing.TB, id int64, eng enginesim.Engine) (cpclienttest.Backend, *enginesim.Server) {
	t.Helper()
	sim := enginesim.New(enginesim.Config{Engine: eng, Models: []enginesim.ModelSpec{
		{Name: "bge-m3", Capabilities: []string{"embedding"}, EmbeddingDim: 16},
	}})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	e := relay.EngineOllama
	if eng == enginesim.EngineVLLM {
		e = relay.EngineVLLM
	}
	return cpclienttest.Backend{ID: id, Name: string(eng), URL: srv.URL, Engine: e, Model: "bge-m3", ContextLength: 4096}, sim
}

func poolCall(endpoint string) relay.Call {
	return relay.Call{RequestID: "req-p", Credential: "key", Endpoint: endpoint}
}

func TestEmbedOnBothEngines(t *testing.T) {
	t.Parallel()
	for _, eng := range []enginesim.Engine{enginesim.EngineOllama, enginesim.EngineVLLM} {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			b, _ := poolingBackend(t, 1, eng)
			h := newHarness(t, b)
			req := &canonical.EmbeddingRequest{Model: "embedder", Input: []string{"hello world", "a second, longer text to embed"}, Dimensions: 8}
			res, err := h.relay.Embed(context.Background(), poolCall("/v1/embeddings"), req)
			require.NoError(t, err)
			require.Len(t, res.Embedding.Embeddings, 2)
			require.Len(t, res.Embedding.Embeddings[0], 8, "dimensions reach the engine")
			require.NotEqual(t, res.Embedding.Embeddings[0], res.Embedding.Embeddings[1], "vectors stay in input order, one per input")
			require.False(t, res.Usage.Estimated, "the engine's exact count")
			require.Positive(t, res.Usage.Prompt)
			require.Zero(t, res.Usage.Completion)
			require.Equal(t, &res.Usage, res.Embedding.Usage)

			admit := h.fake.Admits()[0]
			require.Equal(t, relay.OperationEmbedding, admit.Operation)
			require.Equal(t, "embedder", admit.Model)
			require.Positive(t, admit.PromptTokensEstimate)
			rel := h.fake.WaitReleases(t, 1)
			require.Equal(t, relay.OutcomeSuccess, rel[0].Outcome)
			require.Equal(t, res.Usage.Prompt, rel[0].Usage.Prompt)
			require.Zero(t, rel[0].Usage.Completion)
			h.assertOneReleasePerAdmit(t)
		})
	}
}

func TestEmbedRetriesBeforeAnswering(t *testing.T) {
	t.Parallel()
	good, _ := poolingBackend(t, 2, enginesim.EngineVLLM)
	h := newHarness(t, failingBackend(t, 1, http.StatusServiceUnavailable), good)
	res, err := h.relay.Embed(context.Background(), poolCall("/api/embed"), &canonical.EmbeddingRequest{Model: "m", Input: []string{"x"}})
	require.NoError(t, err)
	require.Equal(t, 2, res.Admission.Attempt)
	rel := h.fake.WaitReleases(t, 2)
	require.Equal(t, relay.OutcomeBackendError, rel[0].Outcome)
	require.Zero(t, rel[0].Usage.Prompt, "a failed attempt is charged nothing")
	require.Equal(t, relay.OutcomeSuccess, rel[1].Outcome)
	require.Equal(t, []int64{1}, h.fake.Admits()[1].ExcludedBackendIDs)
	h.assertOneReleasePerAdmit(t)
}

func TestEmbedEstimatesMissingUsage(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"model":"m","embeddings":[[0.5,-1]]}`))
	}))
	t.Cleanup(srv.Close)
	h := newHarness(t, cpclienttest.Backend{ID: 1, URL: srv.URL, Engine: relay.EngineOllama})
	res, err := h.relay.Embed(context.Background(), poolCall("/api/embed"), &canonical.EmbeddingRequest{Model: "m", Input: []string{"twelve chars"}})
	require.NoError(t, err)
	require.Equal(t, [][]float32{{0.5, -1}}, res.Embedding.Embeddings)
	require.True(t, res.Usage.Estimated)
	require.Equal(t, &res.Usage, res.Embedding.Usage)
	rel := h.fake.WaitReleases(t, 1)
	require.True(t, rel[0].Usage.Estimated)
	require.Equal(t, int64(4), rel[0].Usage.Prompt, "12 characters are 3 tokens, plus one per input")
}

func TestRerankAndScore(t *testing.T) {
	t.Parallel()
	b, _ := poolingBackend(t, 1, enginesim.EngineVLLM)
	h := newHarness(t, b)
	docs := []string{"Paris is the capital of France", "bananas are yellow", "the capital of France is Paris"}
	res, err := h.relay.Rerank(context.Background(), poolCall("/v1/rerank"), &canonical.RerankRequest{
		Model: "reranker", Query: "capital of France", Documents: docs, TopN: 2, ReturnDocuments: true,
	})
	require.NoError(t, err)
	require.Len(t, res.Rerank.Results, 2)
	require.GreaterOrEqual(t, res.Rerank.Results[0].Score, res.Rerank.Results[1].Score, "most relevant first")
	for _, r := range res.Rerank.Results {
		require.Equal(t, docs[r.Index], r.Document)
	}
	require.False(t, res.Usage.Estimated)
	require.Equal(t, relay.OperationRerank, h.fake.Admits()[0].Operation)

	sres, err := h.relay.Score(context.Background(), poolCall("/v1/score"), &canonical.ScoreRequest{
		Model: "reranker", Text1: []string{"capital of France"}, Text2: docs,
	})
	require.NoError(t, err)
	require.Len(t, sres.Score.Scores, 3)
	require.Equal(t, relay.OperationScore, h.fake.Admits()[1].Operation)
	require.Positive(t, sres.Usage.Prompt)
	h.assertOneReleasePerAdmit(t)
}

func TestRerankRefusals(t *testing.T) {
	t.Parallel()
	b, _ := simBackend(t, 1, enginesim.EngineOllama, nil)
	h := newHarness(t, b)
	// The control plane refuses rerank on a model only Ollama serves.
	h.fake.FailAdmits(cpclienttest.Refusal(codes.FailedPrecondition, relay.ReasonCapabilityUnsupported,
		"rerank is only available on vLLM backends", 0))
	req := &canonical.RerankRequest{Model: "llama3.2", Query: "q", Documents: []string{"d"}}
	_, err := h.relay.Rerank(context.Background(), poolCall("/v1/rerank"), req)
	ce := canonical.AsError(err)
	require.Equal(t, canonical.KindInvalidRequest, ce.Kind)
	require.Equal(t, "rerank is only available on vLLM backends", ce.Message)
	require.Empty(t, h.fake.Releases())

	// Should a lease on an Ollama backend be granted anyway, the relay refuses
	// it without calling the backend, and releases it as rejected.
	_, err = h.relay.Score(context.Background(), poolCall("/v1/score"), &canonical.ScoreRequest{Model: "m", Text1: []string{"a"}, Text2: []string{"b"}})
	ce = canonical.AsError(err)
	require.Equal(t, canonical.KindInvalidRequest, ce.Kind)
	require.Equal(t, "score is only available on vLLM backends", ce.Message)
	rel := h.fake.WaitReleases(t, 1)
	require.Equal(t, relay.OutcomeRejected, rel[0].Outcome)
	h.assertOneReleasePerAdmit(t)
}

func TestEmbedBackendRefusalPassesThrough(t *testing.T) {
	t.Parallel()
	b, _ := poolingBackend(t, 1, enginesim.EngineVLLM)
	b.Model = "not-served"
	h := newHarness(t, b)
	_, err := h.relay.Embed(context.Background(), poolCall("/v1/embeddings"), &canonical.EmbeddingRequest{Model: "m", Input: []string{"x"}})
	ce := canonical.AsError(err)
	require.Equal(t, canonical.KindNotFound, ce.Kind)
	require.Len(t, h.fake.Admits(), 1, "a refusal is not retried")
	rel := h.fake.WaitReleases(t, 1)
	require.Equal(t, relay.OutcomeRejected, rel[0].Outcome)
}
