package openai

import (
	"net/http"
	"strconv"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// completions serves POST /v1/completions, the legacy text completions API,
// through the chat path: each prompt is one chat request (one user message)
// admitted as OPERATION_COMPLETION, and the answers are written as one
// text_completion object or stream. Several prompts run one after the other,
// each with its own lease and request id.
func (s *Surface) completions(w http.ResponseWriter, r *http.Request) {
	credential, body, ok := s.read(w, r)
	if !ok {
		return
	}
	c, err := openai.DecodeCompletionRequest(body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	base := surface.Call(r, credential, "/v1/completions")
	id := base.RequestID
	calls := make([]relay.Call, len(c.Requests))
	for i, req := range c.Requests {
		calls[i] = base
		if i > 0 {
			// Usage is settled by request id: every lease needs its own.
			calls[i].RequestID = id + "-" + strconv.Itoa(i)
		}
		calls[i].Request, calls[i].Operation = req, relay.OperationCompletion
	}
	first := c.Requests[0]
	meta := openai.Meta{ID: "cmpl-" + id, Model: first.Model, Created: s.cfg.Now().Unix()}
	if first.Stream {
		s.streamCompletion(w, r, c, calls, meta)
		return
	}
	answers := make([]*canonical.Response, 0, len(calls))
	var adm relay.Admission
	for i, call := range calls {
		res, err := s.relay.Chat(r.Context(), call)
		if err != nil {
			s.WriteError(w, r, err)
			return
		}
		if i == 0 {
			adm = res.Admission
		}
		answers = append(answers, res.Response)
	}
	b, err := openai.EncodeCompletion(c, answers, meta)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	writeJSON(w, adm, b)
}

func (s *Surface) streamCompletion(w http.ResponseWriter, r *http.Request, c *openai.Completion, calls []relay.Call, meta openai.Meta) {
	enc := openai.NewCompletionChunkEncoder(meta, c.Requests[0].IncludeUsage)
	s.stream(w, r, enc, func(sink relay.Sink) error {
		offset := 0
		for i, call := range calls {
			echo := ""
			if c.Echo {
				echo = c.Prompts[i]
			}
			enc.StartPrompt(offset, echo)
			if _, err := s.relay.ChatStream(r.Context(), call, sink); err != nil {
				return err
			}
			offset += max(1, call.Request.Sampling.N)
		}
		return nil
	}, enc.AppendUsage)
}
