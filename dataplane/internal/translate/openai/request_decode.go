package openai

import (
	"github.com/mindrouter/mindrouter/dataplane/internal/jsonw"
)

var (
	requestFields = []string{"model", "messages", "temperature", "top_p", "top_k", "min_p", "presence_penalty",
		"frequency_penalty", "repetition_penalty", "seed", "stop", "max_tokens", "max_completion_tokens", "n",
		"stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls", "response_format", "user",
		"reasoning_effort", "think", "thinking", "chat_template_kwargs"}
	requestMessageFields = []string{"role", "content", "name", "tool_calls", "tool_call_id", "reasoning_content", "reasoning"}
	streamOptionsFields  = []string{"include_usage"}
)

// readChatRequestFast reads the common shape of a chat request (text
// messages, sampling numbers, streaming) into w without reflection. Anything
// else, such as tools, stop lists, formats or array content, declines
// (jsonw.ErrDecline) and DecodeChatRequest decodes it with encoding/json;
// on what it accepts it fills w exactly as encoding/json would
// (FuzzDecodeChatRequestFast).
func readChatRequestFast(body []byte, w *ChatRequest) error {
	r := jsonw.NewReader(body)
	err := readObject(r, requestFields, func(f int) error {
		var err error
		switch f {
		case 0:
			w.Model, err = r.String()
		case 1:
			if r.Null() {
				return nil
			}
			w.Messages = make([]ChatMessage, 0, 2)
			err = r.Array(func() error {
				m, err := readRequestMessage(r)
				w.Messages = append(w.Messages, m)
				return err
			})
		case 2:
			w.Temperature, err = readOptFloat(r)
		case 3:
			w.TopP, err = readOptFloat(r)
		case 4:
			w.TopK, err = readOptInt(r)
		case 5:
			w.MinP, err = readOptFloat(r)
		case 6:
			w.PresencePenalty, err = readOptFloat(r)
		case 7:
			w.FrequencyPenalty, err = readOptFloat(r)
		case 8:
			w.RepetitionPenalty, err = readOptFloat(r)
		case 9:
			w.Seed, err = readOptInt(r)
		case 11:
			w.MaxTokens, err = readOptInt(r)
		case 12:
			w.MaxCompletionTokens, err = readOptInt(r)
		case 13:
			var n *int64
			if n, err = readOptInt(r); err == nil && n != nil {
				v := int(*n)
				w.N = &v
			}
		case 14:
			w.Stream, err = r.Bool()
		case 15:
			if r.Null() {
				return nil
			}
			w.StreamOptions = &StreamOptions{}
			err = readObject(r, streamOptionsFields, func(int) error {
				var err error
				w.StreamOptions.IncludeUsage, err = r.Bool()
				return err
			})
		case 20:
			w.User, err = r.String()
		case 21:
			w.ReasoningEffort, err = r.String()
		default: // the rarer fields
			return jsonw.ErrDecline
		}
		return err
	})
	if err != nil {
		return err
	}
	return r.End()
}

func readRequestMessage(r *jsonw.Reader) (ChatMessage, error) {
	var m ChatMessage
	if r.Null() {
		return m, jsonw.ErrDecline
	}
	err := readObject(r, requestMessageFields, func(f int) error {
		var err error
		switch f {
		case 0:
			m.Role, err = r.String()
		case 1:
			if r.Null() {
				m.Content = Content{}
				return nil
			}
			var s string
			s, err = r.String() // array content declines
			m.Content = StringContent(s)
		case 2:
			m.Name, err = r.String()
		case 3: // tool calls are left to encoding/json
			if !r.Null() {
				return jsonw.ErrDecline
			}
		case 4:
			m.ToolCallID, err = r.String()
		case 5:
			m.ReasoningContent, err = r.String()
		case 6:
			m.Reasoning, err = r.String()
		}
		return err
	})
	return m, err
}

func readOptFloat(r *jsonw.Reader) (*float64, error) {
	if r.Null() {
		return nil, nil
	}
	f, err := r.Float()
	return &f, err
}

func readOptInt(r *jsonw.Reader) (*int64, error) {
	if r.Null() {
		return nil, nil
	}
	n, err := r.Int()
	return &n, err
}
