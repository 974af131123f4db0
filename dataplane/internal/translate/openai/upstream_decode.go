package openai

import (
	"bytes"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/jsonw"
)

// decodeUpstreamFast reads an engine's chat.completion without reflection.
// It handles the shape engines send (string or null content, string tool-call
// arguments, each key once and spelled exactly) and declines anything else
// with jsonw.ErrDecline, which DecodeUpstreamResponse then decodes with
// encoding/json; on what it accepts it gives exactly encoding/json's result
// (FuzzDecodeUpstreamResponse compares the two).
func decodeUpstreamFast(body []byte) (*canonical.Response, error) {
	r := jsonw.NewReader(body)
	resp := &canonical.Response{}
	err := readObject(r, completionFields, func(f int) error {
		var err error
		switch f {
		case completionFieldID, completionFieldObject: // id, object: checked, not kept
			err = r.SkipString()
		case completionFieldCreated: // created
			_, err = r.Int()
		case completionFieldModel: // model
			resp.Model, err = r.String()
		case completionFieldChoices: // choices
			if r.Null() {
				return nil
			}
			resp.Choices = make([]canonical.Choice, 0, 1)
			err = r.Array(func() error {
				c, err := readChoice(r)
				if err != nil {
					return err
				}
				resp.Choices = append(resp.Choices, c)
				return nil
			})
		case completionFieldUsage: // usage
			var u *canonical.Usage
			if u, err = readUsage(r); err == nil && u != nil && (u.Prompt > 0 || u.Completion > 0) {
				resp.Usage = u
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := r.End(); err != nil {
		return nil, err
	}
	if resp.Choices == nil {
		resp.Choices = []canonical.Choice{}
	}
	return resp, nil
}

var (
	completionFields = []string{completionFieldID: "id", completionFieldObject: "object", completionFieldCreated: "created", completionFieldModel: "model", completionFieldChoices: "choices", completionFieldUsage: "usage"}
	usageFields      = []string{usageFieldPromptTokens: "prompt_tokens", usageFieldCompletionTokens: "completion_tokens", usageFieldTotalTokens: "total_tokens"}
	choiceFields     = []string{choiceFieldIndex: "index", choiceFieldMessage: "message", choiceFieldLogprobs: "logprobs", choiceFieldFinishReason: "finish_reason"}
	messageFields    = []string{messageFieldRole: "role", messageFieldContent: "content", messageFieldName: "name", messageFieldToolCalls: "tool_calls", messageFieldToolCallID: "tool_call_id", messageFieldReasoningContent: "reasoning_content", messageFieldReasoning: "reasoning"}
	toolCallFields   = []string{toolCallFieldIndex: "index", toolCallFieldID: "id", toolCallFieldType: "type", toolCallFieldFunction: "function"}
	functionFields   = []string{functionFieldName: "name", functionFieldArguments: "arguments"}
)

func readChoice(r *jsonw.Reader) (canonical.Choice, error) {
	c := canonical.Choice{}
	if r.Null() {
		return c, jsonw.ErrDecline
	}
	msg := canonical.Message{Role: canonical.RoleAssistant}
	var reasoningContent, reasoning, text string
	err := readObject(r, choiceFields, func(f int) error {
		var err error
		switch f {
		case choiceFieldLogprobs: // logprobs: any value, not kept
			return r.Skip()
		case choiceFieldIndex:
			var n int64
			n, err = r.Int()
			c.Index = int(n)
		case choiceFieldMessage:
			if r.Null() {
				return nil
			}
			err = readObject(r, messageFields, func(f int) error {
				var err error
				switch f {
				case messageFieldRole, messageFieldName, messageFieldToolCallID: // role, name, tool_call_id: checked, not kept
					err = r.SkipString()
				case messageFieldContent:
					text, err = r.String() // an array of parts declines
				case messageFieldToolCalls:
					if r.Null() {
						return nil
					}
					err = r.Array(func() error {
						tc, err := readToolCall(r)
						msg.ToolCalls = append(msg.ToolCalls, tc)
						return err
					})
				case messageFieldReasoningContent:
					reasoningContent, err = r.String()
				case messageFieldReasoning:
					reasoning, err = r.String()
				}
				return err
			})
		case choiceFieldFinishReason:
			if r.Null() {
				return nil
			}
			var s string
			s, err = r.String()
			c.FinishReason = canonical.FinishReason(s)
		}
		return err
	})
	if err != nil {
		return c, err
	}
	msg.Reasoning = reasoningContent
	if msg.Reasoning == "" {
		msg.Reasoning = reasoning
	}
	if text != "" {
		msg.Content = []canonical.Part{canonical.TextPart(text)}
	}
	c.Message = msg
	return c, nil
}

func readToolCall(r *jsonw.Reader) (canonical.ToolCall, error) {
	var tc canonical.ToolCall
	if r.Null() {
		return tc, jsonw.ErrDecline
	}
	err := readObject(r, toolCallFields, func(f int) error {
		var err error
		switch f {
		case toolCallFieldIndex:
			_, err = r.Int()
		case toolCallFieldID:
			tc.ID, err = r.String()
		case toolCallFieldType:
			err = r.SkipString()
		case toolCallFieldFunction:
			err = readFunction(r, &tc.Name, &tc.Arguments)
		}
		return err
	})
	return tc, err
}

// readUsage reads a usage object; null is nil.
func readUsage(r *jsonw.Reader) (*canonical.Usage, error) {
	if r.Null() {
		return nil, nil
	}
	u := &canonical.Usage{}
	err := readObject(r, usageFields, func(f int) error {
		var err error
		switch f {
		case usageFieldPromptTokens:
			u.Prompt, err = r.Int()
		case usageFieldCompletionTokens:
			u.Completion, err = r.Int()
		case usageFieldTotalTokens:
			_, err = r.Int()
		}
		return err
	})
	return u, err
}

// readFunction reads a tool call's function object; arguments given as an
// object (which encoding/json turns into compact text) decline.
func readFunction(r *jsonw.Reader, name, arguments *string) error {
	if r.Null() {
		return nil
	}
	return readObject(r, functionFields, func(f int) error {
		var err error
		switch f {
		case functionFieldName:
			*name, err = r.String()
		case functionFieldArguments:
			*arguments, err = r.String()
		}
		return err
	})
}

// readObject reads an object whose known keys are listed in known, calling
// field with each known key's index and the Reader at its value; unknown keys
// are skipped (encoding/json ignores them), and a repeated key or another
// spelling of a known one declines.
func readObject(r *jsonw.Reader, known []string, field func(i int) error) error {
	var seen fields
	return r.Object(func(key []byte) error {
		switch i := seen.field(key, known); i {
		case fieldDecline:
			return jsonw.ErrDecline
		case fieldUnknown:
			return r.Skip()
		default:
			return field(i)
		}
	})
}

// fields tracks the known keys one object has had (at most 32 known keys).
type fields uint32

const (
	fieldUnknown = -1
	fieldDecline = -2
)

// field returns the index of key in known, fieldUnknown for a key that is not
// a known field under any spelling, and fieldDecline for a repeated key or one
// that encoding/json would match to a known field case-insensitively.
func (s *fields) field(key []byte, known []string) int {
	for i, k := range known {
		if string(key) == k {
			if *s&(1<<i) != 0 {
				return fieldDecline
			}
			*s |= 1 << i
			return i
		}
	}
	for _, c := range key {
		if c >= 0x80 {
			// encoding/json folds some non-ASCII letters onto ASCII ones
			// (ſ, K, ı): leave such keys to it.
			return fieldDecline
		}
	}
	for _, k := range known {
		if bytes.EqualFold(key, []byte(k)) {
			return fieldDecline
		}
	}
	return fieldUnknown
}

var (
	chunkFields       = []string{chunkFieldID: "id", chunkFieldModel: "model", chunkFieldChoices: "choices", chunkFieldUsage: "usage", chunkFieldError: "error", chunkFieldObject: "object", chunkFieldMessage: "message", chunkFieldCode: "code"}
	chunkChoiceFields = []string{chunkChoiceFieldIndex: "index", chunkChoiceFieldDelta: "delta", chunkChoiceFieldFinishReason: "finish_reason"}
	deltaFields       = []string{deltaFieldRole: "role", deltaFieldContent: "content", deltaFieldReasoningContent: "reasoning_content", deltaFieldReasoning: "reasoning", deltaFieldToolCalls: "tool_calls"}
)

// decodeFast is Decode without reflection for the chunks engines send; it
// declines (jsonw.ErrDecline) error events and anything else decodeReflect
// handles, and agrees with it on what it accepts (FuzzChunkDecoder).
func (d *ChunkDecoder) decodeFast(data []byte) ([]canonical.Chunk, error) {
	r := jsonw.NewReader(data)
	d.out = d.out[:0]
	var usage *canonical.Usage
	err := readObject(r, chunkFields, func(f int) error {
		var err error
		switch f {
		case chunkFieldError, chunkFieldMessage, chunkFieldCode: // error, message, code: an error event
			if r.Null() {
				return nil
			}
			return jsonw.ErrDecline
		case chunkFieldID, chunkFieldModel:
			err = r.SkipString()
		case chunkFieldObject:
			var isErr bool
			if isErr, err = r.StringIs("error"); err == nil && isErr {
				return jsonw.ErrDecline
			}
		case chunkFieldChoices:
			if r.Null() {
				return nil
			}
			err = r.Array(func() error {
				c, err := readChunkChoice(r)
				if err != nil {
					return err
				}
				d.out = append(d.out, c)
				return nil
			})
		case chunkFieldUsage:
			usage, err = readUsage(r)
		}
		return err
	})
	if err == nil {
		err = r.End()
	}
	if err != nil {
		d.out = d.out[:0]
		return nil, err
	}
	if usage != nil {
		d.out = append(d.out, canonical.Chunk{Usage: usage})
	}
	return d.out, nil
}

func readChunkChoice(r *jsonw.Reader) (canonical.Chunk, error) {
	var c canonical.Chunk
	if r.Null() {
		return c, jsonw.ErrDecline
	}
	var reasoningContent, reasoning *string
	err := readObject(r, chunkChoiceFields, func(f int) error {
		var err error
		switch f {
		case chunkChoiceFieldIndex:
			var n int64
			n, err = r.Int()
			c.Choice = int(n)
		case chunkChoiceFieldDelta:
			if r.Null() {
				return nil
			}
			err = readObject(r, deltaFields, func(f int) error {
				var err error
				switch f {
				case deltaFieldRole:
					var role string
					role, err = r.String()
					c.Role = canonical.Role(role)
				case deltaFieldContent:
					c.Content, err = r.String()
				case deltaFieldReasoningContent:
					reasoningContent, err = readOptString(r)
				case deltaFieldReasoning:
					reasoning, err = readOptString(r)
				case deltaFieldToolCalls:
					if r.Null() {
						return nil
					}
					j := 0
					err = r.Array(func() error {
						tc, err := readToolCallDelta(r, j)
						c.ToolCalls = append(c.ToolCalls, tc)
						j++
						return err
					})
				}
				return err
			})
		case chunkChoiceFieldFinishReason:
			if r.Null() {
				return nil
			}
			var s string
			s, err = r.String()
			c.FinishReason = canonical.FinishReason(s)
		}
		return err
	})
	switch {
	case reasoningContent != nil:
		c.Reasoning = *reasoningContent
	case reasoning != nil:
		c.Reasoning = *reasoning
	}
	return c, err
}

// readOptString reads a string that may be null (nil).
func readOptString(r *jsonw.Reader) (*string, error) {
	if r.Null() {
		return nil, nil
	}
	s, err := r.String()
	return &s, err
}

func readToolCallDelta(r *jsonw.Reader, position int) (canonical.ToolCallDelta, error) {
	tc := canonical.ToolCallDelta{Index: position}
	if r.Null() {
		return tc, jsonw.ErrDecline
	}
	err := readObject(r, toolCallFields, func(f int) error {
		var err error
		switch f {
		case toolCallFieldIndex:
			if r.Null() {
				return nil
			}
			var n int64
			n, err = r.Int()
			tc.Index = int(n)
		case toolCallFieldID:
			tc.ID, err = r.String()
		case toolCallFieldType:
			err = r.SkipString()
		case toolCallFieldFunction:
			err = readFunction(r, &tc.Name, &tc.Arguments)
		}
		return err
	})
	return tc, err
}

// Indexes into completionFields, as readObject reports them.
const (
	completionFieldID = iota
	completionFieldObject
	completionFieldCreated
	completionFieldModel
	completionFieldChoices
	completionFieldUsage
)

// Indexes into usageFields, as readObject reports them.
const (
	usageFieldPromptTokens = iota
	usageFieldCompletionTokens
	usageFieldTotalTokens
)

// Indexes into choiceFields, as readObject reports them.
const (
	choiceFieldIndex = iota
	choiceFieldMessage
	choiceFieldLogprobs
	choiceFieldFinishReason
)

// Indexes into messageFields, as readObject reports them.
const (
	messageFieldRole = iota
	messageFieldContent
	messageFieldName
	messageFieldToolCalls
	messageFieldToolCallID
	messageFieldReasoningContent
	messageFieldReasoning
)

// Indexes into toolCallFields, as readObject reports them.
const (
	toolCallFieldIndex = iota
	toolCallFieldID
	toolCallFieldType
	toolCallFieldFunction
)

// Indexes into functionFields, as readObject reports them.
const (
	functionFieldName = iota
	functionFieldArguments
)

// Indexes into chunkFields, as readObject reports them.
const (
	chunkFieldID = iota
	chunkFieldModel
	chunkFieldChoices
	chunkFieldUsage
	chunkFieldError
	chunkFieldObject
	chunkFieldMessage
	chunkFieldCode
)

// Indexes into chunkChoiceFields, as readObject reports them.
const (
	chunkChoiceFieldIndex = iota
	chunkChoiceFieldDelta
	chunkChoiceFieldFinishReason
)

// Indexes into deltaFields, as readObject reports them.
const (
	deltaFieldRole = iota
	deltaFieldContent
	deltaFieldReasoningContent
	deltaFieldReasoning
	deltaFieldToolCalls
)
