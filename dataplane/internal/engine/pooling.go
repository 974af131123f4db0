package engine

import (
	"context"
	"net/http"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// Embedder is an Engine that computes embeddings (Ollama /api/embed, vLLM
// /v1/embeddings). Errors follow the Engine contract.
type Embedder interface {
	Embed(ctx context.Context, t Target, req *canonical.EmbeddingRequest) (*canonical.EmbeddingResponse, error)
}

// Ranker is an Engine that scores text pairs with a cross-encoder (vLLM
// /rerank and /score; Ollama has neither). Errors follow the Engine contract.
type Ranker interface {
	Rerank(ctx context.Context, t Target, req *canonical.RerankRequest) (*canonical.RerankResponse, error)
	Score(ctx context.Context, t Target, req *canonical.ScoreRequest) (*canonical.ScoreResponse, error)
}

// Speaker is an Engine that turns text into speech (an OpenAI-compatible TTS
// server's /v1/audio/speech). Errors follow the Engine contract.
type Speaker interface {
	Speak(ctx context.Context, t Target, req *canonical.SpeechRequest) (*canonical.SpeechResponse, error)
}

// Transcriber is an Engine that turns speech into text (an OpenAI-compatible
// STT server's /v1/audio/transcriptions). Errors follow the Engine contract.
type Transcriber interface {
	Transcribe(ctx context.Context, t Target, req *canonical.TranscriptionRequest) (*canonical.Transcription, error)
}

// PostJSON sends body to url and reads the whole 2xx answer (at most
// MaxResponseBody bytes), with Post's error contract.
func PostJSON(ctx context.Context, c *http.Client, url string, body []byte, errMessage func([]byte) string) ([]byte, error) {
	resp, err := Post(ctx, c, url, body, errMessage)
	if err != nil {
		return nil, err
	}
	return ReadBody(ctx, resp)
}
