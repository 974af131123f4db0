package openai

import (
	"net/http"

	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// embeddings serves POST /v1/embeddings.
func (s *Surface) embeddings(w http.ResponseWriter, r *http.Request) {
	credential, body, ok := s.read(w, r)
	if !ok {
		return
	}
	req, opts, err := openai.DecodeEmbeddingRequest(body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	res, err := s.relay.Embed(r.Context(), surface.Call(r, credential, "/v1/embeddings"), req)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	writeJSON(w, res.Admission, openai.EncodeEmbeddingResponse(res.Embedding, req.Model, opts))
}

// rerank serves POST /v1/rerank (vLLM's shape).
func (s *Surface) rerank(w http.ResponseWriter, r *http.Request) {
	credential, body, ok := s.read(w, r)
	if !ok {
		return
	}
	req, err := openai.DecodeRerankRequest(body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	call := surface.Call(r, credential, "/v1/rerank")
	id := call.RequestID
	res, err := s.relay.Rerank(r.Context(), call, req)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	meta := openai.Meta{ID: "rerank-" + id, Model: req.Model, Created: s.cfg.Now().Unix()}
	writeJSON(w, res.Admission, openai.EncodeRerankResponse(res.Rerank, meta, req.ReturnDocuments))
}

// score serves POST /v1/score (vLLM's shape).
func (s *Surface) score(w http.ResponseWriter, r *http.Request) {
	credential, body, ok := s.read(w, r)
	if !ok {
		return
	}
	req, err := openai.DecodeScoreRequest(body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	call := surface.Call(r, credential, "/v1/score")
	id := call.RequestID
	res, err := s.relay.Score(r.Context(), call, req)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	meta := openai.Meta{ID: "score-" + id, Model: req.Model, Created: s.cfg.Now().Unix()}
	writeJSON(w, res.Admission, openai.EncodeScoreResponse(res.Score, meta))
}
