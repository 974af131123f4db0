package openai

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// EncodeUpstreamEmbedding writes the body of POST /v1/embeddings for an
// OpenAI-compatible engine. Vectors are asked for as floats, which every
// such engine supports.
func EncodeUpstreamEmbedding(req *canonical.EmbeddingRequest, model string) ([]byte, error) {
	w := struct {
		Model      string   `json:"model"`
		Input      []string `json:"input"`
		Dimensions int      `json:"dimensions,omitempty"`
		User       string   `json:"user,omitempty"`
	}{model, req.Input, req.Dimensions, req.User}
	return json.Marshal(&w)
}

// upstreamUsage is the usage of a pooling answer; vLLM's rerank reports only
// total_tokens.
type upstreamUsage struct {
	PromptTokens int64 `json:"prompt_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
}

func (u *upstreamUsage) canonical() *canonical.Usage {
	n := u.PromptTokens
	if n == 0 {
		n = u.TotalTokens
	}
	if n <= 0 {
		return nil
	}
	return &canonical.Usage{Prompt: n}
}

// DecodeUpstreamEmbedding parses an engine's embeddings answer; the vectors
// come back in input order whatever order the engine listed them in. A
// vector sent as base64 is read too.
func DecodeUpstreamEmbedding(body []byte, inputs int) (*canonical.EmbeddingResponse, error) {
	var w struct {
		Model string `json:"model"`
		Data  []struct {
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Usage upstreamUsage `json:"usage"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode embeddings answer: %w", err)
	}
	if len(w.Data) != inputs {
		return nil, fmt.Errorf("embeddings answer has %d vectors for %d inputs", len(w.Data), inputs)
	}
	out := &canonical.EmbeddingResponse{Model: w.Model, Embeddings: make([][]float32, inputs), Usage: w.Usage.canonical()}
	for _, d := range w.Data {
		if d.Index < 0 || d.Index >= inputs || out.Embeddings[d.Index] != nil {
			return nil, fmt.Errorf("embeddings answer has a bad or repeated index %d", d.Index)
		}
		v, err := decodeVector(d.Embedding)
		if err != nil {
			return nil, err
		}
		out.Embeddings[d.Index] = v
	}
	return out, nil
}

func decodeVector(raw json.RawMessage) ([]float32, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return DecodeBase64Vector(s)
	}
	v := []float32{}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("decode embedding vector: %w", err)
	}
	return v, nil
}

// EncodeUpstreamRerank writes the body of POST /v1/rerank for vLLM.
func EncodeUpstreamRerank(req *canonical.RerankRequest, model string) ([]byte, error) {
	w := struct {
		Model     string   `json:"model"`
		Query     string   `json:"query"`
		Documents []string `json:"documents"`
		TopN      int      `json:"top_n,omitempty"`
	}{model, req.Query, req.Documents, req.TopN}
	return json.Marshal(&w)
}

// DecodeUpstreamRerank parses vLLM's rerank answer. The results come back
// most relevant first, at most top_n of them; each document's text is taken
// from the request (not the engine) when the client asked for it.
func DecodeUpstreamRerank(body []byte, req *canonical.RerankRequest) (*canonical.RerankResponse, error) {
	var w struct {
		Model   string `json:"model"`
		Results []struct {
			Index          int     `json:"index"`
			RelevanceScore float64 `json:"relevance_score"`
		} `json:"results"`
		Usage upstreamUsage `json:"usage"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode rerank answer: %w", err)
	}
	out := &canonical.RerankResponse{Model: w.Model, Usage: w.Usage.canonical(),
		Results: make([]canonical.RerankResult, 0, len(w.Results))}
	for _, r := range w.Results {
		if r.Index < 0 || r.Index >= len(req.Documents) {
			return nil, fmt.Errorf("rerank answer has a bad index %d", r.Index)
		}
		res := canonical.RerankResult{Index: r.Index, Score: r.RelevanceScore}
		if req.ReturnDocuments {
			res.Document = req.Documents[r.Index]
		}
		out.Results = append(out.Results, res)
	}
	slices.SortStableFunc(out.Results, func(a, b canonical.RerankResult) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	if req.TopN > 0 && len(out.Results) > req.TopN {
		out.Results = out.Results[:req.TopN]
	}
	return out, nil
}

// EncodeUpstreamScore writes the body of POST /v1/score for vLLM; a single
// text is sent as a string.
func EncodeUpstreamScore(req *canonical.ScoreRequest, model string) ([]byte, error) {
	one := func(s []string) any {
		if len(s) == 1 {
			return s[0]
		}
		return s
	}
	w := struct {
		Model string `json:"model"`
		Text1 any    `json:"text_1"`
		Text2 any    `json:"text_2"`
	}{model, one(req.Text1), one(req.Text2)}
	return json.Marshal(&w)
}

// DecodeUpstreamScore parses vLLM's score answer into one score per pair.
func DecodeUpstreamScore(body []byte, pairs int) (*canonical.ScoreResponse, error) {
	var w struct {
		Model string `json:"model"`
		Data  []struct {
			Index int     `json:"index"`
			Score float64 `json:"score"`
		} `json:"data"`
		Usage upstreamUsage `json:"usage"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode score answer: %w", err)
	}
	if len(w.Data) != pairs {
		return nil, fmt.Errorf("score answer has %d scores for %d pairs", len(w.Data), pairs)
	}
	out := &canonical.ScoreResponse{Model: w.Model, Scores: make([]float64, pairs), Usage: w.Usage.canonical()}
	seen := make([]bool, pairs)
	for _, d := range w.Data {
		if d.Index < 0 || d.Index >= pairs || seen[d.Index] {
			return nil, fmt.Errorf("score answer has a bad or repeated index %d", d.Index)
		}
		seen[d.Index] = true
		out.Scores[d.Index] = d.Score
	}
	return out, nil
}
