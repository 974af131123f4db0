package openai

import (
	"bytes"
	"encoding/json"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// Meta identifies one answer: the id, model name and creation time (Unix
// seconds) shown to the client.
type Meta struct {
	ID      string
	Model   string
	Created int64
}

// EncodeResponse writes a chat.completion object. message.content is always
// present (null when the model only called tools). It appends the JSON
// directly, without reflection: this runs once per non-streamed answer.
func EncodeResponse(resp *canonical.Response, meta Meta) ([]byte, error) {
	dst := make([]byte, 0, 256+len(meta.ID)+len(meta.Model)+responseTextLen(resp))
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, meta.ID)
	dst = append(dst, `,"object":"chat.completion","created":`...)
	dst = appendInt(dst, meta.Created)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, meta.Model)
	dst = append(dst, `,"choices":[`...)
	for i := range resp.Choices {
		ch := &resp.Choices[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"index":`...)
		dst = appendInt(dst, int64(ch.Index))
		dst = append(dst, `,"message":{"role":"assistant","content":`...)
		if text := ch.Message.Text(); text != "" || len(ch.Message.ToolCalls) == 0 {
			dst = appendString(dst, text)
		} else {
			dst = append(dst, "null"...)
		}
		if len(ch.Message.ToolCalls) > 0 {
			dst = append(dst, `,"tool_calls":[`...)
			for j, tc := range ch.Message.ToolCalls {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, '{')
				if tc.ID != "" {
					dst = append(dst, `"id":`...)
					dst = appendString(dst, tc.ID)
					dst = append(dst, ',')
				}
				dst = append(dst, `"type":"function","function":{`...)
				if tc.Name != "" {
					dst = append(dst, `"name":`...)
					dst = appendString(dst, tc.Name)
					dst = append(dst, ',')
				}
				dst = append(dst, `"arguments":`...)
				dst = appendString(dst, tc.Arguments)
				dst = append(dst, "}}"...)
			}
			dst = append(dst, ']')
		}
		if ch.Message.Reasoning != "" {
			dst = append(dst, `,"reasoning_content":`...)
			dst = appendString(dst, ch.Message.Reasoning)
		}
		dst = append(dst, `},"logprobs":null,"finish_reason":`...)
		if ch.FinishReason != "" {
			dst = appendString(dst, string(ch.FinishReason))
		} else {
			dst = append(dst, "null"...)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if resp.Usage != nil {
		dst = append(dst, `,"usage":`...)
		dst = appendUsage(dst, *resp.Usage)
	}
	return append(dst, '}'), nil
}

// responseTextLen is the length of the text resp carries, to size its buffer.
func responseTextLen(resp *canonical.Response) int {
	n := 0
	for i := range resp.Choices {
		m := &resp.Choices[i].Message
		n += len(m.Reasoning) + 64
		for _, p := range m.Content {
			n += len(p.Text)
		}
		for _, tc := range m.ToolCalls {
			n += len(tc.ID) + len(tc.Name) + len(tc.Arguments) + 64
		}
	}
	return n
}

// marshal is json.Marshal without HTML escaping (<, >, & stay as they are, as
// in the streamed chunks and in OpenAI's own answers).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

func wireUsage(u canonical.Usage) *Usage {
	return &Usage{PromptTokens: u.Prompt, CompletionTokens: u.Completion, TotalTokens: u.Total()}
}
