package anthropic

import (
	"bytes"
	"encoding/json"
	"reflect"

	"github.com/mindrouter/mindrouter/dataplane/internal/jsonw"
)

// MessagesRequest is the body of POST /v1/messages and, with MaxTokens
// optional, of POST /v1/messages/count_tokens. Fields the gateway cannot act
// on (container, mcp_servers, service_tier, context_management, …) are not
// declared and so are ignored.
type MessagesRequest struct {
	Model     string `json:"model"`
	MaxTokens *int64 `json:"max_tokens"`
	// System is a string or an array of text blocks.
	System        Content        `json:"system"`
	Messages      []Message      `json:"messages"`
	Tools         []Tool         `json:"tools"`
	ToolChoice    *ToolChoice    `json:"tool_choice"`
	StopSequences []string       `json:"stop_sequences"`
	Temperature   *float64       `json:"temperature"`
	TopP          *float64       `json:"top_p"`
	TopK          *int64         `json:"top_k"`
	Metadata      *Metadata      `json:"metadata"`
	Thinking      *ThinkingParam `json:"thinking"`
	OutputConfig  *OutputConfig  `json:"output_config"`
	// OutputFormat is the structured-outputs beta's name for output_config.format.
	OutputFormat *OutputFormat `json:"output_format"`
	Stream       bool          `json:"stream"`
}

// Message is one turn: role "user" or "assistant" and string or block content.
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// Content is a string, an array of content blocks, or absent (null).
type Content struct {
	// Text is the content when it is a string.
	Text string
	// Blocks is the content when it is an array.
	Blocks []ContentBlock
	// Kind says which form was used.
	Kind ContentKind
}

// ContentKind is the JSON form of a Content.
type ContentKind uint8

// The content forms.
const (
	ContentNull ContentKind = iota
	ContentString
	ContentBlocks
)

// UnmarshalJSON accepts a string, an array of blocks or null.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*c = Content{}
		return nil
	case b[0] == '"':
		text, err := jsonw.ReadString(b)
		*c = Content{Kind: ContentString, Text: text}
		return err
	case b[0] == '[':
		*c = Content{Kind: ContentBlocks}
		return json.Unmarshal(b, &c.Blocks)
	}
	return &json.UnmarshalTypeError{Value: jsonKind(b), Type: contentType}
}

// ContentBlock is one block of a message, of any type; which fields are used
// depends on Type.
type ContentBlock struct {
	Type string `json:"type"`
	// Text is set for "text".
	Text string `json:"text"`
	// Source is set for "image" and "document".
	Source *Source `json:"source"`
	// Title is a document's title.
	Title string `json:"title"`
	// ID, Name and Input are set for "tool_use".
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
	// ToolUseID, Content and IsError are set for "tool_result".
	ToolUseID string   `json:"tool_use_id"`
	Content   *Content `json:"content"`
	IsError   bool     `json:"is_error"`
	// Thinking and Signature are set for "thinking"; Data for "redacted_thinking".
	Thinking  string `json:"thinking"`
	Signature string `json:"signature"`
	Data      string `json:"data"`
}

// Source is an image's or a document's source: "base64" (MediaType, Data),
// "url" (URL), "text" (a document's MediaType and Data) or "content" (a
// document made of blocks).
type Source struct {
	Type      string   `json:"type"`
	MediaType string   `json:"media_type"`
	Data      string   `json:"data"`
	URL       string   `json:"url"`
	Content   *Content `json:"content"`
}

// Tool is a tool definition. Custom tools have no type (or "custom"); typed
// tools are Anthropic's server and client tools, which this gateway does not run.
type Tool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
	Strict      *bool           `json:"strict"`
}

// ToolChoice is {"type": "auto"|"any"|"tool"|"none", "name", "disable_parallel_tool_use"}.
type ToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name"`
	DisableParallelToolUse *bool  `json:"disable_parallel_tool_use"`
}

// Metadata is the request's metadata; only user_id is defined.
type Metadata struct {
	UserID string `json:"user_id"`
}

// ThinkingParam is {"type": "enabled", "budget_tokens": n}, {"type":
// "adaptive"} or {"type": "disabled"}.
type ThinkingParam struct {
	Type         string `json:"type"`
	BudgetTokens *int64 `json:"budget_tokens"`
}

// OutputConfig is output_config: the structured output format and the effort level.
type OutputConfig struct {
	Format *OutputFormat `json:"format"`
	Effort string        `json:"effort"`
}

// OutputFormat is {"type": "json_schema", "schema": {...}}.
type OutputFormat struct {
	Type   string          `json:"type"`
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
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

var contentType = reflect.TypeFor[Content]()
