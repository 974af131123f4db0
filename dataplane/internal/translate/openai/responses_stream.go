package openai

import (
	"encoding/json"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// ResponsesStream encodes canonical chunks as the Responses API's typed
// server-sent events: response.created and response.in_progress, then for
// each output item output_item.added, its deltas and done events and
// output_item.done, and finally exactly one of response.completed,
// response.incomplete or response.failed. sequence_number rises by one per
// event. It keeps the items it emitted, so that the terminal event and the
// stored response carry the whole output.
type ResponsesStream struct {
	obj     *ResponseObject
	ids     *ItemIDs
	summary bool
	seq     int64
	out     []Item
	// the open item: kind "" (none), "reasoning", "message" or "call"
	open      string
	openID    string
	text      strings.Builder
	callIndex int
	callID    string
	callName  string
	finish    canonical.FinishReason
}

// NewResponsesStream returns the encoder of a response in progress.
func NewResponsesStream(obj *ResponseObject, ids *ItemIDs, summary bool) *ResponsesStream {
	return &ResponsesStream{obj: obj, ids: ids, summary: summary, callIndex: -1}
}

type ev map[string]any

// event appends one SSE frame.
func (s *ResponsesStream) event(dst []byte, typ string, fields ev) []byte {
	fields["type"] = typ
	fields["sequence_number"] = s.seq
	s.seq++
	b, _ := json.Marshal(fields)
	dst = append(dst, "event: "...)
	dst = append(dst, typ...)
	dst = append(dst, "\ndata: "...)
	dst = append(dst, b...)
	return append(dst, '\n', '\n')
}

// AppendStart appends response.created and response.in_progress.
func (s *ResponsesStream) AppendStart(dst []byte) []byte {
	dst = s.event(dst, "response.created", ev{"response": s.obj})
	return s.event(dst, "response.in_progress", ev{"response": s.obj})
}

// AppendChunk appends the events of one chunk.
func (s *ResponsesStream) AppendChunk(dst []byte, c *canonical.Chunk) []byte {
	if c.Choice != 0 {
		return dst
	}
	if c.Reasoning != "" {
		dst = s.openItem(dst, "reasoning", -1)
		s.text.WriteString(c.Reasoning)
		idx := len(s.out)
		dst = s.event(dst, "response.reasoning_text.delta", ev{"item_id": s.openID, "output_index": idx, "content_index": 0, "delta": c.Reasoning})
		if s.summary {
			dst = s.event(dst, "response.reasoning_summary_text.delta", ev{"item_id": s.openID, "output_index": idx, "summary_index": 0, "delta": c.Reasoning})
		}
	}
	if c.Content != "" {
		dst = s.openItem(dst, "message", -1)
		s.text.WriteString(c.Content)
		dst = s.event(dst, "response.output_text.delta", ev{"item_id": s.openID, "output_index": len(s.out), "content_index": 0, "delta": c.Content, "logprobs": []any{}})
	}
	for i := range c.ToolCalls {
		d := &c.ToolCalls[i]
		if s.open != "call" || d.Index != s.callIndex {
			dst = s.closeItem(dst)
			s.callID, s.callName = d.ID, d.Name
			if s.callID == "" {
				s.callID = s.ids.Next("call")
			}
			dst = s.openItem(dst, "call", d.Index)
		}
		if d.Arguments != "" {
			s.text.WriteString(d.Arguments)
			dst = s.event(dst, "response.function_call_arguments.delta", ev{"item_id": s.openID, "output_index": len(s.out), "delta": d.Arguments})
		}
	}
	if c.FinishReason != "" {
		s.finish = c.FinishReason
	}
	return dst
}

// openItem makes kind the open item, closing another first.
func (s *ResponsesStream) openItem(dst []byte, kind string, callIndex int) []byte {
	if s.open == kind && kind != "call" {
		return dst
	}
	dst = s.closeItem(dst)
	s.open, s.callIndex = kind, callIndex
	s.text.Reset()
	idx := len(s.out)
	switch kind {
	case "reasoning":
		s.openID = s.ids.Next("rs")
		it := Item{ID: s.openID, Type: "reasoning", Summary: json.RawMessage(`[]`)}
		dst = s.event(dst, "response.output_item.added", ev{"output_index": idx, "item": it})
		if s.summary {
			dst = s.event(dst, "response.reasoning_summary_part.added", ev{"item_id": s.openID, "output_index": idx, "summary_index": 0,
				"part": ItemPart{Type: "summary_text"}})
		}
	case "message":
		s.openID = s.ids.Next("msg")
		it := Item{ID: s.openID, Type: "message", Status: "in_progress", Role: "assistant", Content: json.RawMessage(`[]`)}
		dst = s.event(dst, "response.output_item.added", ev{"output_index": idx, "item": it})
		dst = s.event(dst, "response.content_part.added", ev{"item_id": s.openID, "output_index": idx, "content_index": 0,
			"part": outputTextPart{Type: "output_text", Annotations: []any{}, Logprobs: []any{}}})
	case "call":
		s.openID = s.ids.Next("fc")
		dst = s.event(dst, "response.output_item.added", ev{"output_index": idx, "item": functionCallItem(s.openID, s.callID, s.callName, "", "in_progress")})
	}
	return dst
}

// closeItem ends the open item with its done events.
func (s *ResponsesStream) closeItem(dst []byte) []byte {
	idx := len(s.out)
	text := s.text.String()
	var it Item
	switch s.open {
	case "":
		return dst
	case "reasoning":
		dst = s.event(dst, "response.reasoning_text.done", ev{"item_id": s.openID, "output_index": idx, "content_index": 0, "text": text})
		if s.summary {
			dst = s.event(dst, "response.reasoning_summary_text.done", ev{"item_id": s.openID, "output_index": idx, "summary_index": 0, "text": text})
			dst = s.event(dst, "response.reasoning_summary_part.done", ev{"item_id": s.openID, "output_index": idx, "summary_index": 0,
				"part": ItemPart{Type: "summary_text", Text: text}})
		}
		it = reasoningItem(s.openID, text, s.summary)
	case "message":
		status := "completed"
		if s.finish == canonical.FinishLength {
			status = "incomplete"
		}
		dst = s.event(dst, "response.output_text.done", ev{"item_id": s.openID, "output_index": idx, "content_index": 0, "text": text, "logprobs": []any{}})
		dst = s.event(dst, "response.content_part.done", ev{"item_id": s.openID, "output_index": idx, "content_index": 0,
			"part": outputTextPart{Type: "output_text", Text: text, Annotations: []any{}, Logprobs: []any{}}})
		it = messageItem(s.openID, text, status)
	case "call":
		if text == "" {
			text = "{}"
		}
		dst = s.event(dst, "response.function_call_arguments.done", ev{"item_id": s.openID, "output_index": idx, "name": s.callName, "arguments": text})
		it = functionCallItem(s.openID, s.callID, s.callName, text, "completed")
	}
	dst = s.event(dst, "response.output_item.done", ev{"output_index": idx, "item": it})
	s.out = append(s.out, it)
	s.open = ""
	return dst
}

// AppendEnd closes the open item and appends response.completed (or
// response.incomplete when the output hit max_output_tokens) with usage u.
func (s *ResponsesStream) AppendEnd(dst []byte, u canonical.Usage) []byte {
	dst = s.closeItem(dst)
	if len(s.out) == 0 { // nothing was generated: an empty message, as the non-streamed answer has
		dst = s.openItem(dst, "message", -1)
		dst = s.closeItem(dst)
	}
	s.obj.Finish(s.out, s.finish, u)
	typ := "response.completed"
	if s.obj.Status == "incomplete" {
		typ = "response.incomplete"
	}
	return s.event(dst, typ, ev{"response": s.obj})
}

// AppendFailed closes the open item and appends response.failed with err.
func (s *ResponsesStream) AppendFailed(dst []byte, err *canonical.Error) []byte {
	dst = s.closeItem(dst)
	s.obj.Fail(s.out, err)
	return s.event(dst, "response.failed", ev{"response": s.obj})
}

// Object is the response object (final after AppendEnd or AppendFailed).
func (s *ResponsesStream) Object() *ResponseObject { return s.obj }
