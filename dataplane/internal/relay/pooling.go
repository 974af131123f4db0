package relay

import (
	"context"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/tokens"
)

// Embed runs an embeddings request for any surface (OpenAI /v1/embeddings,
// Ollama /api/embed and /api/embeddings): admission with
// OperationEmbedding, dispatch to the lease's engine (Ollama /api/embed or
// vLLM /v1/embeddings), retry on another backend after a backend failure, and
// exactly one release charged with the input tokens (the engine's count, or
// an estimate marked as one). call.Request is ignored; set call.RequestID,
// Credential and Endpoint as for Chat.
//
// On success res.Embedding holds one vector per input, in input order, with
// Usage set; res.Admission describes the lease. Errors convert with
// canonical.AsError, as for Chat: a model that cannot embed is refused by the
// control plane as KindInvalidRequest before any backend is called.
func (r *Relay) Embed(ctx context.Context, call Call, req *canonical.EmbeddingRequest) (*Result, error) {
	var chars int
	for _, in := range req.Input {
		chars += len(in)
	}
	j := &job{call: call, op: OperationEmbedding, model: req.Model,
		prompt: tokens.FromChars(chars) + int64(len(req.Input)),
		pool: func(ctx context.Context, eng engine.Engine, t engine.Target, res *Result) (*canonical.Usage, error) {
			e, ok := eng.(engine.Embedder)
			if !ok {
				return nil, unsupported("this backend cannot compute embeddings")
			}
			out, err := e.Embed(ctx, t, req)
			if err != nil {
				return nil, err
			}
			res.Embedding = out
			return out.Usage, nil
		}}
	return r.run(ctx, j)
}

// Rerank runs a rerank request (vLLM only: the control plane refuses a model
// served only by Ollama with KindInvalidRequest "rerank is only available on
// vLLM backends"). On success res.Rerank holds the results, most relevant
// first. Otherwise as Embed.
func (r *Relay) Rerank(ctx context.Context, call Call, req *canonical.RerankRequest) (*Result, error) {
	var chars int
	for _, d := range req.Documents {
		chars += len(req.Query) + len(d)
	}
	j := &job{call: call, op: OperationRerank, model: req.Model,
		prompt: tokens.FromChars(chars) + 2*int64(len(req.Documents)),
		pool: func(ctx context.Context, eng engine.Engine, t engine.Target, res *Result) (*canonical.Usage, error) {
			rk, ok := eng.(engine.Ranker)
			if !ok {
				return nil, unsupported("rerank is only available on vLLM backends")
			}
			out, err := rk.Rerank(ctx, t, req)
			if err != nil {
				return nil, err
			}
			res.Rerank = out
			return out.Usage, nil
		}}
	return r.run(ctx, j)
}

// Score runs a score request (vLLM only, like Rerank). On success res.Score
// holds one score per text pair. Otherwise as Embed.
func (r *Relay) Score(ctx context.Context, call Call, req *canonical.ScoreRequest) (*Result, error) {
	var chars int
	for i, t2 := range req.Text2 {
		t1 := req.Text1[0]
		if len(req.Text1) == len(req.Text2) {
			t1 = req.Text1[i]
		}
		chars += len(t1) + len(t2)
	}
	j := &job{call: call, op: OperationScore, model: req.Model,
		prompt: tokens.FromChars(chars) + 2*int64(len(req.Text2)),
		pool: func(ctx context.Context, eng engine.Engine, t engine.Target, res *Result) (*canonical.Usage, error) {
			rk, ok := eng.(engine.Ranker)
			if !ok {
				return nil, unsupported("score is only available on vLLM backends")
			}
			out, err := rk.Score(ctx, t, req)
			if err != nil {
				return nil, err
			}
			res.Score = out
			return out.Usage, nil
		}}
	return r.run(ctx, j)
}

// unsupported is the refusal of a lease whose engine cannot run the
// operation (the control plane should not grant one).
func unsupported(msg string) *canonical.Error {
	return &canonical.Error{Kind: canonical.KindInvalidRequest, Code: "capability_unsupported", Message: msg}
}
