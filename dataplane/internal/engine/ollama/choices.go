package ollama

import (
	"context"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
)

// Chat runs a non-streamed /api/chat call. Ollama has no n: a request for n
// choices runs n calls one after the other (a seed, when given, is advanced
// by one per choice so that the choices differ) and merges them; usage is
// the first call's prompt count and the sum of the completions, as vLLM
// counts n choices.
func (e *Engine) Chat(ctx context.Context, t engine.Target, req *canonical.Request) (*canonical.Response, error) {
	n := max(1, req.Sampling.N)
	if n == 1 {
		return e.chatChoice(ctx, t, req)
	}
	var out *canonical.Response
	for i := range n {
		r, err := e.chatChoice(ctx, t, choiceRequest(req, i))
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = &canonical.Response{Model: r.Model}
		}
		for _, ch := range r.Choices {
			ch.Index = i
			out.Choices = append(out.Choices, ch)
		}
		out.Usage = addUsage(out.Usage, r.Usage)
	}
	return out, nil
}

// ChatStream runs a streamed /api/chat call; n choices are n streams one
// after the other, each chunk numbered with its choice, and one usage chunk
// (summed as in Chat) at the end.
func (e *Engine) ChatStream(ctx context.Context, t engine.Target, req *canonical.Request, emit func(canonical.Chunk) error) error {
	n := max(1, req.Sampling.N)
	if n == 1 {
		return e.streamChoice(ctx, t, req, emit)
	}
	var usage *canonical.Usage
	for i := range n {
		err := e.streamChoice(ctx, t, choiceRequest(req, i), func(c canonical.Chunk) error {
			c.Choice = i
			if c.Usage != nil {
				usage = addUsage(usage, c.Usage)
				c.Usage = nil
				if c.Empty() {
					return nil
				}
			}
			return emit(c)
		})
		if err != nil {
			return err
		}
	}
	if usage == nil {
		return nil
	}
	return emit(canonical.Chunk{Usage: usage})
}

// choiceRequest is the request for choice i of n: one choice, and the seed
// advanced by i.
func choiceRequest(req *canonical.Request, i int) *canonical.Request {
	r := *req
	r.Sampling.N = 1
	if req.Sampling.Seed != nil {
		seed := *req.Sampling.Seed + int64(i)
		r.Sampling.Seed = &seed
	}
	return &r
}

// addUsage counts the prompt once and sums the completions.
func addUsage(sum, u *canonical.Usage) *canonical.Usage {
	switch {
	case u == nil:
		return sum
	case sum == nil:
		c := *u
		return &c
	}
	return &canonical.Usage{Prompt: max(sum.Prompt, u.Prompt), Completion: sum.Completion + u.Completion}
}
