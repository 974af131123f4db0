package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// ResponsesRequest is the body of POST /v1/responses (OpenAI Responses API).
type ResponsesRequest struct {
	Model string `json:"model"`
	// Input is a string (one user message) or an array of items.
	Input              json.RawMessage   `json:"input"`
	Instructions       *string           `json:"instructions,omitempty"`
	PreviousResponseID string            `json:"previous_response_id,omitempty"`
	Conversation       json.RawMessage   `json:"conversation,omitempty"`
	Store              *bool             `json:"store,omitempty"`
	Stream             bool              `json:"stream,omitempty"`
	Background         bool              `json:"background,omitempty"`
	Tools              []ResponsesTool   `json:"tools,omitempty"`
	ToolChoice         json.RawMessage   `json:"tool_choice,omitempty"`
	ParallelToolCalls  *bool             `json:"parallel_tool_calls,omitempty"`
	Text               *ResponsesText    `json:"text,omitempty"`
	Reasoning          *ResponsesReason  `json:"reasoning,omitempty"`
	MaxOutputTokens    *int64            `json:"max_output_tokens,omitempty"`
	Temperature        *float64          `json:"temperature,omitempty"`
	TopP               *float64          `json:"top_p,omitempty"`
	User               string            `json:"user,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	Truncation         string            `json:"truncation,omitempty"`
}

// ResponsesTool is one entry of "tools"; only type "function" is run.
type ResponsesTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ResponsesText is the "text" configuration: the output format.
type ResponsesText struct {
	Format *ResponsesFormat `json:"format,omitempty"`
}

// ResponsesFormat is text.format: text, json_object or json_schema (flat).
type ResponsesFormat struct {
	Type        string          `json:"type"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ResponsesReason is the "reasoning" configuration.
type ResponsesReason struct {
	Effort  string `json:"effort,omitempty"`
	Summary string `json:"summary,omitempty"`
	// GenerateSummary is the deprecated name of Summary.
	GenerateSummary string `json:"generate_summary,omitempty"`
}

// Item is one input or output item of the Responses API, in the union shape
// the API uses for both (message, function_call, function_call_output,
// reasoning).
type Item struct {
	ID     string `json:"id,omitempty"`
	Type   string `json:"type,omitempty"`
	Status string `json:"status,omitempty"`
	// message
	Role    string          `json:"role,omitempty"`
	Content json.RawMessage `json:"content,omitempty"`
	// function_call and function_call_output
	CallID    string          `json:"call_id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Arguments *string         `json:"arguments,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"`
	// reasoning
	Summary json.RawMessage `json:"summary,omitempty"`
}

// ItemPart is one part of a message item's content or of a reasoning item's
// summary or content.
type ItemPart struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	ImageURL string `json:"image_url,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Responses is a decoded Responses request: the canonical request without
// its conversation (see Messages) and what the answer echoes.
type Responses struct {
	Wire *ResponsesRequest
	// Items are the request's own input items (a string input becomes one
	// user message item).
	Items []json.RawMessage
	// Summary is true when reasoning summaries were asked for.
	Summary bool
	// Chat is the canonical request with every field but Messages set.
	Chat *canonical.Request
}

// MaxInputItems bounds the items of one request.
const MaxInputItems = 10000

// DecodeResponsesRequest parses and validates a Responses request body.
func DecodeResponsesRequest(body []byte) (*Responses, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, canonical.Invalid("", "request body is empty; send a JSON object")
	}
	var w ResponsesRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, canonical.DecodeError(err)
	}
	if strings.TrimSpace(w.Model) == "" {
		return nil, canonical.Invalid("model", "you must provide a model parameter")
	}
	if w.Background {
		return nil, canonical.Invalid("background", "background responses are not supported; send background false")
	}
	if len(nullToNil(w.Conversation)) > 0 {
		return nil, canonical.Invalid("conversation", "conversations are not supported; continue with previous_response_id")
	}
	if w.Truncation != "" && w.Truncation != "disabled" && w.Truncation != "auto" {
		return nil, canonical.Invalid("truncation", `truncation must be "auto" or "disabled"`)
	}
	items, err := inputItems(w.Input)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 && w.PreviousResponseID == "" {
		return nil, canonical.Invalid("input", "input must be a non-empty string or array of items")
	}
	r := &Responses{Wire: &w, Items: items}
	if r.Chat, err = w.chat(); err != nil {
		return nil, err
	}
	if w.Reasoning != nil {
		s := w.Reasoning.Summary
		if s == "" {
			s = w.Reasoning.GenerateSummary
		}
		switch s {
		case "", "none":
		case "auto", "concise", "detailed":
			r.Summary = true
		default:
			return nil, canonical.Invalid("reasoning.summary", `reasoning.summary must be "auto", "concise" or "detailed"`)
		}
	}
	// Every item must convert; Messages converts them again with the history.
	if _, err := ItemsToMessages(items, "input"); err != nil {
		return nil, err
	}
	return r, nil
}

// inputItems normalises "input": a string becomes one user message item.
func inputItems(raw json.RawMessage) ([]json.RawMessage, error) {
	raw = nullToNil(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		b, _ := json.Marshal(Item{Type: "message", Role: "user", Content: mustJSON(s)})
		return []json.RawMessage{b}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, canonical.Invalid("input", "input must be a string or an array of items")
	}
	if len(items) > MaxInputItems {
		return nil, canonical.Invalid("input", fmt.Sprintf("input has more than %d items", MaxInputItems))
	}
	return items, nil
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// chat converts everything but the conversation.
func (w *ResponsesRequest) chat() (*canonical.Request, error) {
	req := &canonical.Request{
		Model: w.Model, ParallelToolCalls: w.ParallelToolCalls, Stream: w.Stream, IncludeUsage: w.Stream, User: w.User,
	}
	req.Sampling.Temperature, req.Sampling.TopP = w.Temperature, w.TopP
	if w.Temperature != nil && (*w.Temperature < 0 || *w.Temperature > 2) {
		return nil, canonical.Invalid("temperature", "temperature must be between 0 and 2")
	}
	if w.TopP != nil && (*w.TopP < 0 || *w.TopP > 1) {
		return nil, canonical.Invalid("top_p", "top_p must be between 0 and 1")
	}
	if w.MaxOutputTokens != nil {
		if *w.MaxOutputTokens < 1 {
			return nil, canonical.Invalid("max_output_tokens", "max_output_tokens must be at least 1")
		}
		req.Sampling.MaxTokens = *w.MaxOutputTokens
	}
	for i, t := range w.Tools {
		param := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" {
			return nil, canonical.Invalid(param+".type", fmt.Sprintf("unsupported tool type %q; only \"function\" tools are supported", t.Type))
		}
		if t.Name == "" {
			return nil, canonical.Invalid(param+".name", "a function tool needs a name")
		}
		req.Tools = append(req.Tools, canonical.Tool{Name: t.Name, Description: t.Description, Parameters: nullToNil(t.Parameters), Strict: t.Strict})
	}
	var err error
	if req.ToolChoice, err = responsesToolChoice(w.ToolChoice); err != nil {
		return nil, err
	}
	if w.Text != nil && w.Text.Format != nil {
		f := w.Text.Format
		var rf *ResponseFormat
		switch f.Type {
		case "json_schema":
			if len(nullToNil(f.Schema)) == 0 {
				return nil, canonical.Invalid("text.format.schema", "a json_schema format needs a schema")
			}
			rf = &ResponseFormat{Type: f.Type, JSONSchema: &JSONSchema{Name: f.Name, Description: f.Description, Schema: f.Schema, Strict: f.Strict}}
		default:
			rf = &ResponseFormat{Type: f.Type}
		}
		if req.ResponseFormat, err = decodeResponseFormat(rf); err != nil {
			return nil, canonical.Invalid("text.format.type", `text.format.type must be "text", "json_object" or "json_schema"`)
		}
	}
	if w.Reasoning != nil && w.Reasoning.Effort != "" {
		cw := ChatRequest{ReasoningEffort: w.Reasoning.Effort}
		if req.Think, err = cw.thinking(); err != nil {
			return nil, canonical.Invalid("reasoning.effort", `reasoning.effort must be "none", "minimal", "low", "medium", "high" or "xhigh"`)
		}
	}
	return req, nil
}

// responsesToolChoice reads tool_choice: a mode, or {"type":"function","name":…}.
func responsesToolChoice(raw json.RawMessage) (*canonical.ToolChoice, error) {
	raw = nullToNil(raw)
	if len(raw) == 0 || raw[0] == '"' {
		return decodeToolChoice(raw)
	}
	var obj struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Type != "function" || obj.Name == "" {
		return nil, canonical.Invalid("tool_choice", `tool_choice must be "none", "auto", "required" or {"type":"function","name":…}`)
	}
	return &canonical.ToolChoice{Mode: canonical.ToolChoiceFunction, Name: obj.Name}, nil
}

// ItemsToMessages converts input items (and stored output items, which have
// the same shapes) to canonical messages. A reasoning item's text goes with
// the assistant turn that follows it; function calls join the assistant
// message before them.
func ItemsToMessages(items []json.RawMessage, param string) ([]canonical.Message, error) {
	var out []canonical.Message
	reasoning := ""
	for i, raw := range items {
		p := fmt.Sprintf("%s[%d]", param, i)
		var it Item
		if err := json.Unmarshal(raw, &it); err != nil {
			return nil, canonical.Invalid(p, "an input item must be an object")
		}
		switch it.Type {
		case "message", "":
			m, err := itemMessage(p, &it)
			if err != nil {
				return nil, err
			}
			if m.Role == canonical.RoleAssistant {
				m.Reasoning, reasoning = reasoning, ""
			}
			out = append(out, m)
		case "function_call":
			if it.Name == "" || it.CallID == "" {
				return nil, canonical.Invalid(p, "a function_call item needs call_id and name")
			}
			args := "{}"
			if it.Arguments != nil && *it.Arguments != "" {
				args = *it.Arguments
			}
			tc := canonical.ToolCall{ID: it.CallID, Name: it.Name, Arguments: args}
			if n := len(out); n > 0 && out[n-1].Role == canonical.RoleAssistant {
				out[n-1].ToolCalls = append(out[n-1].ToolCalls, tc)
				continue
			}
			out = append(out, canonical.Message{Role: canonical.RoleAssistant, Reasoning: reasoning, ToolCalls: []canonical.ToolCall{tc}})
			reasoning = ""
		case "function_call_output":
			if it.CallID == "" {
				return nil, canonical.Invalid(p+".call_id", "a function_call_output item needs call_id")
			}
			text, err := outputText(it.Output)
			if err != nil {
				return nil, canonical.Invalid(p+".output", err.Error())
			}
			out = append(out, canonical.Message{Role: canonical.RoleTool, ToolCallID: it.CallID, Content: []canonical.Part{canonical.TextPart(text)}})
		case "reasoning":
			reasoning += reasoningText(&it)
		case "item_reference":
			return nil, canonical.Invalid(p+".type", "item_reference items are not supported; use previous_response_id")
		default:
			return nil, canonical.Invalid(p+".type", fmt.Sprintf("unsupported input item type %q", it.Type))
		}
	}
	return out, nil
}

func itemMessage(p string, it *Item) (canonical.Message, error) {
	var m canonical.Message
	switch it.Role {
	case "user":
		m.Role = canonical.RoleUser
	case "assistant":
		m.Role = canonical.RoleAssistant
	case "system", "developer":
		m.Role = canonical.RoleSystem
	default:
		return m, canonical.Invalid(p+".role", `role must be "user", "assistant", "system" or "developer"`)
	}
	var s string
	if json.Unmarshal(it.Content, &s) == nil {
		m.Content = []canonical.Part{canonical.TextPart(s)}
		return m, nil
	}
	var parts []ItemPart
	if err := json.Unmarshal(it.Content, &parts); err != nil {
		return m, canonical.Invalid(p+".content", "content must be a string or an array of parts")
	}
	for j, part := range parts {
		pp := fmt.Sprintf("%s.content[%d]", p, j)
		switch part.Type {
		case "input_text", "output_text", "text", "refusal":
			m.Content = append(m.Content, canonical.TextPart(part.Text))
		case "input_image":
			img, err := decodeImage(pp+".image_url", &ImageURL{URL: part.ImageURL, Detail: part.Detail})
			if err != nil {
				return m, err
			}
			m.Content = append(m.Content, canonical.Part{Type: canonical.PartImage, Image: img})
		default:
			return m, canonical.Invalid(pp+".type", fmt.Sprintf("unsupported content part type %q", part.Type))
		}
	}
	return m, nil
}

// outputText reads a function_call_output's output: a string or text parts.
func outputText(raw json.RawMessage) (string, error) {
	raw = nullToNil(raw)
	if len(raw) == 0 {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []ItemPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("output must be a string or an array of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

func reasoningText(it *Item) string {
	var parts []ItemPart
	if json.Unmarshal(it.Content, &parts) != nil || len(parts) == 0 {
		_ = json.Unmarshal(it.Summary, &parts)
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}
