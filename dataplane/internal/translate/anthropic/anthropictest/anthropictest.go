package anthropictest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mindrouter/mindrouter/dataplane/internal/stream"
)

// Event is one server-sent event.
type Event struct {
	Name string
	Data []byte
}

// Block is one folded content block.
type Block struct {
	Type      string
	Text      string
	Thinking  string
	Signature string
	ID        string
	Name      string
	// Input is the concatenation of the block's partial_json fragments.
	Input string
}

// ErrorBody is the inside of an error event.
type ErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Message is a stream folded back into a message.
type Message struct {
	ID, Model    string
	Blocks       []Block
	StopReason   string
	StopSequence *string
	// StartInputTokens and StartOutputTokens are message_start's usage;
	// InputTokens and OutputTokens message_delta's.
	StartInputTokens, StartOutputTokens int64
	InputTokens, OutputTokens           int64
	Pings                               int
	// Error is set when the stream ended with an error event.
	Error *ErrorBody
	// Complete is true when message_stop arrived.
	Complete bool
}

// Parse reads an event-stream body into events.
func Parse(body []byte) ([]Event, error) {
	r := stream.NewSSEReader(bytes.NewReader(body), 0)
	var out []Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Event{Name: ev.Name, Data: bytes.Clone(ev.Data)})
	}
}

type usage struct {
	InputTokens  *int64 `json:"input_tokens"`
	OutputTokens *int64 `json:"output_tokens"`
}

type wireEvent struct {
	Type    string `json:"type"`
	Index   *int   `json:"index"`
	Message *struct {
		ID      string          `json:"id"`
		Type    string          `json:"type"`
		Role    string          `json:"role"`
		Model   string          `json:"model"`
		Content json.RawMessage `json:"content"`
		Usage   usage           `json:"usage"`
	} `json:"message"`
	ContentBlock *struct {
		Type      string          `json:"type"`
		Text      *string         `json:"text"`
		Thinking  *string         `json:"thinking"`
		Signature *string         `json:"signature"`
		ID        string          `json:"id"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
	} `json:"content_block"`
	Delta *struct {
		Type         string  `json:"type"`
		Text         string  `json:"text"`
		Thinking     string  `json:"thinking"`
		Signature    string  `json:"signature"`
		PartialJSON  *string `json:"partial_json"`
		StopReason   *string `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	} `json:"delta"`
	Usage *usage     `json:"usage"`
	Error *ErrorBody `json:"error"`
}

var stopReasons = map[string]bool{"end_turn": true, "max_tokens": true, "stop_sequence": true, "tool_use": true, "refusal": true, "pause_turn": true}

// Fold checks the sequence and folds it into a message; the error names the
// first violation.
func Fold(events []Event) (*Message, error) {
	f := folder{m: &Message{}, open: -1}
	for i, ev := range events {
		if f.ended {
			return f.m, fmt.Errorf("event %d (%s) after the end of the stream", i, ev.Name)
		}
		if err := f.add(ev); err != nil {
			return f.m, fmt.Errorf("event %d (%s %s): %w", i, ev.Name, ev.Data, err)
		}
	}
	if !f.ended {
		return f.m, errors.New("the stream ended without message_stop or an error")
	}
	return f.m, nil
}

type folder struct {
	m       *Message
	started bool
	open    int
	delta   bool
	ended   bool
}

func (f *folder) add(ev Event) error {
	var w wireEvent
	if err := json.Unmarshal(ev.Data, &w); err != nil {
		return fmt.Errorf("data is not JSON: %w", err)
	}
	if w.Type != ev.Name {
		return fmt.Errorf("event name %q but data type %q", ev.Name, w.Type)
	}
	if ev.Name != "message_start" && ev.Name != "error" && !f.started {
		return errors.New("before message_start")
	}
	switch ev.Name {
	case "message_start":
		return f.start(&w)
	case "ping":
		f.m.Pings++
		return nil
	case "content_block_start":
		return f.blockStart(&w)
	case "content_block_delta":
		return f.blockDelta(&w)
	case "content_block_stop":
		if w.Index == nil || *w.Index != f.open {
			return fmt.Errorf("stop of a block that is not open (open: %d)", f.open)
		}
		f.open = -1
		return nil
	case "message_delta":
		return f.messageDelta(&w)
	case "message_stop":
		if !f.delta {
			return errors.New("message_stop before message_delta")
		}
		f.m.Complete, f.ended = true, true
		return nil
	case "error":
		if w.Error == nil || w.Error.Type == "" || w.Error.Message == "" {
			return errors.New("error event without error.type and error.message")
		}
		f.m.Error, f.ended = w.Error, true
		return nil
	}
	return fmt.Errorf("unknown event %q", ev.Name)
}

func (f *folder) start(w *wireEvent) error {
	if f.started {
		return errors.New("second message_start")
	}
	msg := w.Message
	if msg == nil || msg.Type != "message" || msg.Role != "assistant" || string(msg.Content) != "[]" {
		return errors.New(`message_start needs a message of type "message", role "assistant" and empty content`)
	}
	if msg.Usage.InputTokens == nil || msg.Usage.OutputTokens == nil {
		return errors.New("message_start usage needs input_tokens and output_tokens")
	}
	f.started = true
	f.m.ID, f.m.Model = msg.ID, msg.Model
	f.m.StartInputTokens, f.m.StartOutputTokens = *msg.Usage.InputTokens, *msg.Usage.OutputTokens
	return nil
}

func (f *folder) blockStart(w *wireEvent) error {
	switch {
	case f.delta:
		return errors.New("block started after message_delta")
	case f.open >= 0:
		return fmt.Errorf("block started while block %d is open", f.open)
	case w.Index == nil || *w.Index != len(f.m.Blocks):
		return fmt.Errorf("block index is not %d", len(f.m.Blocks))
	case w.ContentBlock == nil:
		return errors.New("no content_block")
	}
	cb := w.ContentBlock
	b := Block{Type: cb.Type}
	switch cb.Type {
	case "text":
		if cb.Text == nil || *cb.Text != "" {
			return errors.New(`a text block starts with "text": ""`)
		}
	case "thinking":
		if cb.Thinking == nil || *cb.Thinking != "" || cb.Signature == nil {
			return errors.New(`a thinking block starts with "thinking": "" and a signature`)
		}
	case "tool_use":
		if cb.ID == "" || cb.Name == "" || string(cb.Input) != "{}" {
			return errors.New("a tool_use block starts with an id, a name and input {}")
		}
		b.ID, b.Name = cb.ID, cb.Name
	default:
		return fmt.Errorf("unexpected block type %q", cb.Type)
	}
	f.m.Blocks = append(f.m.Blocks, b)
	f.open = *w.Index
	return nil
}

func (f *folder) blockDelta(w *wireEvent) error {
	if w.Index == nil || *w.Index != f.open || f.open < 0 {
		return fmt.Errorf("delta for a block that is not open (open: %d)", f.open)
	}
	if w.Delta == nil {
		return errors.New("no delta")
	}
	b := &f.m.Blocks[f.open]
	d := w.Delta
	want := map[string]string{"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "thinking", "input_json_delta": "tool_use"}[d.Type]
	if want != b.Type {
		return fmt.Errorf("%s in a %s block", d.Type, b.Type)
	}
	switch d.Type {
	case "text_delta":
		b.Text += d.Text
	case "thinking_delta":
		b.Thinking += d.Thinking
	case "signature_delta":
		b.Signature += d.Signature
	case "input_json_delta":
		if d.PartialJSON == nil || *d.PartialJSON == "" {
			return errors.New("empty input_json_delta")
		}
		b.Input += *d.PartialJSON
	}
	return nil
}

func (f *folder) messageDelta(w *wireEvent) error {
	switch {
	case f.delta:
		return errors.New("second message_delta")
	case f.open >= 0:
		return fmt.Errorf("message_delta while block %d is open", f.open)
	case w.Delta == nil || w.Delta.StopReason == nil || !stopReasons[*w.Delta.StopReason]:
		return errors.New("message_delta needs a known stop_reason")
	case w.Usage == nil || w.Usage.OutputTokens == nil:
		return errors.New("message_delta needs usage.output_tokens")
	}
	f.delta = true
	f.m.StopReason = *w.Delta.StopReason
	f.m.StopSequence = w.Delta.StopSequence
	f.m.OutputTokens = *w.Usage.OutputTokens
	if w.Usage.InputTokens != nil {
		f.m.InputTokens = *w.Usage.InputTokens
	}
	return nil
}
