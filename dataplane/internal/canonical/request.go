package canonical

import (
	"encoding/json"
	"strings"
)

// Role is who wrote a message.
type Role string

// The roles a message may have. Dialects with other names (OpenAI "developer",
// Anthropic top-level "system") map onto these.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool {
	switch r {
	case RoleSystem, RoleUser, RoleAssistant, RoleTool:
		return true
	}
	return false
}

// PartType is the kind of one content part.
type PartType string

// The content part kinds.
const (
	PartText  PartType = "text"
	PartImage PartType = "image"
)

// Part is one piece of a message's content: text or an image.
type Part struct {
	Type PartType
	// Text is set for PartText.
	Text string
	// Image is set for PartImage.
	Image *Image
}

// TextPart returns a text part.
func TextPart(s string) Part { return Part{Type: PartText, Text: s} }

// Image is an image in a message, either inline (Data) or by reference (URL).
type Image struct {
	// URL is an http(s) address the client gave instead of inline data.
	URL string
	// MediaType is the MIME type of inline data, e.g. "image/png".
	MediaType string
	// Data is the base64 encoding of the image bytes (no "data:" prefix).
	Data string
	// Detail is OpenAI's detail hint ("auto", "low", "high"), if any.
	Detail string
}

// DataURL returns the image as a data: URL, or URL when the image is a reference.
func (im *Image) DataURL() string {
	if im.Data == "" {
		return im.URL
	}
	mt := im.MediaType
	if mt == "" {
		mt = "image/png"
	}
	return "data:" + mt + ";base64," + im.Data
}

// ToolCall is one call of a function the model made.
type ToolCall struct {
	ID   string
	Name string
	// Arguments is the JSON text of the arguments object.
	Arguments string
}

// Message is one turn of a conversation.
type Message struct {
	Role Role
	// Content is the message's text and images in order; empty for an assistant
	// message that only calls tools.
	Content []Part
	// Reasoning is the model's thinking text of an earlier assistant turn.
	Reasoning string
	// Name is the optional participant name.
	Name string
	// ToolCalls are the calls an assistant message made.
	ToolCalls []ToolCall
	// ToolCallID links a tool message to the call it answers.
	ToolCallID string
}

// Text returns the message's text parts joined by newlines, as vLLM's chat
// templates join them.
func (m *Message) Text() string {
	switch len(m.Content) {
	case 0:
		return ""
	case 1:
		return m.Content[0].Text
	}
	var b strings.Builder
	for _, p := range m.Content {
		if p.Type != PartText {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Text)
	}
	return b.String()
}

// HasImages reports whether the message carries an image.
func (m *Message) HasImages() bool {
	for _, p := range m.Content {
		if p.Type == PartImage {
			return true
		}
	}
	return false
}

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments, as JSON text; nil when absent.
	Parameters json.RawMessage
	// Strict asks for schema-exact arguments (OpenAI structured outputs), if set.
	Strict *bool
}

// ToolChoiceMode says how the model may use tools.
type ToolChoiceMode string

// The tool choice modes.
const (
	ToolChoiceAuto     ToolChoiceMode = "auto"
	ToolChoiceNone     ToolChoiceMode = "none"
	ToolChoiceRequired ToolChoiceMode = "required"
	// ToolChoiceFunction forces the function named in ToolChoice.Name.
	ToolChoiceFunction ToolChoiceMode = "function"
)

// ToolChoice is the client's tool choice.
type ToolChoice struct {
	Mode ToolChoiceMode
	// Name is the forced function for ToolChoiceFunction.
	Name string
}

// FormatType is the kind of output format the client asked for.
type FormatType string

// The response format kinds.
const (
	FormatText       FormatType = "text"
	FormatJSONObject FormatType = "json_object"
	FormatJSONSchema FormatType = "json_schema"
)

// ResponseFormat constrains the output.
type ResponseFormat struct {
	Type FormatType
	// Name, Description, Schema and Strict describe a FormatJSONSchema.
	Name        string
	Description string
	Schema      json.RawMessage
	Strict      *bool
}

// Thinking is the client's reasoning control.
type Thinking struct {
	// Enabled turns reasoning on or off.
	Enabled bool
	// Effort is "low", "medium" or "high" when the client named a level (which
	// implies Enabled); empty otherwise.
	Effort string
	// BudgetTokens is Anthropic's thinking.budget_tokens; 0 when not given.
	// Neither engine has a token budget for reasoning: engines map it to an
	// effort level when no Effort is set (see docs/api.md).
	BudgetTokens int64
}

// Sampling holds the generation parameters; nil pointers mean "engine default".
type Sampling struct {
	Temperature       *float64
	TopP              *float64
	TopK              *int64
	MinP              *float64
	PresencePenalty   *float64
	FrequencyPenalty  *float64
	RepetitionPenalty *float64
	Seed              *int64
	Stop              []string
	// MaxTokens is the output token limit; 0 means none given.
	MaxTokens int64
	// N is the number of choices; 0 and 1 both mean one.
	N int
}

// Request is one chat request, whichever dialect it came in.
type Request struct {
	// Model is the model name the client asked for.
	Model    string
	Messages []Message
	Tools    []Tool
	// ToolChoice is nil when the client gave none.
	ToolChoice *ToolChoice
	// ParallelToolCalls is nil when the client gave no preference.
	ParallelToolCalls *bool
	Sampling          Sampling
	// ResponseFormat is nil for free text.
	ResponseFormat *ResponseFormat
	// Think is nil when the client said nothing about reasoning.
	Think *Thinking
	// Stream asks for a streamed answer.
	Stream bool
	// IncludeUsage asks for a usage chunk at the end of a stream (OpenAI
	// stream_options.include_usage).
	IncludeUsage bool
	// User is the client's end-user tag, if any.
	User string
	// EngineOptions are extra engine-native options the client passed through
	// (e.g. Ollama "options" keys the canonical model does not name); nil when none.
	EngineOptions map[string]json.RawMessage
}

// HasImages reports whether any message carries an image.
func (r *Request) HasImages() bool {
	for i := range r.Messages {
		if r.Messages[i].HasImages() {
			return true
		}
	}
	return false
}

// SystemFirst returns the messages with every system message merged into one
// leading system message (texts joined by a blank line), the order of the others
// kept. Many chat templates accept a system message only at the start.
func (r *Request) SystemFirst() []Message {
	n := 0
	first := -1
	for i := range r.Messages {
		if r.Messages[i].Role == RoleSystem {
			n++
			if first < 0 {
				first = i
			}
		}
	}
	if n == 0 || (n == 1 && first == 0) {
		return r.Messages
	}
	texts := make([]string, 0, n)
	out := make([]Message, 1, len(r.Messages)-n+1)
	for i := range r.Messages {
		m := r.Messages[i]
		if m.Role == RoleSystem {
			texts = append(texts, m.Text())
			continue
		}
		out = append(out, m)
	}
	out[0] = Message{Role: RoleSystem, Content: []Part{TextPart(strings.Join(texts, "\n\n"))}}
	return out
}

// ToolName returns the function name of the call with the given id in an earlier
// assistant message, or "" when there is none.
func (r *Request) ToolName(callID string) string {
	if callID == "" {
		return ""
	}
	for i := range r.Messages {
		for _, tc := range r.Messages[i].ToolCalls {
			if tc.ID == callID {
				return tc.Name
			}
		}
	}
	return ""
}
