package ollama

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// EmbedRequest is the body of POST /api/embed (Ollama 0.17). Input is a
// string or an array of strings.
type EmbedRequest struct {
	Model      string          `json:"model"`
	Input      json.RawMessage `json:"input"`
	Truncate   *bool           `json:"truncate,omitempty"`
	Dimensions int             `json:"dimensions,omitempty"`
	KeepAlive  json.RawMessage `json:"keep_alive,omitempty"`
	Options    map[string]any  `json:"options,omitempty"`
}

// EmbedResponse is the answer of POST /api/embed.
type EmbedResponse struct {
	Model           string      `json:"model"`
	Embeddings      [][]float32 `json:"embeddings"`
	TotalDuration   int64       `json:"total_duration,omitempty"`
	LoadDuration    int64       `json:"load_duration,omitempty"`
	PromptEvalCount int64       `json:"prompt_eval_count,omitempty"`
}

// EmbeddingsRequest is the body of the older POST /api/embeddings: one
// prompt, one vector.
type EmbeddingsRequest struct {
	Model     string          `json:"model"`
	Prompt    string          `json:"prompt"`
	KeepAlive json.RawMessage `json:"keep_alive,omitempty"`
	Options   map[string]any  `json:"options,omitempty"`
}

// EmbeddingsResponse is the answer of POST /api/embeddings.
type EmbeddingsResponse struct {
	Embedding []float64 `json:"embedding"`
}

// DecodeEmbed parses a client's POST /api/embed body. An empty input ("" or
// []), which Ollama answers with no embeddings after loading the model,
// returns a Load and no request. Options are ignored: the gateway sizes the
// context window.
func DecodeEmbed(body []byte) (*canonical.EmbeddingRequest, *Load, error) {
	var w EmbedRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, nil, canonical.DecodeError(err)
	}
	if strings.TrimSpace(w.Model) == "" {
		return nil, nil, canonical.Invalid("model", "model is required")
	}
	input, err := embedInput(w.Input)
	if err != nil {
		return nil, nil, err
	}
	if w.Dimensions < 0 {
		return nil, nil, canonical.Invalid("dimensions", "dimensions must be a positive integer")
	}
	if len(input) == 0 {
		return nil, &Load{Model: w.Model, Unload: keepAliveZero(w.KeepAlive)}, nil
	}
	return &canonical.EmbeddingRequest{Model: w.Model, Input: input, Dimensions: w.Dimensions, Truncate: w.Truncate}, nil, nil
}

// embedInput accepts a string (empty means none) or an array of strings.
func embedInput(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, nil
		}
		return []string{s}, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		return nil, canonical.Invalid("input", "invalid input type")
	}
	return list, nil
}

// DecodeEmbeddings parses a client's POST /api/embeddings body. An empty
// prompt, which Ollama answers with an empty vector, returns a Load and no
// request.
func DecodeEmbeddings(body []byte) (*canonical.EmbeddingRequest, *Load, error) {
	var w EmbeddingsRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, nil, canonical.DecodeError(err)
	}
	if strings.TrimSpace(w.Model) == "" {
		return nil, nil, canonical.Invalid("model", "model is required")
	}
	if w.Prompt == "" {
		return nil, &Load{Model: w.Model, Unload: keepAliveZero(w.KeepAlive)}, nil
	}
	return &canonical.EmbeddingRequest{Model: w.Model, Input: []string{w.Prompt}}, nil, nil
}

// EncodeEmbedResponse writes the answer of POST /api/embed: the vectors in
// input order, the input token count and meta's total and load durations.
// A nil resp (a Load) has no embeddings.
func EncodeEmbedResponse(resp *canonical.EmbeddingResponse, meta Meta) ([]byte, error) {
	out := EmbedResponse{Model: meta.Model, Embeddings: [][]float32{},
		TotalDuration: int64(meta.Timings.Total), LoadDuration: int64(meta.Timings.Load)}
	if resp != nil {
		if resp.Embeddings != nil {
			out.Embeddings = resp.Embeddings
		}
		if resp.Usage != nil {
			out.PromptEvalCount = resp.Usage.Prompt
		}
	}
	return marshalVectors(&out)
}

// EncodeEmbeddingsResponse writes the answer of POST /api/embeddings: the
// first vector, as Ollama writes it (float64). A nil resp (a Load) is an
// empty vector.
func EncodeEmbeddingsResponse(resp *canonical.EmbeddingResponse) ([]byte, error) {
	out := EmbeddingsResponse{Embedding: []float64{}}
	if resp != nil && len(resp.Embeddings) > 0 {
		out.Embedding = make([]float64, len(resp.Embeddings[0]))
		for i, f := range resp.Embeddings[0] {
			out.Embedding[i] = float64(f)
		}
	}
	return marshalVectors(&out)
}

// marshalVectors fails only on a NaN or infinite component, which JSON cannot
// carry and engines never send.
func marshalVectors(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode embeddings: %w", err)
	}
	return b, nil
}
