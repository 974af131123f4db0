package openai

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// UpstreamOptions are what the dispatcher decides for one engine call.
type UpstreamOptions struct {
	// Model is the model name the engine knows.
	Model string
	// MaxTokens is the output limit to send; 0 sends none.
	MaxTokens int64
	// Stream asks for a stream; a streamed call always asks for the usage chunk.
	Stream bool
}

// EncodeUpstreamRequest writes the body of POST /v1/chat/completions for an
// OpenAI-compatible engine (vLLM): system messages first, images as data: URLs,
// json_object promoted to a json_schema (vLLM's guided decoding is reliable only
// with a schema), reasoning controls as chat_template_kwargs.enable_thinking
// (and .thinking) and reasoning_effort (a budget_tokens becomes a level), and stream_options.include_usage always on when streaming so
// that usage is exact whatever the client asked.
func EncodeUpstreamRequest(req *canonical.Request, opts UpstreamOptions) ([]byte, error) {
	w := upstreamRequest(req, opts)
	return appendChatRequest(make([]byte, 0, 256+requestTextLen(&w)), &w)
}

// upstreamRequest is the wire request EncodeUpstreamRequest writes.
func upstreamRequest(req *canonical.Request, opts UpstreamOptions) ChatRequest {
	msgs := req.SystemFirst()
	w := ChatRequest{
		Model:             opts.Model,
		Messages:          make([]ChatMessage, 0, len(msgs)),
		Temperature:       req.Sampling.Temperature,
		TopP:              req.Sampling.TopP,
		TopK:              req.Sampling.TopK,
		MinP:              req.Sampling.MinP,
		PresencePenalty:   req.Sampling.PresencePenalty,
		FrequencyPenalty:  req.Sampling.FrequencyPenalty,
		RepetitionPenalty: req.Sampling.RepetitionPenalty,
		Seed:              req.Sampling.Seed,
		Stop:              req.Sampling.Stop,
		Stream:            opts.Stream,
		ParallelToolCalls: req.ParallelToolCalls,
		User:              req.User,
	}
	for i := range msgs {
		w.Messages = append(w.Messages, encodeMessage(&msgs[i]))
	}
	if opts.MaxTokens > 0 {
		w.MaxTokens = &opts.MaxTokens
	}
	if req.Sampling.N > 1 {
		w.N = &req.Sampling.N
	}
	if opts.Stream {
		w.StreamOptions = &StreamOptions{IncludeUsage: true}
	}
	for _, t := range req.Tools {
		w.Tools = append(w.Tools, Tool{Type: "function", Function: FunctionDef{
			Name: t.Name, Description: t.Description, Parameters: t.Parameters, Strict: t.Strict,
		}})
	}
	if len(req.Tools) > 0 && req.ToolChoice != nil {
		w.ToolChoice = encodeToolChoice(req.ToolChoice)
	}
	w.ResponseFormat = encodeResponseFormat(req.ResponseFormat)
	if t := req.Think; t != nil {
		// enable_thinking is Qwen3's (and most templates') switch, thinking
		// DeepSeek-V3.1's and Granite's; templates ignore keys they do not use.
		w.ChatTemplateKwargs = map[string]any{"enable_thinking": t.Enabled, "thinking": t.Enabled}
		if t.Enabled {
			w.ReasoningEffort = t.Effort
			if w.ReasoningEffort == "" && t.BudgetTokens > 0 {
				w.ReasoningEffort = canonical.EffortForBudget(t.BudgetTokens)
			}
		}
	}
	return w
}

// requestTextLen estimates the encoded length of w's messages, to size the
// buffer once.
func requestTextLen(w *ChatRequest) int {
	n := 0
	for i := range w.Messages {
		n += len(w.Messages[i].Content.Text) + 32
	}
	return n
}

func encodeMessage(m *canonical.Message) ChatMessage {
	w := ChatMessage{Role: string(m.Role), Name: m.Name, ToolCallID: m.ToolCallID}
	switch {
	case m.HasImages():
		parts := make([]ContentPart, 0, len(m.Content))
		for _, p := range m.Content {
			if p.Type == canonical.PartImage {
				parts = append(parts, ContentPart{Type: "image_url", ImageURL: &ImageURL{URL: p.Image.DataURL(), Detail: p.Image.Detail}})
				continue
			}
			parts = append(parts, ContentPart{Type: "text", Text: p.Text})
		}
		w.Content = Content{Parts: parts, Kind: ContentParts}
	case len(m.Content) > 0 || len(m.ToolCalls) == 0:
		w.Content = StringContent(m.Text())
	}
	for _, tc := range m.ToolCalls {
		args := tc.Arguments
		if args == "" {
			args = "{}"
		}
		w.ToolCalls = append(w.ToolCalls, ToolCall{ID: tc.ID, Type: "function",
			Function: FunctionCall{Name: tc.Name, Arguments: Arguments(args)}})
	}
	return w
}

func encodeToolChoice(tc *canonical.ToolChoice) json.RawMessage {
	if tc.Mode == canonical.ToolChoiceFunction {
		b, _ := json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": tc.Name}})
		return b
	}
	return appendString(nil, string(tc.Mode))
}

func encodeResponseFormat(rf *canonical.ResponseFormat) *ResponseFormat {
	if rf == nil {
		return nil
	}
	switch rf.Type {
	case canonical.FormatJSONObject:
		return &ResponseFormat{Type: "json_schema", JSONSchema: &JSONSchema{
			Name: "json_response", Schema: json.RawMessage(`{"type":"object"}`),
		}}
	case canonical.FormatJSONSchema:
		name := rf.Name
		if name == "" {
			name = "response"
		}
		schema := rf.Schema
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		return &ResponseFormat{Type: "json_schema", JSONSchema: &JSONSchema{
			Name: name, Description: rf.Description, Schema: schema, Strict: rf.Strict,
		}}
	}
	return nil
}

// DecodeUpstreamResponse parses an engine's chat.completion.
func DecodeUpstreamResponse(body []byte) (*canonical.Response, error) {
	if resp, err := decodeUpstreamFast(body); err == nil {
		return resp, nil
	}
	return decodeUpstreamReflect(body)
}

// decodeUpstreamReflect is DecodeUpstreamResponse with encoding/json, for
// whatever the direct reader declines.
func decodeUpstreamReflect(body []byte) (*canonical.Response, error) {
	var w ChatCompletion
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode chat.completion: %w", err)
	}
	resp := &canonical.Response{Model: w.Model, Choices: make([]canonical.Choice, 0, len(w.Choices))}
	for _, ch := range w.Choices {
		m := ch.Message
		msg := canonical.Message{Role: canonical.RoleAssistant, Reasoning: m.ReasoningContent}
		if msg.Reasoning == "" {
			msg.Reasoning = m.Reasoning
		}
		if text := contentText(&m.Content); text != "" {
			msg.Content = []canonical.Part{canonical.TextPart(text)}
		}
		for _, tc := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, canonical.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: string(tc.Function.Arguments)})
		}
		c := canonical.Choice{Index: ch.Index, Message: msg}
		if ch.FinishReason != nil {
			c.FinishReason = canonical.FinishReason(*ch.FinishReason)
		}
		resp.Choices = append(resp.Choices, c)
	}
	if w.Usage != nil && (w.Usage.PromptTokens > 0 || w.Usage.CompletionTokens > 0) {
		resp.Usage = &canonical.Usage{Prompt: w.Usage.PromptTokens, Completion: w.Usage.CompletionTokens}
	}
	return resp, nil
}

func contentText(c *Content) string {
	switch c.Kind {
	case ContentString:
		return c.Text
	case ContentParts:
		var b strings.Builder
		for _, p := range c.Parts {
			b.WriteString(p.Text)
		}
		return b.String()
	}
	return ""
}

// ErrorMessage extracts the message from an engine's error body in any of the
// shapes OpenAI-compatible servers use, or returns the body itself (trimmed and
// shortened) when it is not one of them.
func ErrorMessage(body []byte) string {
	var e ErrorBody
	if json.Unmarshal(body, &e) == nil {
		switch {
		case e.Error != nil && e.Error.Message != "":
			return e.Error.Message
		case e.Message != "":
			return e.Message
		case len(e.Detail) > 0:
			var s string
			if json.Unmarshal(e.Detail, &s) == nil {
				return s
			}
			return string(e.Detail)
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 512 {
		s = s[:512]
	}
	return s
}
