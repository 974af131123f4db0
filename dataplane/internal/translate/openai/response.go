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
// present (null when the model only called tools).
func EncodeResponse(resp *canonical.Response, meta Meta) ([]byte, error) {
	out := ChatCompletion{
		ID:      meta.ID,
		Object:  "chat.completion",
		Created: meta.Created,
		Model:   meta.Model,
		Choices: make([]CompletionChoice, 0, len(resp.Choices)),
	}
	for _, ch := range resp.Choices {
		msg := ChatMessage{Role: string(canonical.RoleAssistant), ReasoningContent: ch.Message.Reasoning}
		if text := ch.Message.Text(); text != "" || len(ch.Message.ToolCalls) == 0 {
			msg.Content = StringContent(text)
		}
		for _, tc := range ch.Message.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, ToolCall{
				ID: tc.ID, Type: "function",
				Function: FunctionCall{Name: tc.Name, Arguments: Arguments(tc.Arguments)},
			})
		}
		var finish *string
		if ch.FinishReason != "" {
			s := string(ch.FinishReason)
			finish = &s
		}
		out.Choices = append(out.Choices, CompletionChoice{Index: ch.Index, Message: msg, FinishReason: finish})
	}
	if resp.Usage != nil {
		out.Usage = wireUsage(*resp.Usage)
	}
	return marshal(out)
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
