package canonical

// FinishReason says why generation stopped.
type FinishReason string

// The finish reasons. The empty reason means "not finished" on a chunk.
const (
	FinishStop          FinishReason = "stop"
	FinishLength        FinishReason = "length"
	FinishToolCalls     FinishReason = "tool_calls"
	FinishContentFilter FinishReason = "content_filter"
)

// Usage is a token count for one request.
type Usage struct {
	Prompt     int64
	Completion int64
	// Estimated is true when the engine reported nothing and the data plane counted.
	Estimated bool
}

// Total is Prompt + Completion.
func (u Usage) Total() int64 { return u.Prompt + u.Completion }

// Choice is one complete answer.
type Choice struct {
	Index        int
	Message      Message
	FinishReason FinishReason
	// StopSequence is the client's stop sequence that ended the choice, when
	// the engine said which (vLLM's stop_reason); empty otherwise.
	StopSequence string
}

// Response is a complete (non-streamed) answer.
type Response struct {
	// Model is the model name the engine reported; surfaces usually answer with the
	// name the client asked for.
	Model   string
	Choices []Choice
	// Usage is nil when the engine reported none.
	Usage *Usage
}

// ToolCallDelta is one fragment of a streamed tool call. The first fragment of a
// call carries its Index, ID and Name; later ones carry the same Index and more
// Arguments text.
type ToolCallDelta struct {
	// Index numbers the calls of one choice from 0, stable across fragments.
	Index int
	ID    string
	Name  string
	// Arguments is the next piece of the arguments' JSON text.
	Arguments string
}

// Chunk is one streamed piece of an answer for one choice.
type Chunk struct {
	// Choice is the index of the choice the chunk belongs to.
	Choice int
	// Role is set on the first chunk of a choice when the engine said it.
	Role      Role
	Content   string
	Reasoning string
	ToolCalls []ToolCallDelta
	// FinishReason is set on the last chunk of a choice.
	FinishReason FinishReason
	// StopSequence is the client's stop sequence that ended the choice, set
	// with FinishReason when the engine said which; empty otherwise.
	StopSequence string
	// Usage is set on the chunk that reports the request's token counts (once,
	// at the end of the stream).
	Usage *Usage
}

// Empty reports whether the chunk carries nothing a client would see: no text,
// no tool call, no finish reason and no usage (e.g. a role-only opener).
func (c *Chunk) Empty() bool {
	return c.Content == "" && c.Reasoning == "" && len(c.ToolCalls) == 0 &&
		c.FinishReason == "" && c.Usage == nil
}
