package ollama

import (
	"context"
	"net/http"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
)

// Embedder runs embedding requests: admission, the engine's embeddings call
// and release (relay.Relay). The answer is in Result.Embedding.
type Embedder interface {
	Embed(ctx context.Context, call relay.Call, req *canonical.EmbeddingRequest) (*relay.Result, error)
}

// errNoEmbedder answers embeddings when the surface was built without an
// Embedder.
var errNoEmbedder = &canonical.Error{Kind: canonical.KindInvalidRequest, Status: http.StatusNotImplemented,
	Message: "embeddings are not available on this gateway"}

func (s *Surface) embed(w http.ResponseWriter, r *http.Request) {
	s.embedWith(w, r, "/api/embed", ollama.DecodeEmbed, func(resp *canonical.EmbeddingResponse, meta ollama.Meta) ([]byte, error) {
		return ollama.EncodeEmbedResponse(resp, meta)
	})
}

func (s *Surface) embeddings(w http.ResponseWriter, r *http.Request) {
	s.embedWith(w, r, "/api/embeddings", ollama.DecodeEmbeddings, func(resp *canonical.EmbeddingResponse, _ ollama.Meta) ([]byte, error) {
		return ollama.EncodeEmbeddingsResponse(resp)
	})
}

// embedWith serves /api/embed and /api/embeddings, which differ in their
// request and answer shapes only. An empty input is a Load: answered with no
// vectors once the model is known to be in the caller's catalog.
func (s *Surface) embedWith(w http.ResponseWriter, r *http.Request, endpoint string,
	decode func([]byte) (*canonical.EmbeddingRequest, *ollama.Load, error),
	encode func(*canonical.EmbeddingResponse, ollama.Meta) ([]byte, error)) {
	start := s.cfg.Now()
	credential, body, ok := s.readRequest(w, r)
	if !ok {
		return
	}
	req, load, err := decode(body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	if load != nil {
		s.load(w, r, credential, load, func(m ollama.Meta) ([]byte, error) { return encode(nil, m) })
		return
	}
	if s.embedder == nil {
		s.WriteError(w, r, errNoEmbedder)
		return
	}
	res, err := s.embedder.Embed(r.Context(), surface.Call(r, credential, endpoint), req)
	if err != nil {
		s.writeError(w, r, err, req.Model)
		return
	}
	meta := ollama.Meta{Model: req.Model, Timings: ollama.Timings{Total: s.cfg.Now().Sub(start), Load: res.Admission.Queued}}
	b, err := encode(res.Embedding, meta)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	surface.AdmissionHeaders(w.Header(), res.Admission)
	writeJSON(w, b)
}
