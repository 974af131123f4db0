package ollama

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// UpstreamOptions are what the dispatcher decides for one engine call.
type UpstreamOptions struct {
	// Model is the model name the engine knows.
	Model string
	// NumCtx is the context window to load the model with (options.num_ctx); 0
	// leaves Ollama's default, which is far smaller than most models' window.
	NumCtx int64
	// MaxTokens becomes options.num_predict; 0 sends none.
	MaxTokens int64
	// Stream is sent explicitly, since Ollama streams when it is absent.
	Stream bool
}

// EncodeUpstreamRequest writes the body of POST /api/chat for an Ollama engine.
// An image given by URL is refused (Ollama takes inline images only, and the
// gateway does not fetch URLs on a client's behalf).
func EncodeUpstreamRequest(req *canonical.Request, opts UpstreamOptions) ([]byte, error) {
	msgs := req.SystemFirst()
	stream := opts.Stream
	w := ChatRequest{
		Model:    opts.Model,
		Messages: make([]Message, 0, len(msgs)),
		Stream:   &stream,
		Options:  options(req, opts),
		Think:    encodeThink(req.Think),
		Format:   encodeFormat(req.ResponseFormat),
	}
	for i := range msgs {
		m, err := encodeMessage(req, i, &msgs[i])
		if err != nil {
			return nil, err
		}
		w.Messages = append(w.Messages, m)
	}
	if err := encodeTools(&w, req); err != nil {
		return nil, err
	}
	return json.Marshal(&w)
}

// ToolCallRequired reports whether the request's tool_choice demands a tool
// call ("required", Anthropic's "any", or a named function) and, for a named
// function, its name. Ollama has no tool_choice field, so the engine checks the
// answer itself.
func ToolCallRequired(req *canonical.Request) (required bool, name string) {
	tc := req.ToolChoice
	if tc == nil || len(req.Tools) == 0 {
		return false, ""
	}
	switch tc.Mode {
	case canonical.ToolChoiceRequired:
		return true, ""
	case canonical.ToolChoiceFunction:
		return true, tc.Name
	}
	return false, ""
}

// encodeTools writes the tools as tool_choice allows, since Ollama has no
// tool_choice of its own: "none" sends no tools, a named function sends only
// that tool, and "required" or a named function adds a system instruction that
// a tool call is required. The engine checks the answer (see ToolCallRequired).
func encodeTools(w *ChatRequest, req *canonical.Request) error {
	if req.ToolChoice != nil && req.ToolChoice.Mode == canonical.ToolChoiceNone {
		return nil
	}
	required, name := ToolCallRequired(req)
	for _, t := range req.Tools {
		if name != "" && t.Name != name {
			continue
		}
		w.Tools = append(w.Tools, Tool{Type: "function", Function: ToolFunction{
			Name: t.Name, Description: t.Description, Parameters: t.Parameters,
		}})
	}
	if name != "" && len(w.Tools) == 0 {
		return canonical.Invalid("tool_choice", fmt.Sprintf("tool_choice names the function %q, which is not in tools", name))
	}
	if required {
		addSystemInstruction(w, toolInstruction(name))
	}
	return nil
}

// toolInstruction is the system instruction for a required tool call.
func toolInstruction(name string) string {
	if name != "" {
		return "You must respond by calling the tool " + strconv.Quote(name) + ". Do not answer with text."
	}
	return "You must respond by calling one or more of the provided tools. Do not answer with text."
}

// addSystemInstruction appends text to the leading system message, or adds one
// (many chat templates read only the first system message).
func addSystemInstruction(w *ChatRequest, text string) {
	if len(w.Messages) > 0 && w.Messages[0].Role == string(canonical.RoleSystem) {
		if w.Messages[0].Content != "" {
			text = w.Messages[0].Content + "\n\n" + text
		}
		w.Messages[0].Content = text
		return
	}
	w.Messages = append([]Message{{Role: string(canonical.RoleSystem), Content: text}}, w.Messages...)
}

func encodeMessage(req *canonical.Request, i int, m *canonical.Message) (Message, error) {
	w := Message{Role: string(m.Role), Content: m.Text(), Thinking: m.Reasoning, ToolCallID: m.ToolCallID}
	for _, p := range m.Content {
		if p.Type != canonical.PartImage {
			continue
		}
		if p.Image.Data == "" {
			return Message{}, canonical.Invalid(fmt.Sprintf("messages[%d].content", i),
				"this model is served by Ollama, which takes inline images only: send the image as a base64 data: URL")
		}
		w.Images = append(w.Images, p.Image.Data)
	}
	if m.Role == canonical.RoleTool {
		w.ToolName = m.Name
		if w.ToolName == "" {
			w.ToolName = req.ToolName(m.ToolCallID)
		}
	}
	for j, tc := range m.ToolCalls {
		w.ToolCalls = append(w.ToolCalls, ToolCall{ID: tc.ID, Function: ToolCallFunction{
			Index: j, Name: tc.Name, Arguments: argumentsObject(tc.Arguments),
		}})
	}
	return w, nil
}

// argumentsObject turns OpenAI's argument text into the object Ollama wants;
// text that is not a JSON object becomes {} (Ollama rejects anything else).
func argumentsObject(s string) json.RawMessage {
	b := bytes.TrimSpace([]byte(s))
	if len(b) > 0 && b[0] == '{' && json.Valid(b) {
		return b
	}
	return json.RawMessage(`{}`)
}

func options(req *canonical.Request, opts UpstreamOptions) map[string]any {
	o := make(map[string]any, len(req.EngineOptions)+4)
	for k, v := range req.EngineOptions {
		o[k] = v
	}
	s := &req.Sampling
	setF := func(k string, v *float64) {
		if v != nil {
			o[k] = *v
		}
	}
	setF("temperature", s.Temperature)
	setF("top_p", s.TopP)
	setF("min_p", s.MinP)
	setF("repeat_penalty", s.RepetitionPenalty)
	setF("presence_penalty", s.PresencePenalty)
	setF("frequency_penalty", s.FrequencyPenalty)
	if s.TopK != nil {
		o["top_k"] = *s.TopK
	}
	if s.Seed != nil {
		o["seed"] = *s.Seed
	}
	if len(s.Stop) > 0 {
		o["stop"] = s.Stop
	}
	if opts.MaxTokens > 0 {
		o["num_predict"] = opts.MaxTokens
	}
	if opts.NumCtx > 0 {
		o["num_ctx"] = opts.NumCtx
	}
	if len(o) == 0 {
		return nil
	}
	return o
}

func encodeThink(t *canonical.Thinking) json.RawMessage {
	switch {
	case t == nil:
		return nil
	case t.Enabled && t.Effort != "":
		return json.RawMessage(strconv.Quote(t.Effort))
	case t.Enabled:
		return json.RawMessage("true")
	}
	return json.RawMessage("false")
}

func encodeFormat(rf *canonical.ResponseFormat) json.RawMessage {
	switch {
	case rf == nil:
		return nil
	case rf.Type == canonical.FormatJSONObject:
		return json.RawMessage(`"json"`)
	case rf.Type == canonical.FormatJSONSchema && len(rf.Schema) > 0:
		return rf.Schema
	case rf.Type == canonical.FormatJSONSchema:
		return json.RawMessage(`"json"`)
	}
	return nil
}

// DecodeUpstreamResponse parses a non-streamed /api/chat answer. idPrefix names
// tool calls that Ollama gave no id: idPrefix_0, idPrefix_1, ….
func DecodeUpstreamResponse(body []byte, idPrefix string) (*canonical.Response, error) {
	var w ChatResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("decode /api/chat answer: %w", err)
	}
	msg := canonical.Message{Role: canonical.RoleAssistant, Reasoning: w.Message.Thinking}
	if w.Message.Content != "" {
		msg.Content = []canonical.Part{canonical.TextPart(w.Message.Content)}
	}
	for i, tc := range w.Message.ToolCalls {
		msg.ToolCalls = append(msg.ToolCalls, canonical.ToolCall{
			ID: callID(tc.ID, idPrefix, i), Name: tc.Function.Name, Arguments: argumentsText(tc.Function.Arguments),
		})
	}
	return &canonical.Response{
		Model:   w.Model,
		Choices: []canonical.Choice{{Message: msg, FinishReason: finishReason(w.DoneReason, len(msg.ToolCalls) > 0)}},
		Usage:   usage(&w),
	}, nil
}

// finishReason maps Ollama's done_reason; a turn that called tools finished
// with tool_calls whatever Ollama says.
func finishReason(doneReason string, calledTools bool) canonical.FinishReason {
	switch {
	case calledTools:
		return canonical.FinishToolCalls
	case doneReason == "length":
		return canonical.FinishLength
	}
	return canonical.FinishStop
}

func usage(w *ChatResponse) *canonical.Usage {
	if w.PromptEvalCount == 0 && w.EvalCount == 0 {
		return nil
	}
	return &canonical.Usage{Prompt: w.PromptEvalCount, Completion: w.EvalCount}
}

func callID(id, prefix string, index int) string {
	if id != "" {
		return id
	}
	return prefix + "_" + strconv.Itoa(index)
}

// argumentsText turns Ollama's argument object into compact JSON text.
func argumentsText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "{}"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return "{}"
	}
	return buf.String()
}

// StreamError is an error line an engine sent inside a stream.
type StreamError struct {
	Message string
}

// Error describes the engine's failure.
func (e *StreamError) Error() string { return "engine stream error: " + e.Message }

// StreamDecoder turns the lines of an /api/chat stream into canonical chunks.
// Ollama sends each tool call whole; the decoder numbers them across the stream
// (index 0, 1, … however many lines they came in) and names those without an id
// IDPrefix_<index>. The done line carries the finish reason (tool_calls when any
// call was made) and the exact usage.
type StreamDecoder struct {
	// IDPrefix names tool calls Ollama gave no id.
	IDPrefix string
	calls    int
	started  bool
}

// Decode parses one line. done is true for the last line of the stream. An
// error line returns a *StreamError.
func (d *StreamDecoder) Decode(line []byte) (c canonical.Chunk, done bool, err error) {
	var w ChatResponse
	if err := json.Unmarshal(line, &w); err != nil {
		return c, false, fmt.Errorf("decode /api/chat line: %w", err)
	}
	if w.Error != "" {
		return c, false, &StreamError{Message: w.Error}
	}
	if !d.started {
		d.started = true
		c.Role = canonical.RoleAssistant
	}
	c.Content = w.Message.Content
	c.Reasoning = w.Message.Thinking
	for _, tc := range w.Message.ToolCalls {
		c.ToolCalls = append(c.ToolCalls, canonical.ToolCallDelta{
			Index: d.calls, ID: callID(tc.ID, d.IDPrefix, d.calls),
			Name: tc.Function.Name, Arguments: argumentsText(tc.Function.Arguments),
		})
		d.calls++
	}
	if w.Done {
		c.FinishReason = finishReason(w.DoneReason, d.calls > 0)
		c.Usage = usage(&w)
	}
	return c, w.Done, nil
}
