package openai

import (
	"bytes"
	"encoding/json"
	"reflect"

	"github.com/mindrouter/mindrouter/dataplane/internal/jsonw"
)

// ChatRequest is the body of POST /v1/chat/completions, with the vLLM extras the
// data plane understands. Fields it deliberately ignores (logit_bias, logprobs,
// metadata, store, service_tier, …) are not declared and so are dropped.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []ChatMessage   `json:"messages"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	TopK                *int64          `json:"top_k,omitempty"`
	MinP                *float64        `json:"min_p,omitempty"`
	PresencePenalty     *float64        `json:"presence_penalty,omitempty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty,omitempty"`
	RepetitionPenalty   *float64        `json:"repetition_penalty,omitempty"`
	Seed                *int64          `json:"seed,omitempty"`
	Stop                StopList        `json:"stop,omitempty"`
	MaxTokens           *int64          `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens,omitempty"`
	N                   *int            `json:"n,omitempty"`
	Stream              bool            `json:"stream"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls,omitempty"`
	ResponseFormat      *ResponseFormat `json:"response_format,omitempty"`
	User                string          `json:"user,omitempty"`
	ReasoningEffort     string          `json:"reasoning_effort,omitempty"`
	// Think is MindRouter's (and Ollama's) switch: a boolean or "low"/"medium"/"high".
	Think json.RawMessage `json:"think,omitempty"`
	// Thinking is the Anthropic-style switch some clients send to OpenAI endpoints.
	Thinking           *ThinkingParam `json:"thinking,omitempty"`
	ChatTemplateKwargs map[string]any `json:"chat_template_kwargs,omitempty"`
}

// StreamOptions is stream_options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// ThinkingParam is {"type": "enabled"|"adaptive"|"disabled", "budget_tokens": n}.
type ThinkingParam struct {
	Type         string `json:"type"`
	BudgetTokens int64  `json:"budget_tokens,omitempty"`
}

// ChatMessage is one message of a request, or the message of a response.
type ChatMessage struct {
	Role       string     `json:"role"`
	Content    Content    `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	// ReasoningContent is the reasoning text (vLLM before the rename, DeepSeek, and
	// what this gateway sends to OpenAI clients).
	ReasoningContent string `json:"reasoning_content,omitempty"`
	// Reasoning is the reasoning text under vLLM's current name; read, never written.
	Reasoning string `json:"reasoning,omitempty"`
}

// Content is a message's content: a string, an array of parts, or null.
type Content struct {
	// Text is the content when it is a string.
	Text string
	// Parts is the content when it is an array.
	Parts []ContentPart
	// Kind says which form was used.
	Kind ContentKind
}

// ContentKind is the JSON form of a Content.
type ContentKind uint8

// The content forms.
const (
	ContentNull ContentKind = iota
	ContentString
	ContentParts
)

// StringContent returns string content.
func StringContent(s string) Content { return Content{Text: s, Kind: ContentString} }

// MarshalJSON writes the content in the form its Kind names.
func (c Content) MarshalJSON() ([]byte, error) {
	switch c.Kind {
	case ContentString:
		return appendString(nil, c.Text), nil
	case ContentParts:
		return json.Marshal(c.Parts)
	}
	return []byte("null"), nil
}

// UnmarshalJSON accepts a string, an array of parts or null.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*c = Content{}
		return nil
	case b[0] == '"':
		text, err := jsonw.ReadString(b)
		*c = Content{Text: text, Kind: ContentString}
		return err
	case b[0] == '[':
		c.Kind = ContentParts
		return json.Unmarshal(b, &c.Parts)
	}
	return &json.UnmarshalTypeError{Value: jsonKind(b), Type: contentType}
}

// ContentPart is one element of array content.
type ContentPart struct {
	Type     string
	Text     string
	ImageURL *ImageURL
}

type contentPartWire struct {
	Type     string    `json:"type"`
	Text     *string   `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
	Refusal  *string   `json:"refusal,omitempty"`
}

// MarshalJSON writes "text" only for text parts and "image_url" only for images.
func (p ContentPart) MarshalJSON() ([]byte, error) {
	w := contentPartWire{Type: p.Type, ImageURL: p.ImageURL}
	if p.Type == "text" {
		w.Text = &p.Text
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads a part; a "refusal" part's text lands in Text.
func (p *ContentPart) UnmarshalJSON(b []byte) error {
	var w contentPartWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = ContentPart{Type: w.Type, ImageURL: w.ImageURL}
	switch {
	case w.Text != nil:
		p.Text = *w.Text
	case w.Refusal != nil:
		p.Text = *w.Refusal
	}
	return nil
}

// ImageURL is an image_url part's payload. Some clients send the URL as a bare
// string; both forms are read.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// UnmarshalJSON accepts {"url": …, "detail": …} or a bare string.
func (u *ImageURL) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		url, err := jsonw.ReadString(b)
		*u = ImageURL{URL: url}
		return err
	}
	type plain ImageURL
	return json.Unmarshal(b, (*plain)(u))
}

// ToolCall is a tool call in a message or (with Index) a fragment of one in a
// streamed delta.
type ToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// FunctionCall is the function part of a tool call.
type FunctionCall struct {
	Name      string    `json:"name,omitempty"`
	Arguments Arguments `json:"arguments"`
}

// Arguments is the JSON text of a call's arguments. OpenAI sends it as a string;
// some clients send the object itself, which is read as its compact JSON text.
type Arguments string

// MarshalJSON writes the arguments as a JSON string.
func (a Arguments) MarshalJSON() ([]byte, error) { return appendString(nil, string(a)), nil }

// UnmarshalJSON accepts a string, an object or null.
func (a *Arguments) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*a = ""
		return nil
	case b[0] == '"':
		s, err := jsonw.ReadString(b)
		if err != nil {
			return err
		}
		*a = Arguments(s)
		return nil
	case b[0] == '{':
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return err
		}
		*a = Arguments(buf.String())
		return nil
	}
	return &json.UnmarshalTypeError{Value: jsonKind(b), Type: argumentsType}
}

// Tool is a tool definition.
type Tool struct {
	Type     string      `json:"type"`
	Function FunctionDef `json:"function"`
}

// FunctionDef describes a callable function.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ResponseFormat is response_format.
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema is response_format.json_schema.
type JSONSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// StopList is "stop": a string, an array of strings or null.
type StopList []string

// UnmarshalJSON accepts a string, an array of strings or null.
func (s *StopList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*s = nil
		return nil
	case b[0] == '"':
		one, err := jsonw.ReadString(b)
		if err != nil {
			return err
		}
		*s = StopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// Usage is the token usage object.
type Usage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// ChatCompletion is a complete chat.completion object.
type ChatCompletion struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []CompletionChoice `json:"choices"`
	Usage   *Usage             `json:"usage,omitempty"`
}

// CompletionChoice is one choice of a chat.completion.
type CompletionChoice struct {
	Index        int             `json:"index"`
	Message      ChatMessage     `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

// ChatCompletionChunk is one chat.completion.chunk as an engine sends it; an
// engine reports a failure inside a stream with Error set instead.
type ChatCompletionChunk struct {
	ID      string        `json:"id"`
	Model   string        `json:"model"`
	Choices []ChunkChoice `json:"choices"`
	Usage   *Usage        `json:"usage"`
	Error   *EngineError  `json:"error"`
	// Message, Type and Code are vLLM's older bare error shape ({"object":"error", …}).
	Object  string          `json:"object"`
	Message string          `json:"message"`
	Code    json.RawMessage `json:"code"`
}

// EngineError is an error object as OpenAI-compatible engines send it, in
// {"error": {...}} or (older vLLM) bare with "object": "error". Code may be a
// number or a string.
type EngineError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// ErrorBody is an engine's error answer in either shape.
type ErrorBody struct {
	Error   *EngineError `json:"error"`
	Object  string       `json:"object"`
	Message string       `json:"message"`
	Type    string       `json:"type"`
	// Detail is FastAPI's {"detail": …}, which some OpenAI-compatible servers send.
	Detail json.RawMessage `json:"detail"`
}

// ChunkChoice is one choice of a chunk.
type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// Delta is the incremental message of a chunk choice.
type Delta struct {
	Role             string     `json:"role"`
	Content          *string    `json:"content"`
	ReasoningContent *string    `json:"reasoning_content"`
	Reasoning        *string    `json:"reasoning"`
	ToolCalls        []ToolCall `json:"tool_calls"`
}

// jsonKind names the JSON type of b for error messages.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

var (
	contentType   = reflect.TypeFor[Content]()
	argumentsType = reflect.TypeFor[Arguments]()
)
