package vllm

import (
	"context"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

var (
	_ engine.Embedder = (*Engine)(nil)
	_ engine.Ranker   = (*Engine)(nil)
)

// Embed runs POST /v1/embeddings.
func (e *Engine) Embed(ctx context.Context, t engine.Target, req *canonical.EmbeddingRequest) (*canonical.EmbeddingResponse, error) {
	body, err := openai.EncodeUpstreamEmbedding(req, t.Model)
	if err != nil {
		return nil, err
	}
	b, err := engine.PostJSON(ctx, e.cfg.Client, endpoint(t.URL, "/v1/embeddings"), body, openai.ErrorMessage)
	if err != nil {
		return nil, err
	}
	out, err := openai.DecodeUpstreamEmbedding(b, len(req.Input))
	if err != nil {
		return nil, malformed(err)
	}
	return out, nil
}

// Rerank runs POST /v1/rerank.
func (e *Engine) Rerank(ctx context.Context, t engine.Target, req *canonical.RerankRequest) (*canonical.RerankResponse, error) {
	body, err := openai.EncodeUpstreamRerank(req, t.Model)
	if err != nil {
		return nil, err
	}
	b, err := engine.PostJSON(ctx, e.cfg.Client, endpoint(t.URL, "/v1/rerank"), body, openai.ErrorMessage)
	if err != nil {
		return nil, err
	}
	out, err := openai.DecodeUpstreamRerank(b, req)
	if err != nil {
		return nil, malformed(err)
	}
	return out, nil
}

// Score runs POST /v1/score.
func (e *Engine) Score(ctx context.Context, t engine.Target, req *canonical.ScoreRequest) (*canonical.ScoreResponse, error) {
	body, err := openai.EncodeUpstreamScore(req, t.Model)
	if err != nil {
		return nil, err
	}
	b, err := engine.PostJSON(ctx, e.cfg.Client, endpoint(t.URL, "/v1/score"), body, openai.ErrorMessage)
	if err != nil {
		return nil, err
	}
	out, err := openai.DecodeUpstreamScore(b, len(req.Text2))
	if err != nil {
		return nil, malformed(err)
	}
	return out, nil
}

func endpoint(base, path string) string { return strings.TrimSuffix(base, "/") + path }

func malformed(err error) error {
	return &engine.Error{Retryable: true, Message: "malformed answer", Err: err}
}
