package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// MaxChoices is the largest n a client may ask for.
const MaxChoices = 8

// DecodeChatRequest parses a POST /v1/chat/completions body into a canonical
// request. Every refusal is a *canonical.Error of KindInvalidRequest whose
// message names the offending field.
func DecodeChatRequest(body []byte) (*canonical.Request, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, canonical.Invalid("", "request body is empty; send a JSON object")
	}
	var w ChatRequest
	if readChatRequestFast(body, &w) != nil {
		w = ChatRequest{}
		if err := json.Unmarshal(body, &w); err != nil {
			return nil, canonical.DecodeError(err)
		}
	}
	return w.Canonical()
}

// Canonical validates the wire request and converts it.
func (w *ChatRequest) Canonical() (*canonical.Request, error) {
	if strings.TrimSpace(w.Model) == "" {
		return nil, canonical.Invalid("model", "you must provide a model parameter")
	}
	if len(w.Messages) == 0 {
		return nil, canonical.Invalid("messages", "messages must be a non-empty array")
	}
	req := &canonical.Request{
		Model:             w.Model,
		Messages:          make([]canonical.Message, 0, len(w.Messages)),
		ParallelToolCalls: w.ParallelToolCalls,
		Stream:            w.Stream,
		User:              w.User,
	}
	for i := range w.Messages {
		m, err := decodeMessage(i, &w.Messages[i])
		if err != nil {
			return nil, err
		}
		req.Messages = append(req.Messages, m)
	}
	if w.Stream && w.StreamOptions != nil {
		req.IncludeUsage = w.StreamOptions.IncludeUsage
	}
	var err error
	if req.Sampling, err = w.sampling(); err != nil {
		return nil, err
	}
	if req.Tools, err = decodeTools(w.Tools); err != nil {
		return nil, err
	}
	if req.ToolChoice, err = decodeToolChoice(w.ToolChoice); err != nil {
		return nil, err
	}
	if req.ResponseFormat, err = decodeResponseFormat(w.ResponseFormat); err != nil {
		return nil, err
	}
	if req.Think, err = w.thinking(); err != nil {
		return nil, err
	}
	return req, nil
}

func decodeMessage(i int, w *ChatMessage) (canonical.Message, error) {
	param := func(f string) string { return fmt.Sprintf("messages[%d].%s", i, f) }
	role := canonical.Role(w.Role)
	if w.Role == "developer" {
		role = canonical.RoleSystem
	}
	if !role.Valid() {
		if w.Role == "" {
			return canonical.Message{}, canonical.Invalid(param("role"), fmt.Sprintf("messages[%d] has no role", i))
		}
		return canonical.Message{}, canonical.Invalid(param("role"),
			fmt.Sprintf("messages[%d].role must be one of system, developer, user, assistant, tool; got %q", i, w.Role))
	}
	m := canonical.Message{Role: role, Name: w.Name, ToolCallID: w.ToolCallID, Reasoning: w.ReasoningContent}
	if m.Reasoning == "" {
		m.Reasoning = w.Reasoning
	}
	parts, err := decodeContent(param("content"), &w.Content)
	if err != nil {
		return canonical.Message{}, err
	}
	m.Content = parts
	switch role {
	case canonical.RoleUser, canonical.RoleSystem, canonical.RoleTool:
		if w.Content.Kind == ContentNull {
			return canonical.Message{}, canonical.Invalid(param("content"),
				fmt.Sprintf("messages[%d].content is required for role %q", i, w.Role))
		}
		if role != canonical.RoleUser && m.HasImages() {
			return canonical.Message{}, canonical.Invalid(param("content"),
				fmt.Sprintf("messages[%d]: images are only allowed in user messages", i))
		}
	}
	if len(w.ToolCalls) > 0 && role != canonical.RoleAssistant {
		return canonical.Message{}, canonical.Invalid(param("tool_calls"),
			fmt.Sprintf("messages[%d]: only assistant messages may carry tool_calls", i))
	}
	for j, tc := range w.ToolCalls {
		if tc.Type != "" && tc.Type != "function" {
			return canonical.Message{}, canonical.Invalid(fmt.Sprintf("messages[%d].tool_calls[%d].type", i, j),
				fmt.Sprintf("unsupported tool call type %q; only \"function\" is supported", tc.Type))
		}
		if tc.Function.Name == "" {
			return canonical.Message{}, canonical.Invalid(fmt.Sprintf("messages[%d].tool_calls[%d].function.name", i, j),
				"tool call function name is required")
		}
		m.ToolCalls = append(m.ToolCalls, canonical.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: string(tc.Function.Arguments)})
	}
	return m, nil
}

func decodeContent(param string, c *Content) ([]canonical.Part, error) {
	switch c.Kind {
	case ContentNull:
		return nil, nil
	case ContentString:
		if c.Text == "" {
			return nil, nil
		}
		return []canonical.Part{canonical.TextPart(c.Text)}, nil
	}
	parts := make([]canonical.Part, 0, len(c.Parts))
	for j, p := range c.Parts {
		pp := fmt.Sprintf("%s[%d]", param, j)
		switch p.Type {
		case "text", "input_text", "refusal":
			parts = append(parts, canonical.TextPart(p.Text))
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return nil, canonical.Invalid(pp+".image_url", "image_url part needs an image_url.url")
			}
			im, err := decodeImage(pp+".image_url.url", p.ImageURL)
			if err != nil {
				return nil, err
			}
			parts = append(parts, canonical.Part{Type: canonical.PartImage, Image: im})
		case "":
			return nil, canonical.Invalid(pp+".type", "content part has no type")
		default:
			return nil, canonical.Invalid(pp+".type",
				fmt.Sprintf("content part type %q is not supported; use \"text\" or \"image_url\"", p.Type))
		}
	}
	return parts, nil
}

// decodeImage reads a data: URL into inline data or keeps an http(s) URL,
// which the relay fetches (behind its SSRF guard) before dispatch.
func decodeImage(param string, u *ImageURL) (*canonical.Image, error) {
	url := strings.TrimSpace(u.URL)
	if strings.HasPrefix(url, "data:") {
		im, err := canonical.ParseDataURL(url)
		if err != nil {
			return nil, canonical.Invalid(param, err.Error())
		}
		im.Detail = u.Detail
		return im, nil
	}
	lower := strings.ToLower(url)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
		return nil, canonical.Invalid(param, "image URLs must be http(s) or base64 data: URLs")
	}
	return &canonical.Image{URL: url, Detail: u.Detail}, nil
}

func (w *ChatRequest) sampling() (canonical.Sampling, error) {
	s := canonical.Sampling{
		Temperature:       w.Temperature,
		TopP:              w.TopP,
		MinP:              w.MinP,
		PresencePenalty:   w.PresencePenalty,
		FrequencyPenalty:  w.FrequencyPenalty,
		RepetitionPenalty: w.RepetitionPenalty,
		Seed:              w.Seed,
		Stop:              w.Stop,
	}
	checks := []struct {
		v        *float64
		name     string
		min, max float64
	}{
		{w.Temperature, "temperature", 0, 2},
		{w.TopP, "top_p", 0, 1},
		{w.MinP, "min_p", 0, 1},
		{w.PresencePenalty, "presence_penalty", -2, 2},
		{w.FrequencyPenalty, "frequency_penalty", -2, 2},
	}
	for _, c := range checks {
		if c.v != nil && (*c.v < c.min || *c.v > c.max) {
			return s, canonical.Invalid(c.name, fmt.Sprintf("%s must be between %g and %g; got %g", c.name, c.min, c.max, *c.v))
		}
	}
	if w.RepetitionPenalty != nil && *w.RepetitionPenalty <= 0 {
		return s, canonical.Invalid("repetition_penalty", "repetition_penalty must be greater than 0")
	}
	if w.TopK != nil && *w.TopK > 0 {
		s.TopK = w.TopK
	} else if w.TopK != nil && *w.TopK < -1 {
		return s, canonical.Invalid("top_k", "top_k must be -1 (disabled) or a positive integer")
	}
	maxTokens, param := w.MaxTokens, "max_tokens"
	if w.MaxCompletionTokens != nil {
		maxTokens, param = w.MaxCompletionTokens, "max_completion_tokens"
	}
	if maxTokens != nil {
		if *maxTokens < 1 {
			return s, canonical.Invalid(param, param+" must be at least 1")
		}
		s.MaxTokens = *maxTokens
	}
	if w.N != nil {
		if *w.N < 1 || *w.N > MaxChoices {
			return s, canonical.Invalid("n", fmt.Sprintf("n must be between 1 and %d", MaxChoices))
		}
		s.N = *w.N
	}
	return s, nil
}

func decodeTools(tools []Tool) ([]canonical.Tool, error) {
	if len(tools) == 0 {
		return nil, nil
	}
	out := make([]canonical.Tool, 0, len(tools))
	for i, t := range tools {
		if t.Type != "function" {
			return nil, canonical.Invalid(fmt.Sprintf("tools[%d].type", i),
				fmt.Sprintf("unsupported tool type %q; only \"function\" is supported", t.Type))
		}
		if t.Function.Name == "" {
			return nil, canonical.Invalid(fmt.Sprintf("tools[%d].function.name", i), "tool function name is required")
		}
		out = append(out, canonical.Tool{
			Name:        t.Function.Name,
			Description: t.Function.Description,
			Parameters:  nullToNil(t.Function.Parameters),
			Strict:      t.Function.Strict,
		})
	}
	return out, nil
}

func decodeToolChoice(raw json.RawMessage) (*canonical.ToolChoice, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch m := canonical.ToolChoiceMode(mode); m {
		case canonical.ToolChoiceAuto, canonical.ToolChoiceNone, canonical.ToolChoiceRequired:
			return &canonical.ToolChoice{Mode: m}, nil
		}
		return nil, canonical.Invalid("tool_choice", fmt.Sprintf("tool_choice must be \"none\", \"auto\", \"required\" or a function; got %q", mode))
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Type != "function" || obj.Function.Name == "" {
		return nil, canonical.Invalid("tool_choice", `tool_choice object must be {"type":"function","function":{"name":…}}`)
	}
	return &canonical.ToolChoice{Mode: canonical.ToolChoiceFunction, Name: obj.Function.Name}, nil
}

func decodeResponseFormat(rf *ResponseFormat) (*canonical.ResponseFormat, error) {
	if rf == nil {
		return nil, nil
	}
	switch canonical.FormatType(rf.Type) {
	case canonical.FormatText, "":
		return nil, nil
	case canonical.FormatJSONObject:
		return &canonical.ResponseFormat{Type: canonical.FormatJSONObject}, nil
	case canonical.FormatJSONSchema:
		if rf.JSONSchema == nil {
			return nil, canonical.Invalid("response_format.json_schema", "response_format of type json_schema needs a json_schema object")
		}
		s := rf.JSONSchema
		return &canonical.ResponseFormat{
			Type: canonical.FormatJSONSchema, Name: s.Name, Description: s.Description,
			Schema: nullToNil(s.Schema), Strict: s.Strict,
		}, nil
	}
	return nil, canonical.Invalid("response_format.type",
		fmt.Sprintf("response_format.type must be \"text\", \"json_object\" or \"json_schema\"; got %q", rf.Type))
}

// thinking resolves the reasoning controls: "think" wins over "thinking", which
// wins over chat_template_kwargs.enable_thinking; reasoning_effort names a level.
func (w *ChatRequest) thinking() (*canonical.Thinking, error) {
	var t *canonical.Thinking
	if raw := bytes.TrimSpace(w.Think); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		var b bool
		var s string
		switch {
		case json.Unmarshal(raw, &b) == nil:
			t = &canonical.Thinking{Enabled: b}
		case json.Unmarshal(raw, &s) == nil && isEffort(s):
			t = &canonical.Thinking{Enabled: true, Effort: s}
		default:
			return nil, canonical.Invalid("think", `think must be true, false, "low", "medium" or "high"`)
		}
	}
	if t == nil && w.Thinking != nil {
		switch w.Thinking.Type {
		case "enabled", "adaptive":
			t = &canonical.Thinking{Enabled: true, BudgetTokens: max(w.Thinking.BudgetTokens, 0)}
		case "disabled":
			t = &canonical.Thinking{Enabled: false}
		default:
			return nil, canonical.Invalid("thinking.type", `thinking.type must be "enabled", "adaptive" or "disabled"`)
		}
	}
	if t == nil {
		if v, ok := w.ChatTemplateKwargs["enable_thinking"].(bool); ok {
			t = &canonical.Thinking{Enabled: v}
		}
	}
	if effort := w.ReasoningEffort; effort != "" {
		switch effort {
		case "none":
			if t == nil {
				t = &canonical.Thinking{Enabled: false}
			}
		case "minimal", "low", "medium", "high", "xhigh":
			level := map[string]string{"minimal": "low", "xhigh": "high"}[effort]
			if level == "" {
				level = effort
			}
			if t == nil {
				t = &canonical.Thinking{Enabled: true}
			}
			if t.Enabled && t.Effort == "" {
				t.Effort = level
			}
		default:
			return nil, canonical.Invalid("reasoning_effort", `reasoning_effort must be "none", "minimal", "low", "medium", "high" or "xhigh"`)
		}
	}
	return t, nil
}

func isEffort(s string) bool { return s == "low" || s == "medium" || s == "high" }

func nullToNil(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	return raw
}
