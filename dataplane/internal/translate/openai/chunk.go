package openai

import (
	"strconv"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// doneEvent ends every successful stream.
const doneEvent = "data: [DONE]\n\n"

// ChunkEncoder writes canonical chunks as chat.completion.chunk server-sent
// events. It keeps the per-stream state OpenAI clients rely on: the first chunk
// of each choice says role "assistant", every tool call's first delta carries
// its index, id, type and name and later deltas only the index and argument
// text, and the usage chunk (empty choices) is written only when the client
// asked for it with stream_options.include_usage.
//
// A ChunkEncoder is for one stream and is not safe for concurrent use.
type ChunkEncoder struct {
	meta         Meta
	prefix       []byte // `data: {"id":…,"object":…,"created":…,"model":…`
	includeUsage bool
	choices      []choiceState
}

type choiceState struct {
	roleSent bool
	calls    []int // tool call indexes already opened
}

// NewChunkEncoder returns an encoder for one stream.
func NewChunkEncoder(meta Meta, includeUsage bool) *ChunkEncoder {
	p := make([]byte, 0, 96+len(meta.ID)+len(meta.Model))
	p = append(p, `data: {"id":`...)
	p = appendString(p, meta.ID)
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = appendInt(p, meta.Created)
	p = append(p, `,"model":`...)
	p = appendString(p, meta.Model)
	return &ChunkEncoder{meta: meta, prefix: p, includeUsage: includeUsage}
}

// AppendChunk appends the events for c to dst: nothing for an empty chunk, a
// choice event when c carries a delta or a finish reason, and a usage event when
// c carries usage and the client asked for it.
func (e *ChunkEncoder) AppendChunk(dst []byte, c *canonical.Chunk) []byte {
	if c.Role != "" || c.Content != "" || c.Reasoning != "" || len(c.ToolCalls) > 0 || c.FinishReason != "" {
		dst = e.appendChoice(dst, c)
	}
	if c.Usage != nil && e.includeUsage {
		dst = append(dst, e.prefix...)
		dst = append(dst, `,"choices":[],"usage":`...)
		dst = appendUsage(dst, *c.Usage)
		dst = append(dst, "}\n\n"...)
	}
	return dst
}

func (e *ChunkEncoder) appendChoice(dst []byte, c *canonical.Chunk) []byte {
	for len(e.choices) <= c.Choice {
		e.choices = append(e.choices, choiceState{})
	}
	st := &e.choices[c.Choice]
	dst = append(dst, e.prefix...)
	dst = append(dst, `,"choices":[{"index":`...)
	dst = strconv.AppendInt(dst, int64(c.Choice), 10)
	dst = append(dst, `,"delta":{`...)
	sep := false
	field := func(name string) {
		if sep {
			dst = append(dst, ',')
		}
		sep = true
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, `":`...)
	}
	if !st.roleSent {
		st.roleSent = true
		field("role")
		dst = append(dst, `"assistant"`...)
		if c.Content == "" && len(c.ToolCalls) == 0 {
			field("content")
			dst = append(dst, `""`...)
		}
	}
	if c.Content != "" {
		field("content")
		dst = appendString(dst, c.Content)
	}
	if c.Reasoning != "" {
		field("reasoning_content")
		dst = appendString(dst, c.Reasoning)
	}
	if len(c.ToolCalls) > 0 {
		field("tool_calls")
		dst = append(dst, '[')
		for i := range c.ToolCalls {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.appendToolCall(dst, st, c.Choice, &c.ToolCalls[i])
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `},"logprobs":null,"finish_reason":`...)
	if c.FinishReason == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, string(c.FinishReason))
	}
	return append(dst, "}]}\n\n"...)
}

func (e *ChunkEncoder) appendToolCall(dst []byte, st *choiceState, choice int, d *canonical.ToolCallDelta) []byte {
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, int64(d.Index), 10)
	opened := false
	for _, idx := range st.calls {
		if idx == d.Index {
			opened = true
			break
		}
	}
	if !opened {
		st.calls = append(st.calls, d.Index)
		id := d.ID
		if id == "" {
			id = MintToolCallID(e.meta.ID, choice, d.Index)
		}
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, id)
		dst = append(dst, `,"type":"function","function":{"name":`...)
		dst = appendString(dst, d.Name)
		dst = append(dst, `,"arguments":`...)
	} else {
		dst = append(dst, `,"function":{"arguments":`...)
	}
	dst = appendString(dst, d.Arguments)
	return append(dst, "}}"...)
}

// AppendDone appends the "data: [DONE]" event that ends a successful stream.
func AppendDone(dst []byte) []byte { return append(dst, doneEvent...) }

// AppendStreamError appends the event that ends a failed stream:
// data: {"error":{"message":…,"type":…,"param":…,"code":…}}. No [DONE] follows,
// so a client that ignores the error still sees an incomplete stream.
func AppendStreamError(dst []byte, err *canonical.Error) []byte {
	_, obj := errorObject(err)
	dst = append(dst, `data: {"error":`...)
	dst = appendErrorObject(dst, obj)
	return append(dst, "}\n\n"...)
}

func appendUsage(dst []byte, u canonical.Usage) []byte {
	dst = append(dst, `{"prompt_tokens":`...)
	dst = appendInt(dst, u.Prompt)
	dst = append(dst, `,"completion_tokens":`...)
	dst = appendInt(dst, u.Completion)
	dst = append(dst, `,"total_tokens":`...)
	dst = appendInt(dst, u.Total())
	return append(dst, '}')
}

// MintToolCallID makes a tool call id for a call the engine gave none, unique
// per answer id, choice and call index and the same in streamed and complete
// answers.
func MintToolCallID(answerID string, choice, index int) string {
	base := strings.TrimPrefix(answerID, "chatcmpl-")
	if choice == 0 {
		return "call_" + base + "_" + strconv.Itoa(index)
	}
	return "call_" + base + "_" + strconv.Itoa(choice) + "_" + strconv.Itoa(index)
}
