package ollama

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// Meta identifies one answer to an Ollama client: the model name it asked for
// and the creation time written as created_at (RFC 3339).
type Meta struct {
	Model     string
	CreatedAt string
}

// EncodeResponse writes a non-streamed /api/chat answer.
func EncodeResponse(resp *canonical.Response, meta Meta) ([]byte, error) {
	w := ChatResponse{Model: meta.Model, CreatedAt: meta.CreatedAt, Done: true, DoneReason: "stop",
		Message: Message{Role: string(canonical.RoleAssistant)}}
	if len(resp.Choices) > 0 {
		ch := &resp.Choices[0]
		w.Message.Content = ch.Message.Text()
		w.Message.Thinking = ch.Message.Reasoning
		for i, tc := range ch.Message.ToolCalls {
			w.Message.ToolCalls = append(w.Message.ToolCalls, ToolCall{ID: tc.ID, Function: ToolCallFunction{
				Index: i, Name: tc.Name, Arguments: argumentsObject(tc.Arguments),
			}})
		}
		w.DoneReason = doneReason(ch.FinishReason)
	}
	if resp.Usage != nil {
		w.PromptEvalCount, w.EvalCount = resp.Usage.Prompt, resp.Usage.Completion
	}
	return json.Marshal(&w)
}

// doneReason maps a finish reason to Ollama's done_reason; Ollama says "stop"
// after tool calls too.
func doneReason(f canonical.FinishReason) string {
	if f == canonical.FinishLength {
		return "length"
	}
	return "stop"
}

// ChunkEncoder writes canonical chunks as /api/chat NDJSON lines. Text and
// thinking go out as they come; tool-call fragments are buffered and written
// as whole calls in one line before the done line, since Ollama clients read
// each call whole. Only the first choice is written (Ollama has no n).
// A ChunkEncoder is for one stream and is not safe for concurrent use.
type ChunkEncoder struct {
	meta   Meta
	calls  []pendingCall
	finish canonical.FinishReason
	usage  canonical.Usage
}

type pendingCall struct {
	index int
	id    string
	name  string
	args  []byte
}

// NewChunkEncoder returns an encoder for one stream.
func NewChunkEncoder(meta Meta) *ChunkEncoder { return &ChunkEncoder{meta: meta} }

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
	return e.appendLine(dst, ChatResponse{Message: Message{Content: c.Content, Thinking: c.Reasoning}})
}

// AppendEnd appends the buffered tool calls, if any, and the done line with the
// done reason and token counts.
func (e *ChunkEncoder) AppendEnd(dst []byte) []byte {
	if len(e.calls) > 0 {
		line := ChatResponse{}
		slices.SortFunc(e.calls, func(a, b pendingCall) int { return a.index - b.index })
		for i, p := range e.calls {
			line.Message.ToolCalls = append(line.Message.ToolCalls, ToolCall{ID: p.id, Function: ToolCallFunction{
				Index: i, Name: p.name, Arguments: argumentsObject(string(p.args)),
			}})
		}
		dst = e.appendLine(dst, line)
		e.calls = e.calls[:0]
	}
	return e.appendLine(dst, ChatResponse{Done: true, DoneReason: doneReason(e.finish),
		PromptEvalCount: e.usage.Prompt, EvalCount: e.usage.Completion})
}

func (e *ChunkEncoder) appendLine(dst []byte, line ChatResponse) []byte {
	line.Model = e.meta.Model
	line.CreatedAt = e.meta.CreatedAt
	line.Message.Role = string(canonical.RoleAssistant)
	b, err := json.Marshal(&line)
	if err != nil {
		// Every field is a plain string, number or validated JSON object.
		return dst
	}
	dst = append(dst, b...)
	return append(dst, '\n')
}

// FormatTime formats a creation time the way Ollama writes created_at.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// statuses maps error kinds to HTTP statuses for Ollama clients.
var statuses = map[canonical.ErrorKind]int{
	canonical.KindInvalidRequest: http.StatusBadRequest,
	canonical.KindAuthentication: http.StatusUnauthorized,
	canonical.KindPermission:     http.StatusForbidden,
	canonical.KindNotFound:       http.StatusNotFound,
	canonical.KindTooLarge:       http.StatusRequestEntityTooLarge,
	canonical.KindUnprocessable:  http.StatusUnprocessableEntity,
	canonical.KindRateLimited:    http.StatusTooManyRequests,
	canonical.KindQuotaExhausted: http.StatusTooManyRequests,
	canonical.KindUnavailable:    http.StatusServiceUnavailable,
	canonical.KindBackend:        http.StatusBadGateway,
	canonical.KindCancelled:      499,
	canonical.KindInternal:       http.StatusInternalServerError,
}

// EncodeError writes Ollama's error body {"error": "…"} with its status.
func EncodeError(err *canonical.Error) (int, []byte) {
	status, ok := statuses[err.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	if err.Status != 0 {
		status = err.Status
	}
	b, _ := json.Marshal(ErrorResponse{Error: err.Message})
	return status, b
}

// AppendStreamError appends the {"error": "…"} line that ends a failed stream.
func AppendStreamError(dst []byte, err *canonical.Error) []byte {
	_, b := EncodeError(err)
	dst = append(dst, b...)
	return append(dst, '\n')
}
