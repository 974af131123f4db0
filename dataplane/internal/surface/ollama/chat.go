package ollama

import (
	"net/http"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
)

func (s *Surface) chat(w http.ResponseWriter, r *http.Request) {
	s.answer(w, r, ollama.ShapeChat)
}

func (s *Surface) generate(w http.ResponseWriter, r *http.Request) {
	s.answer(w, r, ollama.ShapeGenerate)
}

// answer serves /api/chat and /api/generate: both are chats to the relay and
// differ only in the request they decode and the shape they answer in.
func (s *Surface) answer(w http.ResponseWriter, r *http.Request, shape ollama.Shape) {
	start := s.cfg.Now()
	credential, body, ok := s.readRequest(w, r)
	if !ok {
		return
	}
	decode, endpoint, op := ollama.DecodeChat, "/api/chat", relay.OperationChat
	if shape == ollama.ShapeGenerate {
		// Ollama's generate is its text completion, served as a chat.
		decode, endpoint, op = ollama.DecodeGenerate, "/api/generate", relay.OperationCompletion
	}
	req, load, err := decode(body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	if load != nil {
		s.load(w, r, credential, load, func(m ollama.Meta) ([]byte, error) {
			return ollama.EncodeLoad(load, m, shape), nil
		})
		return
	}
	meta := ollama.Meta{Model: req.Model, CreatedAt: ollama.FormatTime(start)}
	call := surface.Call(r, credential, endpoint)
	call.Request, call.Operation = req, op
	if req.Stream {
		s.stream(w, r, call, meta, shape, start)
		return
	}
	res, err := s.relay.Chat(r.Context(), call)
	if err != nil {
		s.writeError(w, r, err, req.Model)
		return
	}
	// A whole answer has no first-token time: load_duration is the queue
	// wait, eval_duration the rest after it.
	total := s.cfg.Now().Sub(start)
	meta.Timings = ollama.Timings{Total: total, Load: res.Admission.Queued, Eval: total - res.Admission.Queued}
	b, err := ollama.EncodeAnswer(res.Response, meta, shape)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	surface.AdmissionHeaders(w.Header(), res.Admission)
	writeJSON(w, b)
}

// load answers a request that generates nothing (Ollama clients send one to
// load or unload a model) without taking a backend slot: the gateway's
// backends load models themselves. The model must be in the caller's
// catalog, which also checks the key.
func (s *Surface) load(w http.ResponseWriter, r *http.Request, credential string, load *ollama.Load,
	encode func(ollama.Meta) ([]byte, error)) {
	if _, err := s.findModel(r, credential, load.Model); err != nil {
		s.writeError(w, r, err, load.Model)
		return
	}
	b, err := encode(ollama.Meta{Model: load.Model, CreatedAt: ollama.FormatTime(s.cfg.Now())})
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	writeJSON(w, b)
}

// timings are the gateway's measurements of one streamed answer, reported in
// Ollama's done line: total_duration is the whole request, load_duration the
// wait for admission (queue included), prompt_eval_duration the time from
// admission to the first token and eval_duration the rest.
func timings(start, admitted, first, end time.Time) ollama.Timings {
	t := ollama.Timings{Total: end.Sub(start)}
	if admitted.IsZero() {
		return t
	}
	t.Load = admitted.Sub(start)
	if first.IsZero() {
		t.Eval = end.Sub(admitted)
		return t
	}
	t.PromptEval = first.Sub(admitted)
	t.Eval = end.Sub(first)
	return t
}

// visible reports whether a chunk carries something the client sees as
// generated (for the time of the first token).
func visible(c *canonical.Chunk) bool {
	return c.Content != "" || c.Reasoning != "" || len(c.ToolCalls) > 0
}
