package ollama

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// DecodeChatRequest parses a client's POST /api/chat body. Stream defaults to
// true as in Ollama; option keys the canonical model does not name are kept in
// EngineOptions for Ollama engines. Tool calls without ids get call_<message>_<n>
// and tool results without tool_call_id are matched to the calls in order, so
// the history also works on OpenAI-compatible engines. A body without messages
// is refused; DecodeChat accepts it as a Load.
func DecodeChatRequest(body []byte) (*canonical.Request, error) {
	req, load, err := DecodeChat(body)
	if err != nil {
		return nil, err
	}
	if load != nil {
		return nil, canonical.Invalid("messages", "messages must be a non-empty array")
	}
	return req, nil
}

// DecodeChat parses a client's POST /api/chat body as DecodeChatRequest does,
// except that a body without messages, which Ollama clients send to load a
// model (or, with keep_alive 0, to unload it), returns a Load and no request.
func DecodeChat(body []byte) (*canonical.Request, *Load, error) {
	var w ChatRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, nil, canonical.DecodeError(err)
	}
	if strings.TrimSpace(w.Model) == "" {
		return nil, nil, canonical.Invalid("model", "model is required")
	}
	if len(w.Messages) == 0 {
		return nil, &Load{Model: w.Model, Unload: keepAliveZero(w.KeepAlive)}, nil
	}
	req, err := w.canonical()
	if err != nil {
		return nil, nil, err
	}
	return req, nil, nil
}

// canonical converts a decoded /api/chat body that has messages.
func (w *ChatRequest) canonical() (*canonical.Request, error) {
	req := &canonical.Request{Model: w.Model, Stream: w.Stream == nil || *w.Stream, IncludeUsage: true}
	var pending []string // ids of the latest assistant calls not yet answered
	for i, m := range w.Messages {
		role := canonical.Role(strings.ToLower(m.Role))
		if !role.Valid() {
			return nil, canonical.Invalid(fmt.Sprintf("messages[%d].role", i),
				fmt.Sprintf("messages[%d].role must be one of system, user, assistant, tool; got %q", i, m.Role))
		}
		cm := canonical.Message{Role: role, Reasoning: m.Thinking, ToolCallID: m.ToolCallID, Name: m.ToolName}
		if m.Content != "" {
			cm.Content = append(cm.Content, canonical.TextPart(m.Content))
		}
		images, err := decodeImages(fmt.Sprintf("messages[%d].images", i), m.Images)
		if err != nil {
			return nil, err
		}
		cm.Content = append(cm.Content, images...)
		if len(m.ToolCalls) > 0 {
			pending = pending[:0]
		}
		for j, tc := range m.ToolCalls {
			id := tc.ID
			if id == "" {
				id = "call_" + strconv.Itoa(i) + "_" + strconv.Itoa(j)
			}
			pending = append(pending, id)
			cm.ToolCalls = append(cm.ToolCalls, canonical.ToolCall{ID: id, Name: tc.Function.Name, Arguments: argumentsText(tc.Function.Arguments)})
		}
		if role == canonical.RoleTool && cm.ToolCallID == "" && len(pending) > 0 {
			cm.ToolCallID, pending = pending[0], pending[1:]
		}
		req.Messages = append(req.Messages, cm)
	}
	for i, t := range w.Tools {
		if t.Function.Name == "" {
			return nil, canonical.Invalid(fmt.Sprintf("tools[%d].function.name", i), "tool function name is required")
		}
		req.Tools = append(req.Tools, canonical.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
	if err := decodeControls(req, w.Format, w.Think, w.Options); err != nil {
		return nil, err
	}
	return req, nil
}

// decodeControls decodes the format, think and options fields /api/chat and
// /api/generate share.
func decodeControls(req *canonical.Request, format, think json.RawMessage, opts map[string]any) error {
	var err error
	if req.ResponseFormat, err = decodeFormat(format); err != nil {
		return err
	}
	if req.Think, err = decodeThink(think); err != nil {
		return err
	}
	return decodeOptions(opts, req)
}

// decodeImages turns base64 images into image parts; param names the field
// in refusals (an index is appended).
func decodeImages(param string, images []string) ([]canonical.Part, error) {
	var parts []canonical.Part
	for j, img := range images {
		data, err := base64.StdEncoding.DecodeString(img)
		if err != nil || len(data) == 0 {
			return nil, canonical.Invalid(fmt.Sprintf("%s[%d]", param, j), "images must be non-empty and base64-encoded")
		}
		parts = append(parts, canonical.Part{Type: canonical.PartImage,
			Image: &canonical.Image{Data: img, MediaType: http.DetectContentType(data)}})
	}
	return parts, nil
}

func decodeFormat(raw json.RawMessage) (*canonical.ResponseFormat, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) || bytes.Equal(raw, []byte(`""`)) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if strings.EqualFold(s, "json") {
			return &canonical.ResponseFormat{Type: canonical.FormatJSONObject}, nil
		}
		return nil, canonical.Invalid("format", `format must be "json" or a JSON Schema object`)
	}
	if raw[0] != '{' {
		return nil, canonical.Invalid("format", `format must be "json" or a JSON Schema object`)
	}
	return &canonical.ResponseFormat{Type: canonical.FormatJSONSchema, Name: "response", Schema: raw}, nil
}

func decodeThink(raw json.RawMessage) (*canonical.Thinking, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return &canonical.Thinking{Enabled: b}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && (s == "low" || s == "medium" || s == "high") {
		return &canonical.Thinking{Enabled: true, Effort: s}, nil
	}
	return nil, canonical.Invalid("think", `think must be true, false, "low", "medium" or "high"`)
}

// decodeOptions maps the options the canonical model names, drops the ones the
// gateway decides (num_ctx and the load-time runner options) and keeps the rest
// for Ollama engines.
func decodeOptions(opts map[string]any, req *canonical.Request) error {
	s := &req.Sampling
	for k, v := range opts {
		var err error
		switch k {
		case "temperature":
			s.Temperature, err = float(k, v)
		case "top_p":
			s.TopP, err = float(k, v)
		case "min_p":
			s.MinP, err = float(k, v)
		case "repeat_penalty":
			s.RepetitionPenalty, err = float(k, v)
		case "presence_penalty":
			s.PresencePenalty, err = float(k, v)
		case "frequency_penalty":
			s.FrequencyPenalty, err = float(k, v)
		case "top_k":
			s.TopK, err = integer(k, v)
		case "seed":
			s.Seed, err = integer(k, v)
		case "num_predict":
			var n *int64
			if n, err = integer(k, v); err == nil && *n > 0 {
				s.MaxTokens = *n
			}
		case "num_ctx":
			// The gateway sizes the context window from the catalog.
		case "num_batch", "num_gpu", "main_gpu", "use_mmap", "use_mlock", "num_thread", "low_vram", "f16_kv", "vocab_only", "numa":
			// Load-time (runner) options: a value other than the backend's
			// own would make Ollama reload the model for everyone; the
			// operator sets them on the backend.
		case "stop":
			s.Stop, err = strList(v)
		default:
			b, merr := json.Marshal(v)
			if merr != nil {
				return canonical.Invalid("options."+k, "option value is not JSON")
			}
			if req.EngineOptions == nil {
				req.EngineOptions = map[string]json.RawMessage{}
			}
			req.EngineOptions[k] = b
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func float(k string, v any) (*float64, error) {
	f, ok := v.(float64)
	if !ok {
		return nil, canonical.Invalid("options."+k, "options."+k+" must be a number")
	}
	return &f, nil
}

func integer(k string, v any) (*int64, error) {
	f, ok := v.(float64)
	if !ok || f != float64(int64(f)) {
		return nil, canonical.Invalid("options."+k, "options."+k+" must be an integer")
	}
	n := int64(f)
	return &n, nil
}

func strList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, canonical.Invalid("options.stop", "options.stop must be an array of strings")
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, canonical.Invalid("options.stop", "options.stop must be an array of strings")
		}
		out = append(out, s)
	}
	return out, nil
}
