package ollama

import "encoding/json"

// ChatRequest is the body of POST /api/chat (Ollama 0.17).
type ChatRequest struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	// Stream defaults to true when absent.
	Stream *bool `json:"stream,omitempty"`
	// Format is "json" or a JSON Schema object.
	Format    json.RawMessage `json:"format,omitempty"`
	KeepAlive json.RawMessage `json:"keep_alive,omitempty"`
	Tools     []Tool          `json:"tools,omitempty"`
	// Options are model options (temperature, num_ctx, num_predict, …).
	Options map[string]any `json:"options,omitempty"`
	// Think is a boolean or "low"/"medium"/"high".
	Think json.RawMessage `json:"think,omitempty"`
}

// Message is one chat message.
type Message struct {
	Role     string `json:"role"`
	Content  string `json:"content"`
	Thinking string `json:"thinking,omitempty"`
	// Images are base64-encoded images.
	Images     []string   `json:"images,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolName   string     `json:"tool_name,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// ToolCall is one whole tool call; Ollama never splits one across lines.
type ToolCall struct {
	ID       string           `json:"id,omitempty"`
	Function ToolCallFunction `json:"function"`
}

// ToolCallFunction is the function of a tool call; Arguments is a JSON object.
type ToolCallFunction struct {
	Index     int             `json:"index"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// Tool is a tool definition.
type Tool struct {
	Type     string       `json:"type"`
	Function ToolFunction `json:"function"`
}

// ToolFunction describes a callable function.
type ToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ChatResponse is a non-streamed answer or one NDJSON line of a stream. An
// engine failure inside a stream is a line with only Error set.
type ChatResponse struct {
	Model              string  `json:"model"`
	CreatedAt          string  `json:"created_at"`
	Message            Message `json:"message"`
	Done               bool    `json:"done"`
	DoneReason         string  `json:"done_reason,omitempty"`
	TotalDuration      int64   `json:"total_duration,omitempty"`
	LoadDuration       int64   `json:"load_duration,omitempty"`
	PromptEvalCount    int64   `json:"prompt_eval_count,omitempty"`
	PromptEvalDuration int64   `json:"prompt_eval_duration,omitempty"`
	EvalCount          int64   `json:"eval_count,omitempty"`
	EvalDuration       int64   `json:"eval_duration,omitempty"`
	Error              string  `json:"error,omitempty"`
}

// ErrorResponse is Ollama's error body, {"error": "…"}.
type ErrorResponse struct {
	Error string `json:"error"`
}
