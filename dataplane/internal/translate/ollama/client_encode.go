package ollama

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// Meta identifies one answer to an Ollama client: the model name it asked for,
// the creation time written as created_at (RFC 3339) and, for a whole answer,
// the timings of its done line.
type Meta struct {
	Model     string
	CreatedAt string
	// Timings are written on the done line of a whole answer; a stream's
	// encoder takes them from SetTimings instead.
	Timings Timings
}

// Timings are the durations Ollama reports on its done line (nanoseconds on
// the wire); zero ones are left out, as Ollama leaves them out. The gateway
// measures them itself: see the Ollama surface for what each one covers.
type Timings struct {
	Total      time.Duration
	Load       time.Duration
	PromptEval time.Duration
	Eval       time.Duration
}

// Shape is the kind of answer an Ollama client expects.
type Shape int

// The answer shapes.
const (
	// ShapeChat answers /api/chat: the text in message.content.
	ShapeChat Shape = iota
	// ShapeGenerate answers /api/generate: the text in response.
	ShapeGenerate
)

// answer is one line or one whole answer, before it takes its shape.
type answer struct {
	content, thinking string
	calls             []ToolCall
	done              bool
	doneReason        string
	usage             canonical.Usage
	timings           Timings
}

func (a *answer) marshal(meta Meta, shape Shape) ([]byte, error) {
	if shape == ShapeGenerate {
		w := GenerateResponse{Model: meta.Model, CreatedAt: meta.CreatedAt, Response: a.content, Thinking: a.thinking,
			ToolCalls: a.calls, Done: a.done, DoneReason: a.doneReason,
			PromptEvalCount: a.usage.Prompt, EvalCount: a.usage.Completion,
			TotalDuration: int64(a.timings.Total), LoadDuration: int64(a.timings.Load),
			PromptEvalDuration: int64(a.timings.PromptEval), EvalDuration: int64(a.timings.Eval)}
		return json.Marshal(&w)
	}
	w := ChatResponse{Model: meta.Model, CreatedAt: meta.CreatedAt,
		Message: Message{Role: string(canonical.RoleAssistant), Content: a.content, Thinking: a.thinking, ToolCalls: a.calls},
		Done:    a.done, DoneReason: a.doneReason,
		PromptEvalCount: a.usage.Prompt, EvalCount: a.usage.Completion,
		TotalDuration: int64(a.timings.Total), LoadDuration: int64(a.timings.Load),
		PromptEvalDuration: int64(a.timings.PromptEval), EvalDuration: int64(a.timings.Eval)}
	return json.Marshal(&w)
}

// EncodeResponse writes a non-streamed /api/chat answer.
func EncodeResponse(resp *canonical.Response, meta Meta) ([]byte, error) {
	return EncodeAnswer(resp, meta, ShapeChat)
}

// EncodeGenerateResponse writes a non-streamed /api/generate answer.
func EncodeGenerateResponse(resp *canonical.Response, meta Meta) ([]byte, error) {
	return EncodeAnswer(resp, meta, ShapeGenerate)
}

// EncodeAnswer writes a non-streamed answer in the given shape: the first
// choice (Ollama has no n), its tool calls whole with their arguments as
// objects, the done reason, the exact usage and meta's timings.
func EncodeAnswer(resp *canonical.Response, meta Meta, shape Shape) ([]byte, error) {
	a := answer{done: true, doneReason: "stop", timings: meta.Timings}
	if len(resp.Choices) > 0 {
		ch := &resp.Choices[0]
		a.content = ch.Message.Text()
		a.thinking = ch.Message.Reasoning
		for i, tc := range ch.Message.ToolCalls {
			a.calls = append(a.calls, ToolCall{ID: tc.ID, Function: ToolCallFunction{
				Index: i, Name: tc.Name, Arguments: argumentsObject(tc.Arguments),
			}})
		}
		a.doneReason = doneReason(ch.FinishReason)
	}
	if resp.Usage != nil {
		a.usage = *resp.Usage
	}
	return a.marshal(meta, shape)
}

// EncodeLoad writes the answer to a Load: done, with done_reason "load" or
// "unload" and nothing generated.
func EncodeLoad(load *Load, meta Meta, shape Shape) []byte {
	a := answer{done: true, doneReason: load.DoneReason()}
	b, err := a.marshal(meta, shape)
	if err != nil {
		// Only plain strings and numbers are marshalled.
		return nil
	}
	return b
}

// doneReason maps a finish reason to Ollama's done_reason; Ollama says "stop"
// after tool calls too.
func doneReason(f canonical.FinishReason) string {
	if f == canonical.FinishLength {
		return "length"
	}
	return "stop"
}

// ChunkEncoder writes canonical chunks as NDJSON lines of /api/chat or
// /api/generate. Text and thinking go out as they come; tool-call fragments
// are buffered and written as whole calls in one line before the done line,
// since Ollama clients read each call whole. Only the first choice is written
// (Ollama has no n). A ChunkEncoder is for one stream and is not safe for
// concurrent use.
type ChunkEncoder struct {
	meta    Meta
	shape   Shape
	calls   []pendingCall
	finish  canonical.FinishReason
	usage   canonical.Usage
	timings Timings
}

type pendingCall struct {
	index int
	id    string
	name  string
	args  []byte
}

// NewChunkEncoder returns an encoder of /api/chat lines for one stream.
func NewChunkEncoder(meta Meta) *ChunkEncoder { return &ChunkEncoder{meta: meta} }

// NewGenerateChunkEncoder returns an encoder of /api/generate lines for one
// stream: the text in "response", the thinking in "thinking".
func NewGenerateChunkEncoder(meta Meta) *ChunkEncoder {
	return &ChunkEncoder{meta: meta, shape: ShapeGenerate}
}

// SetTimings sets the durations AppendEnd writes on the done line.
func (e *ChunkEncoder) SetTimings(t Timings) { e.timings = t }

// AppendChunk appends the lines for c to dst (none when c only carries tool-call
// fragments, a finish reason or usage, which AppendEnd writes).
func (e *ChunkEncoder) AppendChunk(dst []byte, c *canonical.Chunk) []byte {
	if c.Usage != nil {
		e.usage = *c.Usage
	}
	if c.Choice != 0 {
		return dst
	}
	if c.FinishReason != "" {
		e.finish = c.FinishReason
	}
	for _, d := range c.ToolCalls {
		i := slices.IndexFunc(e.calls, func(p pendingCall) bool { return p.index == d.Index })
		if i < 0 {
			e.calls = append(e.calls, pendingCall{index: d.Index})
			i = len(e.calls) - 1
		}
		p := &e.calls[i]
		if d.ID != "" {
			p.id = d.ID
		}
		if d.Name != "" {
			p.name = d.Name
		}
		p.args = append(p.args, d.Arguments...)
	}
	if c.Content == "" && c.Reasoning == "" {
		return dst
	}
	return e.appendLine(dst, &answer{content: c.Content, thinking: c.Reasoning})
}

// AppendEnd appends the buffered tool calls, if any, and the done line with the
// done reason, the token counts and the timings.
func (e *ChunkEncoder) AppendEnd(dst []byte) []byte {
	if len(e.calls) > 0 {
		line := answer{}
		slices.SortFunc(e.calls, func(a, b pendingCall) int { return a.index - b.index })
		for i, p := range e.calls {
			line.calls = append(line.calls, ToolCall{ID: p.id, Function: ToolCallFunction{
				Index: i, Name: p.name, Arguments: argumentsObject(string(p.args)),
			}})
		}
		dst = e.appendLine(dst, &line)
		e.calls = e.calls[:0]
	}
	return e.appendLine(dst, &answer{done: true, doneReason: doneReason(e.finish), usage: e.usage, timings: e.timings})
}

func (e *ChunkEncoder) appendLine(dst []byte, a *answer) []byte {
	b, err := a.marshal(e.meta, e.shape)
	if err != nil {
		// Every field is a plain string, number or validated JSON object.
		return dst
	}
	dst = append(dst, b...)
	return append(dst, '\n')
}

// FormatTime formats a creation time the way Ollama writes created_at.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
