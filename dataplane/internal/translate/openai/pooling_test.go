package openai_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/golden"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

func TestDecodeEmbeddingRequest(t *testing.T) {
	t.Parallel()
	req, opts, err := openai.DecodeEmbeddingRequest([]byte(`{"model":"m","input":"hi","encoding_format":"base64","dimensions":8,"user":"u"}`))
	require.NoError(t, err)
	require.Equal(t, &canonical.EmbeddingRequest{Model: "m", Input: []string{"hi"}, Dimensions: 8, User: "u"}, req)
	require.True(t, opts.Base64)
	req, opts, err = openai.DecodeEmbeddingRequest([]byte(`{"model":"m","input":["a","b"]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, req.Input)
	require.False(t, opts.Base64)

	for _, tc := range []struct{ body, param, msg string }{
		{``, "", "empty"},
		{`{"input":"x"}`, "model", "model parameter"},
		{`{"model":"m"}`, "input", "input is required"},
		{`{"model":"m","input":[]}`, "input", "empty array"},
		{`{"model":"m","input":[1,2]}`, "input", "string or an array of strings"},
		{`{"model":"m","input":"x","encoding_format":"int8"}`, "encoding_format", `"float" or "base64"`},
		{`{"model":"m","input":"x","dimensions":0}`, "dimensions", "at least 1"},
		{`{"model":"m","input":"x","dimensions":"8"}`, "dimensions", "invalid type"},
	} {
		_, _, err := openai.DecodeEmbeddingRequest([]byte(tc.body))
		ce := canonical.AsError(err)
		require.Equal(t, canonical.KindInvalidRequest, ce.Kind, tc.body)
		require.Equal(t, tc.param, ce.Param, tc.body)
		require.Contains(t, ce.Message, tc.msg, tc.body)
	}
	many := `{"model":"m","input":[` + strings.Repeat(`"x",`, openai.MaxEmbeddingInputs) + `"x"]}`
	_, _, err = openai.DecodeEmbeddingRequest([]byte(many))
	require.ErrorContains(t, err, "at most 2048")
}

func TestDecodeRerankAndScoreRequests(t *testing.T) {
	t.Parallel()
	rr, err := openai.DecodeRerankRequest([]byte(`{"model":"m","query":"q","documents":["a",{"text":"b"}],"top_n":1}`))
	require.NoError(t, err)
	require.Equal(t, &canonical.RerankRequest{Model: "m", Query: "q", Documents: []string{"a", "b"}, TopN: 1, ReturnDocuments: true}, rr)
	sr, err := openai.DecodeScoreRequest([]byte(`{"model":"m","text_1":"q","text_2":["a","b"]}`))
	require.NoError(t, err)
	require.Equal(t, &canonical.ScoreRequest{Model: "m", Text1: []string{"q"}, Text2: []string{"a", "b"}}, sr)

	for _, body := range []string{
		`{"model":"m","documents":["a"]}`,
		`{"model":"m","query":"q","documents":[]}`,
		`{"model":"m","query":"q","documents":[5]}`,
		`{"model":"m","query":"q","documents":["a"],"top_n":-1}`,
	} {
		_, err := openai.DecodeRerankRequest([]byte(body))
		require.Equal(t, canonical.KindInvalidRequest, canonical.AsError(err).Kind, body)
	}
	for _, body := range []string{
		`{"model":"m","text_2":"a"}`,
		`{"model":"m","text_1":["a","b"],"text_2":["a","b","c"]}`,
		`{"model":"m","text_1":"a","text_2":[]}`,
	} {
		_, err := openai.DecodeScoreRequest([]byte(body))
		require.Equal(t, canonical.KindInvalidRequest, canonical.AsError(err).Kind, body)
	}
}

func TestPoolingEncodersGolden(t *testing.T) {
	t.Parallel()
	emb := &canonical.EmbeddingResponse{Embeddings: [][]float32{{0.1, -2.5e-7, 3, 1e21}, {}}, Usage: &canonical.Usage{Prompt: 7}}
	golden.Assert(t, "testdata/pooling/embeddings.golden", golden.Indent(openai.EncodeEmbeddingResponse(emb, "nomic", openai.EmbeddingOptions{})))
	golden.Assert(t, "testdata/pooling/embeddings_base64.golden", golden.Indent(openai.EncodeEmbeddingResponse(emb, "nomic", openai.EmbeddingOptions{Base64: true})))
	rr := &canonical.RerankResponse{Results: []canonical.RerankResult{{Index: 2, Score: 0.93, Document: "Paris <3"}, {Index: 0, Score: 0.1, Document: "x"}}, Usage: &canonical.Usage{Prompt: 30}}
	meta := openai.Meta{ID: "rerank-1", Model: "bge", Created: 1700000000}
	golden.Assert(t, "testdata/pooling/rerank.golden", golden.Indent(openai.EncodeRerankResponse(rr, meta, true)))
	meta.ID = "score-1"
	golden.Assert(t, "testdata/pooling/score.golden", golden.Indent(openai.EncodeScoreResponse(&canonical.ScoreResponse{Scores: []float64{0.5, 1}, Usage: &canonical.Usage{Prompt: 9}}, meta)))

	// base64 and float forms hold the same float32s.
	var f, b struct {
		Data []struct {
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(openai.EncodeEmbeddingResponse(emb, "m", openai.EmbeddingOptions{}), &f))
	require.NoError(t, json.Unmarshal(openai.EncodeEmbeddingResponse(emb, "m", openai.EmbeddingOptions{Base64: true}), &b))
	for i := range emb.Embeddings {
		var floats []float32
		require.NoError(t, json.Unmarshal(f.Data[i].Embedding, &floats))
		var s string
		require.NoError(t, json.Unmarshal(b.Data[i].Embedding, &s))
		fromB64, err := openai.DecodeBase64Vector(s)
		require.NoError(t, err)
		require.Equal(t, emb.Embeddings[i], floats)
		require.Equal(t, emb.Embeddings[i], fromB64)
	}
}

func TestUpstreamPoolingDecoders(t *testing.T) {
	t.Parallel()
	e, err := openai.DecodeUpstreamEmbedding([]byte(`{"model":"m","data":[{"index":1,"embedding":[1,2]},{"index":0,"embedding":"AACAPw=="}],"usage":{"prompt_tokens":4,"total_tokens":4}}`), 2)
	require.NoError(t, err)
	require.Equal(t, [][]float32{{1}, {1, 2}}, e.Embeddings, "sorted by index; base64 read too")
	require.Equal(t, &canonical.Usage{Prompt: 4}, e.Usage)
	_, err = openai.DecodeUpstreamEmbedding([]byte(`{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}`), 2)
	require.ErrorContains(t, err, "repeated index")
	_, err = openai.DecodeUpstreamEmbedding([]byte(`{"data":[]}`), 1)
	require.ErrorContains(t, err, "0 vectors for 1 inputs")

	req := &canonical.RerankRequest{Documents: []string{"a", "b", "c"}, TopN: 2, ReturnDocuments: true}
	r, err := openai.DecodeUpstreamRerank([]byte(`{"model":"m","results":[{"index":0,"relevance_score":0.1},{"index":2,"relevance_score":0.9},{"index":1,"relevance_score":0.5}],"usage":{"total_tokens":12}}`), req)
	require.NoError(t, err)
	require.Equal(t, []canonical.RerankResult{{Index: 2, Score: 0.9, Document: "c"}, {Index: 1, Score: 0.5, Document: "b"}}, r.Results)
	require.Equal(t, &canonical.Usage{Prompt: 12}, r.Usage, "vLLM's rerank reports only total_tokens")
	_, err = openai.DecodeUpstreamRerank([]byte(`{"results":[{"index":7,"relevance_score":1}]}`), req)
	require.ErrorContains(t, err, "bad index")

	s, err := openai.DecodeUpstreamScore([]byte(`{"data":[{"index":1,"score":0.2},{"index":0,"score":0.7}]}`), 2)
	require.NoError(t, err)
	require.Equal(t, []float64{0.7, 0.2}, s.Scores)
	require.Nil(t, s.Usage)
}

func TestAppendFloat32MatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, f := range []float32{0, 1, -1, 0.1, 1e-7, -3.4e38, 1e21, 1e20, 123456.79, float32(math.SmallestNonzeroFloat32)} {
		want, err := json.Marshal(f)
		require.NoError(t, err)
		require.Equal(t, string(want), string(openai.AppendFloat32(nil, f)), "%g", f)
	}
}

func FuzzAppendFloat32(f *testing.F) {
	f.Add(uint32(0x3dcccccd))
	f.Add(uint32(0x33d6bf95))
	f.Fuzz(func(t *testing.T, bits uint32) {
		v := math.Float32frombits(bits)
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := openai.AppendFloat32(nil, v); string(got) != string(want) {
			t.Fatalf("%g: got %s, encoding/json writes %s", v, got, want)
		}
	})
}

// checkRefusal fails unless err is a clear invalid-request error.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	ce := canonical.AsError(err)
	if ce.Kind != canonical.KindInvalidRequest || ce.Message == "" {
		t.Fatalf("refusal %v is not a clear invalid-request error", err)
	}
}

func FuzzDecodeEmbeddingRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","input":["a","b"],"encoding_format":"base64","dimensions":4}`))
	f.Add([]byte(`{"model":"m","input":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _, err := openai.DecodeEmbeddingRequest(body)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if req.Model == "" || len(req.Input) == 0 || len(req.Input) > openai.MaxEmbeddingInputs || req.Dimensions < 0 {
			t.Fatalf("accepted %+v", req)
		}
		if _, err := openai.EncodeUpstreamEmbedding(req, "m"); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeRerankRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","query":"q","documents":["a",{"text":"b"}],"top_n":1,"return_documents":false}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := openai.DecodeRerankRequest(body)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if req.Model == "" || len(req.Documents) == 0 || req.TopN < 0 {
			t.Fatalf("accepted %+v", req)
		}
		if _, err := openai.EncodeUpstreamRerank(req, "m"); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeScoreRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","text_1":"q","text_2":["a","b"]}`))
	f.Add([]byte(`{"model":"m","text_1":["a","b"],"text_2":["c","d"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := openai.DecodeScoreRequest(body)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if req.Model == "" || len(req.Text2) == 0 || (len(req.Text1) != 1 && len(req.Text1) != len(req.Text2)) {
			t.Fatalf("accepted %+v", req)
		}
		if _, err := openai.EncodeUpstreamScore(req, "m"); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodeUpstreamPooling feeds engine answers to the three pooling
// decoders: they either fail or return exactly what was asked for.
func FuzzDecodeUpstreamPooling(f *testing.F) {
	f.Add([]byte(`{"model":"m","data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":"AACAPw=="}],"usage":{"prompt_tokens":4}}`), uint8(2))
	f.Add([]byte(`{"results":[{"index":1,"relevance_score":0.5}],"usage":{"total_tokens":3}}`), uint8(2))
	f.Add([]byte(`{"data":[{"index":0,"score":0.5}]}`), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, n uint8) {
		count := int(n%8) + 1
		if e, err := openai.DecodeUpstreamEmbedding(body, count); err == nil {
			if len(e.Embeddings) != count {
				t.Fatalf("%d vectors for %d inputs", len(e.Embeddings), count)
			}
			for _, v := range e.Embeddings {
				if v == nil {
					t.Fatal("missing vector")
				}
			}
		}
		docs := make([]string, count)
		req := &canonical.RerankRequest{Documents: docs, TopN: count / 2, ReturnDocuments: true}
		if r, err := openai.DecodeUpstreamRerank(body, req); err == nil {
			if req.TopN > 0 && len(r.Results) > req.TopN {
				t.Fatal("more results than top_n")
			}
			for i := 1; i < len(r.Results); i++ {
				if r.Results[i].Score > r.Results[i-1].Score {
					t.Fatal("results not sorted")
				}
			}
		}
		if s, err := openai.DecodeUpstreamScore(body, count); err == nil && len(s.Scores) != count {
			t.Fatal("wrong number of scores")
		}
	})
}
