package ollama

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
)

var _ engine.Embedder = (*Engine)(nil)

// embedRequest is the body of POST /api/embed (Ollama 0.17).
type embedRequest struct {
	Model      string         `json:"model"`
	Input      []string       `json:"input"`
	Truncate   *bool          `json:"truncate,omitempty"`
	Dimensions int            `json:"dimensions,omitempty"`
	Options    map[string]any `json:"options,omitempty"`
}

// embedResponse is Ollama's /api/embed answer.
type embedResponse struct {
	Model           string      `json:"model"`
	Embeddings      [][]float32 `json:"embeddings"`
	PromptEvalCount int64       `json:"prompt_eval_count"`
}

// Embed runs POST /api/embed, which takes every input in one call. The
// model is loaded with the lease's context window, as for chat, so that
// switching between chat and embeddings does not reload it.
func (e *Engine) Embed(ctx context.Context, t engine.Target, req *canonical.EmbeddingRequest) (*canonical.EmbeddingResponse, error) {
	w := embedRequest{Model: t.Model, Input: req.Input, Truncate: req.Truncate, Dimensions: req.Dimensions}
	if t.ContextLength > 0 {
		w.Options = map[string]any{"num_ctx": t.ContextLength}
	}
	body, err := json.Marshal(&w)
	if err != nil {
		return nil, fmt.Errorf("encode /api/embed request: %w", err)
	}
	b, err := engine.PostJSON(ctx, e.cfg.Client, embedURL(t.URL), body, errorMessage)
	if err != nil {
		return nil, err
	}
	return decodeEmbedResponse(b, len(req.Input))
}

func decodeEmbedResponse(b []byte, inputs int) (*canonical.EmbeddingResponse, error) {
	var out embedResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, &engine.Error{Retryable: true, Message: "malformed answer", Err: err}
	}
	if len(out.Embeddings) != inputs {
		return nil, &engine.Error{Retryable: true,
			Message: fmt.Sprintf("malformed answer: %d embeddings for %d inputs", len(out.Embeddings), inputs)}
	}
	resp := &canonical.EmbeddingResponse{Model: out.Model, Embeddings: out.Embeddings}
	if out.PromptEvalCount > 0 {
		resp.Usage = &canonical.Usage{Prompt: out.PromptEvalCount}
	}
	return resp, nil
}

func embedURL(base string) string { return strings.TrimSuffix(base, "/") + "/api/embed" }
