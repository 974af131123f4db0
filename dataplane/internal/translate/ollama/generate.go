package ollama

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// GenerateRequest is the body of POST /api/generate (Ollama 0.17).
type GenerateRequest struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
	// Suffix, Template and Context are accepted and ignored: the gateway
	// speaks chat to every engine (see DecodeGenerate).
	Suffix   string          `json:"suffix,omitempty"`
	System   string          `json:"system,omitempty"`
	Template string          `json:"template,omitempty"`
	Context  json.RawMessage `json:"context,omitempty"`
	// Stream defaults to true when absent.
	Stream    *bool           `json:"stream,omitempty"`
	Raw       bool            `json:"raw,omitempty"`
	Format    json.RawMessage `json:"format,omitempty"`
	KeepAlive json.RawMessage `json:"keep_alive,omitempty"`
	// Images are base64-encoded images.
	Images  []string        `json:"images,omitempty"`
	Options map[string]any  `json:"options,omitempty"`
	Think   json.RawMessage `json:"think,omitempty"`
}

// GenerateResponse is a non-streamed /api/generate answer or one NDJSON line
// of its stream.
type GenerateResponse struct {
	Model      string `json:"model"`
	CreatedAt  string `json:"created_at"`
	Response   string `json:"response"`
	Thinking   string `json:"thinking,omitempty"`
	Done       bool   `json:"done"`
	DoneReason string `json:"done_reason,omitempty"`
	// Context (the prompt and answer as token ids) is never written: the
	// gateway has no tokenizer of the engine's model.
	Context            []int      `json:"context,omitempty"`
	TotalDuration      int64      `json:"total_duration,omitempty"`
	LoadDuration       int64      `json:"load_duration,omitempty"`
	PromptEvalCount    int64      `json:"prompt_eval_count,omitempty"`
	PromptEvalDuration int64      `json:"prompt_eval_duration,omitempty"`
	EvalCount          int64      `json:"eval_count,omitempty"`
	EvalDuration       int64      `json:"eval_duration,omitempty"`
	ToolCalls          []ToolCall `json:"tool_calls,omitempty"`
}

// Load is what a request that generates nothing asks for: Ollama clients
// send /api/chat without messages, or /api/generate without a prompt, to
// load a model, and add keep_alive 0 to unload it.
type Load struct {
	Model string
	// Unload is true when keep_alive was 0.
	Unload bool
}

// DoneReason is the done_reason Ollama answers a Load with.
func (l *Load) DoneReason() string {
	if l.Unload {
		return "unload"
	}
	return "load"
}

// DecodeGenerate parses a client's POST /api/generate body into a chat: the
// system text (when given) as a system message, then the prompt and images
// as a user message. The engine applies the model's chat template, as Ollama
// does for generate unless raw is set; raw prompts go the same way (no
// engine API takes a raw prompt for a chat model). suffix, template and
// context are ignored. Stream defaults to true. A body without a prompt
// returns a Load and no request.
func DecodeGenerate(body []byte) (*canonical.Request, *Load, error) {
	var w GenerateRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, nil, canonical.DecodeError(err)
	}
	if strings.TrimSpace(w.Model) == "" {
		return nil, nil, canonical.Invalid("model", "model is required")
	}
	if w.Raw && (w.Template != "" || w.System != "" || hasContext(w.Context)) {
		return nil, nil, canonical.Invalid("raw", "raw mode does not support template, system, or context")
	}
	if w.Prompt == "" {
		return nil, &Load{Model: w.Model, Unload: keepAliveZero(w.KeepAlive)}, nil
	}
	req := &canonical.Request{Model: w.Model, Stream: w.Stream == nil || *w.Stream, IncludeUsage: true}
	if w.System != "" {
		req.Messages = append(req.Messages, canonical.Message{Role: canonical.RoleSystem,
			Content: []canonical.Part{canonical.TextPart(w.System)}})
	}
	user := canonical.Message{Role: canonical.RoleUser, Content: []canonical.Part{canonical.TextPart(w.Prompt)}}
	images, err := decodeImages("images", w.Images)
	if err != nil {
		return nil, nil, err
	}
	user.Content = append(user.Content, images...)
	req.Messages = append(req.Messages, user)
	if err := decodeControls(req, w.Format, w.Think, w.Options); err != nil {
		return nil, nil, err
	}
	return req, nil, nil
}

func hasContext(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null")) && !bytes.Equal(raw, []byte("[]"))
}

// keepAliveZero reports whether keep_alive asks to unload at once: the number
// 0 or a zero duration ("0", "0s", "0m").
func keepAliveZero(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return false
	}
	var n float64
	if json.Unmarshal(raw, &n) == nil {
		return n == 0
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f == 0
	}
	d, err := time.ParseDuration(s)
	return err == nil && d == 0
}
