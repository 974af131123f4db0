package anthropic

import (
	"errors"
	"strconv"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// ErrToolCallOrder is returned when an engine sends more of a tool call after
// a later block started: Anthropic's blocks cannot overlap or reopen, so the
// stream cannot go on correctly.
var ErrToolCallOrder = errors.New("the engine sent tool call fragments out of order")

// Fixed events.
const (
	pingEvent        = "event: ping\ndata: {\"type\":\"ping\"}\n\n"
	messageStopEvent = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
)

type blockKind uint8

const (
	blockNone blockKind = iota
	blockThinking
	blockText
	blockTool
)

type callState uint8

const (
	callPending callState = iota // seen, name not yet known: arguments are buffered
	callOpen
	callClosed
)

type call struct {
	index    int // the engine's index
	id, name string
	args     []byte // arguments received before the block opened
	state    callState
}

// StreamEncoder writes canonical chunks as Anthropic's event sequence:
// message_start and a ping (AppendStart); then content blocks, each started,
// given its deltas and stopped before the next starts, numbered from 0 —
// thinking (thinking_delta), text (text_delta) and tool_use (input_json_delta
// fragments that concatenate to the call's arguments); and at the end
// message_delta with the stop reason and usage, then message_stop
// (AppendFinish).
//
// A tool_use block starts when the call's name is known. vLLM's argument
// fragments pass through as they come; an Ollama call, which arrives whole,
// is one fragment. Only choice 0 is written (the Messages API has no n).
//
// A StreamEncoder is for one stream and is not safe for concurrent use.
type StreamEncoder struct {
	meta        Meta
	inputTokens int64
	blocks      int // blocks started so far; the open block is blocks-1
	open        blockKind
	openCall    int // position in calls of the open tool_use block
	calls       []call
	calledTools bool
	finish      canonical.FinishReason
	stopSeq     string
	usage       *canonical.Usage
}

// NewStreamEncoder returns an encoder for one stream. inputTokens is the
// prompt estimate shown in message_start; the engine's count, when it gives
// one, comes in message_delta.
func NewStreamEncoder(meta Meta, inputTokens int64) *StreamEncoder {
	return &StreamEncoder{meta: meta, inputTokens: inputTokens}
}

// AppendStart appends message_start and the first ping.
func (e *StreamEncoder) AppendStart(dst []byte) []byte {
	dst = append(dst, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"...)
	dst = appendString(dst, e.meta.ID)
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	dst = appendString(dst, e.meta.Model)
	dst = append(dst, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	// The API reports one output token at the start of every message.
	dst = appendUsage(dst, e.inputTokens, 1)
	dst = append(dst, "}}\n\n"...)
	return AppendPing(dst)
}

// AppendPing appends a ping event, which keeps idle connections open.
func AppendPing(dst []byte) []byte { return append(dst, pingEvent...) }

// AppendChunk appends the events for c: its reasoning, text and tool call
// deltas in that order, each in its block. Finish reason and usage are kept
// for AppendFinish. The only error is ErrToolCallOrder.
func (e *StreamEncoder) AppendChunk(dst []byte, c *canonical.Chunk) ([]byte, error) {
	if c.Choice != 0 {
		return dst, nil
	}
	if c.Reasoning != "" {
		dst = e.ensure(dst, blockThinking)
		dst = e.deltaStart(dst, `"thinking_delta","thinking":`)
		dst = appendString(dst, c.Reasoning)
		dst = append(dst, "}}\n\n"...)
	}
	if c.Content != "" {
		dst = e.ensure(dst, blockText)
		dst = e.deltaStart(dst, `"text_delta","text":`)
		dst = appendString(dst, c.Content)
		dst = append(dst, "}}\n\n"...)
	}
	for i := range c.ToolCalls {
		var err error
		if dst, err = e.tool(dst, &c.ToolCalls[i]); err != nil {
			return dst, err
		}
	}
	if c.FinishReason != "" {
		e.finish = c.FinishReason
		e.stopSeq = c.StopSequence
	}
	if c.Usage != nil {
		u := *c.Usage
		e.usage = &u
	}
	return dst, nil
}

// AppendFinish appends what ends a successful stream: the open block's
// content_block_stop (an empty text block when there was no block at all),
// message_delta and message_stop. A call whose name never came is dropped: no
// client could run it.
func (e *StreamEncoder) AppendFinish(dst []byte) []byte {
	if e.blocks == 0 {
		dst = e.ensure(dst, blockText)
	}
	dst = e.close(dst)
	input, output := e.inputTokens, int64(0)
	if e.usage != nil {
		input, output = e.usage.Prompt, e.usage.Completion
	}
	dst = append(dst, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"...)
	dst = appendString(dst, StopReason(e.finish, e.stopSeq, e.calledTools))
	dst = append(dst, `,"stop_sequence":`...)
	dst = appendStopSequence(dst, e.finish, e.stopSeq, e.calledTools)
	dst = append(dst, `},"usage":`...)
	dst = appendUsage(dst, input, output)
	dst = append(dst, "}\n\n"...)
	return append(dst, messageStopEvent...)
}

func (e *StreamEncoder) tool(dst []byte, d *canonical.ToolCallDelta) ([]byte, error) {
	i := e.findCall(d.Index)
	c := &e.calls[i]
	if c.id == "" {
		c.id = d.ID
	}
	if c.name == "" {
		c.name = d.Name
	}
	switch c.state {
	case callClosed:
		if d.Arguments != "" {
			return dst, ErrToolCallOrder
		}
	case callPending:
		c.args = append(c.args, d.Arguments...)
		if c.name != "" {
			dst = e.openTool(dst, i)
		}
	case callOpen:
		if d.Arguments != "" {
			dst = e.appendArgs(dst, d.Arguments)
		}
	}
	return dst, nil
}

func (e *StreamEncoder) findCall(index int) int {
	for i := range e.calls {
		if e.calls[i].index == index {
			return i
		}
	}
	e.calls = append(e.calls, call{index: index})
	return len(e.calls) - 1
}

// openTool starts call i's tool_use block and writes the arguments buffered so far.
func (e *StreamEncoder) openTool(dst []byte, i int) []byte {
	dst = e.close(dst)
	c := &e.calls[i]
	c.state = callOpen
	e.open, e.openCall = blockTool, i
	e.calledTools = true
	dst = e.blockStart(dst)
	dst = appendToolUseStart(dst, ToolUseID(e.meta.ID, c.id, c.index), c.name)
	dst = append(dst, "{}}}\n\n"...)
	if len(c.args) > 0 {
		dst = e.appendArgs(dst, string(c.args))
		c.args = nil
	}
	return dst
}

func (e *StreamEncoder) appendArgs(dst []byte, fragment string) []byte {
	dst = e.deltaStart(dst, `"input_json_delta","partial_json":`)
	dst = appendString(dst, fragment)
	return append(dst, "}}\n\n"...)
}

// ensure makes a block of kind k the open block, closing another first.
func (e *StreamEncoder) ensure(dst []byte, k blockKind) []byte {
	if e.open == k {
		return dst
	}
	dst = e.close(dst)
	e.open = k
	dst = e.blockStart(dst)
	if k == blockThinking {
		return append(dst, `{"type":"thinking","thinking":"","signature":""}}`+"\n\n"...)
	}
	return append(dst, `{"type":"text","text":""}}`+"\n\n"...)
}

// blockStart numbers a new block and writes its content_block_start up to
// the block object.
func (e *StreamEncoder) blockStart(dst []byte) []byte {
	e.blocks++
	dst = append(dst, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(e.blocks-1), 10)
	return append(dst, `,"content_block":`...)
}

func (e *StreamEncoder) deltaStart(dst []byte, delta string) []byte {
	dst = append(dst, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(e.blocks-1), 10)
	dst = append(dst, `,"delta":{"type":`...)
	return append(dst, delta...)
}

// close stops the open block, if any.
func (e *StreamEncoder) close(dst []byte) []byte {
	if e.open == blockNone {
		return dst
	}
	if e.open == blockTool {
		e.calls[e.openCall].state = callClosed
	}
	e.open = blockNone
	dst = append(dst, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":"...)
	dst = strconv.AppendInt(dst, int64(e.blocks-1), 10)
	return append(dst, "}\n\n"...)
}
