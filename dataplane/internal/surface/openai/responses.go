package openai

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/requestid"
	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/openai"
)

// ResponsesEndpoint is the Responses API's path; its audit records name the
// surface "openai-responses".
const ResponsesEndpoint = "/v1/responses"

// ResponseStore keeps stored responses in the control plane (cpclient.Responses).
type ResponseStore interface {
	PutResponse(ctx context.Context, credential string, r relay.StoredResponse) error
	GetResponse(ctx context.Context, credential, id string) (relay.StoredResponse, error)
	DeleteResponse(ctx context.Context, credential, id string) error
}

// registerResponses adds the Responses API's routes when a store is configured.
func (s *Surface) registerResponses(mux *http.ServeMux) {
	if s.cfg.Responses == nil {
		return
	}
	mux.HandleFunc("POST /v1/responses", s.createResponse)
	mux.HandleFunc("GET /v1/responses/{id}", s.getResponse)
	mux.HandleFunc("DELETE /v1/responses/{id}", s.deleteResponse)
	mux.HandleFunc("GET /v1/responses/{id}/input_items", s.listInputItems)
}

// notFound is the answer for an unknown response id, or another user's.
func responseNotFound(param, id string) *canonical.Error {
	return &canonical.Error{Kind: canonical.KindNotFound, Param: param, Code: "response_not_found",
		Message: canonical.Echo("No response with id '" + id + "' found.")}
}

// lookup fetches a stored response, mapping NOT_FOUND to the API's error.
func (s *Surface) lookup(ctx context.Context, credential, id, param string) (relay.StoredResponse, error) {
	st, err := s.cfg.Responses.GetResponse(ctx, credential, id)
	if err != nil && canonical.AsError(err).Kind == canonical.KindNotFound {
		return st, responseNotFound(param, id)
	}
	return st, err
}

func (s *Surface) createResponse(w http.ResponseWriter, r *http.Request) {
	credential, body, ok := s.read(w, r)
	if !ok {
		return
	}
	req, err := openai.DecodeResponsesRequest(body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	var history []json.RawMessage
	if prev := req.Wire.PreviousResponseID; prev != "" {
		st, err := s.lookup(r.Context(), credential, prev, "previous_response_id")
		if err != nil {
			if ce := canonical.AsError(err); ce.Code == "response_not_found" {
				ce.Kind, ce.Code = canonical.KindInvalidRequest, "previous_response_not_found"
				ce.Message = "Previous response with id '" + canonical.Echo(prev) + "' not found."
			}
			s.WriteError(w, r, err)
			return
		}
		history = continuation(st)
	}
	chat := req.Chat
	if chat.Messages, err = messages(req, history); err != nil {
		s.WriteError(w, r, err)
		return
	}
	call := surface.CallAs(r, credential, ResponsesEndpoint, "openai-responses")
	call.Request = chat
	id := newResponseID()
	ids := openai.NewItemIDs(id)
	obj := openai.NewResponseObject(req, id, s.cfg.Now().Unix())
	saved := func(o *openai.ResponseObject) { s.save(r, credential, req, o, history) }
	if chat.Stream {
		s.streamResponse(w, r, call, openai.NewResponsesStream(obj, ids, req.Summary), saved)
		return
	}
	res, err := s.relay.Chat(r.Context(), call)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	finish := canonical.FinishStop
	if len(res.Response.Choices) > 0 {
		finish = res.Response.Choices[0].FinishReason
	}
	obj.Finish(openai.OutputItems(res.Response, ids, req.Summary), finish, res.Usage)
	saved(obj)
	b, err := json.Marshal(obj)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	writeJSON(w, res.Admission, b)
}

// messages builds the conversation: instructions, the previous responses'
// items, then this request's input.
func messages(req *openai.Responses, history []json.RawMessage) ([]canonical.Message, error) {
	var out []canonical.Message
	if in := req.Wire.Instructions; in != nil && *in != "" {
		out = append(out, canonical.Message{Role: canonical.RoleSystem, Content: []canonical.Part{canonical.TextPart(*in)}})
	}
	past, err := openai.ItemsToMessages(history, "previous_response_id")
	if err != nil {
		return nil, err
	}
	now, err := openai.ItemsToMessages(req.Items, "input")
	if err != nil {
		return nil, err
	}
	out = append(append(out, past...), now...)
	if len(out) == 0 {
		return nil, canonical.Invalid("input", "input must be a non-empty string or array of items")
	}
	return out, nil
}

// continuation is the history a response continuing st starts from.
func continuation(st relay.StoredResponse) []json.RawMessage {
	out := append(append([]json.RawMessage{}, st.History...), st.InputItems...)
	var obj struct {
		Output []json.RawMessage `json:"output"`
	}
	_ = json.Unmarshal(st.Response, &obj)
	return append(out, obj.Output...)
}

// save stores a finished response when the client asked for it (the
// default); it outlives a client that went away. A failed store is logged:
// the client already has its answer.
func (s *Surface) save(r *http.Request, credential string, req *openai.Responses, o *openai.ResponseObject, history []json.RawMessage) {
	if !o.Store || o.Status == "failed" {
		return
	}
	b, err := json.Marshal(o)
	if err == nil {
		err = s.cfg.Responses.PutResponse(context.WithoutCancel(r.Context()), credential, relay.StoredResponse{
			ID: o.ID, PreviousResponseID: req.Wire.PreviousResponseID, Model: o.Model, Response: b,
			InputItems: openai.IdentifyItems(req.Items, openai.NewItemIDs(o.ID+"in")), History: history, CreatedAt: s.cfg.Now(),
		})
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "store response", slog.String("request_id", requestid.FromContext(r.Context())),
			slog.String("response_id", o.ID), slog.Any("error", err))
	}
}

// streamResponse runs a streamed response: headers and the opening events go
// out with the first chunk, so that a refusal before it is an ordinary JSON
// error; after it, an error ends the stream with response.failed.
func (s *Surface) streamResponse(w http.ResponseWriter, r *http.Request, call relay.Call, enc *openai.ResponsesStream, saved func(*openai.ResponseObject)) {
	sink := &responsesSink{sse: sseSink{w: w, sw: stream.NewSSEWriter(w, s.cfg.WriteTimeout), opening: enc.AppendStart}, enc: enc}
	res, err := s.relay.ChatStream(r.Context(), call, sink)
	k := &sink.sse
	switch {
	case err != nil && !k.started:
		s.WriteError(w, r, err)
	case err != nil:
		ce := canonical.AsError(err)
		if ce.Kind == canonical.KindCancelled || r.Context().Err() != nil {
			return
		}
		s.logError(r, ce)
		_ = k.sw.Raw(enc.AppendFailed(k.buf[:0], ce))
	default:
		k.start()
		_ = k.sw.Raw(enc.AppendEnd(k.buf[:0], res.Usage))
		saved(enc.Object())
	}
}

// responsesSink writes a relay's chunks as Responses API events through the
// chat stream's sink, whose start also sends the opening events
// (response.created and response.in_progress). It holds the sink rather than
// embedding it: a Responses stream sends no queue comments (sseSink.Queued).
type responsesSink struct {
	sse sseSink
	enc *openai.ResponsesStream
}

func (k *responsesSink) Admitted(a relay.Admission) { k.sse.Admitted(a) }

// Chunk starts the stream before encoding, unlike sseSink.Chunk, so that the
// opening events take the first sequence numbers, as on the wire.
func (k *responsesSink) Chunk(c canonical.Chunk) error {
	k.sse.start()
	k.sse.buf = k.enc.AppendChunk(k.sse.buf[:0], &c)
	if len(k.sse.buf) == 0 {
		return nil
	}
	return k.sse.sw.Raw(k.sse.buf)
}

func (s *Surface) getResponse(w http.ResponseWriter, r *http.Request) {
	credential, ok := s.credential(w, r)
	if !ok {
		return
	}
	st, err := s.lookup(r.Context(), credential, r.PathValue("id"), "response_id")
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	writeJSON(w, relay.Admission{}, st.Response)
}

func (s *Surface) deleteResponse(w http.ResponseWriter, r *http.Request) {
	credential, ok := s.credential(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if err := s.cfg.Responses.DeleteResponse(r.Context(), credential, id); err != nil {
		if canonical.AsError(err).Kind == canonical.KindNotFound {
			err = responseNotFound("response_id", id)
		}
		s.WriteError(w, r, err)
		return
	}
	b, _ := json.Marshal(map[string]any{"id": id, "object": "response.deleted", "deleted": true})
	writeJSON(w, relay.Admission{}, b)
}

func (s *Surface) listInputItems(w http.ResponseWriter, r *http.Request) {
	credential, ok := s.credential(w, r)
	if !ok {
		return
	}
	st, err := s.lookup(r.Context(), credential, r.PathValue("id"), "response_id")
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			s.WriteError(w, r, canonical.Invalid("limit", "limit must be an integer from 1 to 100"))
			return
		}
		limit = n
	}
	order := q.Get("order")
	if order != "" && order != "asc" && order != "desc" {
		s.WriteError(w, r, canonical.Invalid("order", `order must be "asc" or "desc"`))
		return
	}
	b, err := openai.EncodeItemList(st.InputItems, order != "asc", q.Get("after"), limit)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	writeJSON(w, relay.Admission{}, b)
}

// credential reads the key of a request without a body.
func (s *Surface) credential(w http.ResponseWriter, r *http.Request) (string, bool) {
	c := Credential(r)
	if c == "" {
		s.WriteError(w, r, errMissingKey)
		return "", false
	}
	return c, true
}

// newResponseID returns resp_<32 hex>.
func newResponseID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "resp_" + hex.EncodeToString(b[:])
}
