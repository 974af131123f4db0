package openai

import (
	"encoding/json"
	"fmt"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// StreamError is an error event an engine sent inside a stream.
type StreamError struct {
	Message string
	Type    string
	// Code is the engine's code as JSON text (a number or a string), if any.
	Code string
}

// Error describes the engine's failure.
func (e *StreamError) Error() string {
	return "engine stream error: " + e.Message
}

// ChunkDecoder turns the data of an engine's chat.completion.chunk events into
// canonical chunks, one per choice. Usage arrives as a chunk of its own
// (Choice 0, only Usage set). A ChunkDecoder is for one stream.
type ChunkDecoder struct {
	out []canonical.Chunk
}

// Decode parses one event's data (not "[DONE]"). The returned slice is valid
// until the next call. An engine error event returns a *StreamError.
func (d *ChunkDecoder) Decode(data []byte) ([]canonical.Chunk, error) {
	out, err := d.decodeFast(data)
	if err == nil {
		return out, nil
	}
	return d.decodeReflect(data)
}

// decodeReflect is Decode with encoding/json, for whatever the direct reader
// declines.
func (d *ChunkDecoder) decodeReflect(data []byte) ([]canonical.Chunk, error) {
	var w ChatCompletionChunk
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("decode chat.completion.chunk: %w", err)
	}
	if w.Error != nil {
		return nil, &StreamError{Message: w.Error.Message, Type: w.Error.Type, Code: string(w.Error.Code)}
	}
	if w.Object == "error" {
		return nil, &StreamError{Message: w.Message, Code: string(w.Code)}
	}
	d.out = d.out[:0]
	for i := range w.Choices {
		ch := &w.Choices[i]
		c := canonical.Chunk{Choice: ch.Index, Role: canonical.Role(ch.Delta.Role)}
		if ch.Delta.Content != nil {
			c.Content = *ch.Delta.Content
		}
		switch {
		case ch.Delta.ReasoningContent != nil:
			c.Reasoning = *ch.Delta.ReasoningContent
		case ch.Delta.Reasoning != nil:
			c.Reasoning = *ch.Delta.Reasoning
		}
		for j, tc := range ch.Delta.ToolCalls {
			idx := j
			if tc.Index != nil {
				idx = *tc.Index
			}
			c.ToolCalls = append(c.ToolCalls, canonical.ToolCallDelta{
				Index: idx, ID: tc.ID, Name: tc.Function.Name, Arguments: string(tc.Function.Arguments),
			})
		}
		if ch.FinishReason != nil {
			c.FinishReason = canonical.FinishReason(*ch.FinishReason)
		}
		d.out = append(d.out, c)
	}
	if w.Usage != nil {
		d.out = append(d.out, canonical.Chunk{Usage: &canonical.Usage{
			Prompt: w.Usage.PromptTokens, Completion: w.Usage.CompletionTokens,
		}})
	}
	return d.out, nil
}
