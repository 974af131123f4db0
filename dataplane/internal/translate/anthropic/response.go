package anthropic

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// Meta identifies one answer: its id ("msg_…") and the model name shown to
// the client.
type Meta struct {
	ID    string
	Model string
}

// The stop reasons.
const (
	StopEndTurn      = "end_turn"
	StopMaxTokens    = "max_tokens"
	StopSequence     = "stop_sequence"
	StopToolUse      = "tool_use"
	StopRefusal      = "refusal"
	toolUseIDPrefix  = "toolu_"
	messageIDPrefix  = "msg_"
	emptyInputObject = "{}"
)

// StopReason maps a finish reason: tool_use whenever the answer called a tool
// (and was not cut short), max_tokens for length, stop_sequence when the
// engine named the stop sequence that matched, refusal for a content filter,
// end_turn otherwise (including a stream that ended without a reason).
func StopReason(finish canonical.FinishReason, stopSequence string, calledTools bool) string {
	switch {
	case finish == canonical.FinishLength:
		return StopMaxTokens
	case calledTools:
		return StopToolUse
	case finish == canonical.FinishContentFilter:
		return StopRefusal
	case stopSequence != "":
		return StopSequence
	}
	return StopEndTurn
}

// ToolUseID returns the tool_use id shown for a call: the engine's id with
// Anthropic's "toolu_" prefix (characters outside [A-Za-z0-9_-] replaced), or,
// when the engine gave none, one made from the answer id and the call's index.
// The same call gets the same id streamed or not.
func ToolUseID(answerID, engineID string, index int) string {
	if engineID == "" {
		return toolUseIDPrefix + strings.TrimPrefix(answerID, messageIDPrefix) + "_" + strconv.Itoa(index)
	}
	if !strings.HasPrefix(engineID, toolUseIDPrefix) {
		engineID = toolUseIDPrefix + engineID
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, engineID)
}

// EncodeResponse writes a message object for the first choice: content blocks
// thinking (when the engine reasoned), text, then one tool_use per call (an
// empty text block when there is nothing at all), the stop reason and usage.
func EncodeResponse(resp *canonical.Response, meta Meta) []byte {
	var ch canonical.Choice
	for _, c := range resp.Choices {
		if c.Index == 0 {
			ch = c
			break
		}
	}
	dst := make([]byte, 0, 256)
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, meta.ID)
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	dst = appendString(dst, meta.Model)
	dst = append(dst, `,"content":[`...)
	m := &ch.Message
	n := 0
	sep := func() {
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
	}
	if m.Reasoning != "" {
		sep()
		dst = appendThinkingBlock(dst, m.Reasoning)
	}
	if text := m.Text(); text != "" {
		sep()
		dst = appendTextBlock(dst, text)
	}
	for j := range m.ToolCalls {
		tc := &m.ToolCalls[j]
		sep()
		dst = appendToolUseStart(dst, ToolUseID(meta.ID, tc.ID, j), tc.Name)
		dst = appendInput(dst, tc.Arguments)
		dst = append(dst, '}')
	}
	if n == 0 {
		dst = appendTextBlock(dst, "")
	}
	dst = append(dst, `],"stop_reason":`...)
	dst = appendString(dst, StopReason(ch.FinishReason, ch.StopSequence, len(m.ToolCalls) > 0))
	dst = append(dst, `,"stop_sequence":`...)
	dst = appendStopSequence(dst, ch.FinishReason, ch.StopSequence, len(m.ToolCalls) > 0)
	dst = append(dst, `,"usage":`...)
	var u canonical.Usage
	if resp.Usage != nil {
		u = *resp.Usage
	}
	dst = appendUsage(dst, u.Prompt, u.Completion)
	return append(dst, '}')
}

func appendStopSequence(dst []byte, finish canonical.FinishReason, seq string, calledTools bool) []byte {
	if StopReason(finish, seq, calledTools) != StopSequence {
		return append(dst, "null"...)
	}
	return appendString(dst, seq)
}

func appendTextBlock(dst []byte, text string) []byte {
	dst = append(dst, `{"type":"text","text":`...)
	dst = appendString(dst, text)
	return append(dst, '}')
}

// appendThinkingBlock writes a thinking block. Its signature is empty: only
// Anthropic can sign thinking, and the gateway ignores signatures it is sent back.
func appendThinkingBlock(dst []byte, thinking string) []byte {
	dst = append(dst, `{"type":"thinking","thinking":`...)
	dst = appendString(dst, thinking)
	return append(dst, `,"signature":""}`...)
}

// appendToolUseStart writes a tool_use block up to `"input":`.
func appendToolUseStart(dst []byte, id, name string) []byte {
	dst = append(dst, `{"type":"tool_use","id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, name)
	return append(dst, `,"input":`...)
}

// appendInput writes a call's arguments as the input object: compact JSON
// when they are a JSON object, {} otherwise (input must be an object).
func appendInput(dst []byte, args string) []byte {
	b := bytes.TrimSpace([]byte(args))
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return append(dst, emptyInputObject...)
	}
	buf := bytes.NewBuffer(dst)
	if json.Compact(buf, b) != nil {
		return append(dst, emptyInputObject...)
	}
	return buf.Bytes()
}

// appendUsage writes Anthropic's usage object. The gateway has no prompt
// cache, so its cache counters are 0.
func appendUsage(dst []byte, input, output int64) []byte {
	dst = append(dst, `{"input_tokens":`...)
	dst = appendInt(dst, input)
	dst = append(dst, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":`...)
	dst = appendInt(dst, output)
	return append(dst, '}')
}
