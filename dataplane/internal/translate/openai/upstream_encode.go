package openai

import (
	"encoding/json"

	"github.com/mindrouter/mindrouter/dataplane/internal/jsonw"
)

// appendChatRequest appends w as json.Marshal writes it (HTML-escaped strings,
// omitempty fields left out), without reflection for the fields every request
// has; the rarer structured fields (tools, formats, template arguments, raw
// JSON) are marshaled on their own, which gives the same bytes.
func appendChatRequest(dst []byte, w *ChatRequest) ([]byte, error) {
	var err error
	dst = append(dst, `{"model":`...)
	dst = jsonw.StringEscapeHTML(dst, w.Model)
	dst = append(dst, `,"messages":`...)
	if w.Messages == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range w.Messages {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendChatMessage(dst, &w.Messages[i]); err != nil {
				return nil, err
			}
		}
		dst = append(dst, ']')
	}
	dst = optFloat(dst, `,"temperature":`, w.Temperature)
	dst = optFloat(dst, `,"top_p":`, w.TopP)
	dst = optInt(dst, `,"top_k":`, w.TopK)
	dst = optFloat(dst, `,"min_p":`, w.MinP)
	dst = optFloat(dst, `,"presence_penalty":`, w.PresencePenalty)
	dst = optFloat(dst, `,"frequency_penalty":`, w.FrequencyPenalty)
	dst = optFloat(dst, `,"repetition_penalty":`, w.RepetitionPenalty)
	dst = optInt(dst, `,"seed":`, w.Seed)
	if len(w.Stop) > 0 {
		dst = append(dst, `,"stop":[`...)
		for i, s := range w.Stop {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonw.StringEscapeHTML(dst, s)
		}
		dst = append(dst, ']')
	}
	dst = optInt(dst, `,"max_tokens":`, w.MaxTokens)
	dst = optInt(dst, `,"max_completion_tokens":`, w.MaxCompletionTokens)
	if w.N != nil {
		dst = append(dst, `,"n":`...)
		dst = jsonw.Int(dst, int64(*w.N))
	}
	dst = append(dst, `,"stream":`...)
	dst = jsonw.Bool(dst, w.Stream)
	if w.StreamOptions != nil {
		dst = append(dst, `,"stream_options":{"include_usage":`...)
		dst = jsonw.Bool(dst, w.StreamOptions.IncludeUsage)
		dst = append(dst, '}')
	}
	if len(w.Tools) > 0 {
		if dst, err = appendMarshaled(dst, `,"tools":`, w.Tools); err != nil {
			return nil, err
		}
	}
	if len(w.ToolChoice) > 0 {
		if dst, err = appendMarshaled(dst, `,"tool_choice":`, w.ToolChoice); err != nil {
			return nil, err
		}
	}
	if w.ParallelToolCalls != nil {
		dst = append(dst, `,"parallel_tool_calls":`...)
		dst = jsonw.Bool(dst, *w.ParallelToolCalls)
	}
	if w.ResponseFormat != nil {
		if dst, err = appendMarshaled(dst, `,"response_format":`, w.ResponseFormat); err != nil {
			return nil, err
		}
	}
	dst = optString(dst, `,"user":`, w.User)
	dst = optString(dst, `,"reasoning_effort":`, w.ReasoningEffort)
	if len(w.Think) > 0 {
		if dst, err = appendMarshaled(dst, `,"think":`, w.Think); err != nil {
			return nil, err
		}
	}
	if w.Thinking != nil {
		if dst, err = appendMarshaled(dst, `,"thinking":`, w.Thinking); err != nil {
			return nil, err
		}
	}
	if len(w.ChatTemplateKwargs) > 0 {
		if dst, err = appendMarshaled(dst, `,"chat_template_kwargs":`, w.ChatTemplateKwargs); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

func appendChatMessage(dst []byte, m *ChatMessage) ([]byte, error) {
	var err error
	dst = append(dst, `{"role":`...)
	dst = jsonw.StringEscapeHTML(dst, m.Role)
	dst = append(dst, `,"content":`...)
	switch m.Content.Kind {
	case ContentString:
		dst = jsonw.StringEscapeHTML(dst, m.Content.Text)
	case ContentParts:
		if dst, err = appendMarshaled(dst, "", m.Content.Parts); err != nil {
			return nil, err
		}
	default:
		dst = append(dst, "null"...)
	}
	dst = optString(dst, `,"name":`, m.Name)
	if len(m.ToolCalls) > 0 {
		dst = append(dst, `,"tool_calls":[`...)
		for i := range m.ToolCalls {
			tc := &m.ToolCalls[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '{')
			sep := ""
			if tc.Index != nil {
				dst = append(dst, `"index":`...)
				dst = jsonw.Int(dst, int64(*tc.Index))
				sep = ","
			}
			if tc.ID != "" {
				dst = append(dst, sep+`"id":`...)
				dst = jsonw.StringEscapeHTML(dst, tc.ID)
				sep = ","
			}
			if tc.Type != "" {
				dst = append(dst, sep+`"type":`...)
				dst = jsonw.StringEscapeHTML(dst, tc.Type)
				sep = ","
			}
			dst = append(dst, sep+`"function":{`...)
			if tc.Function.Name != "" {
				dst = append(dst, `"name":`...)
				dst = jsonw.StringEscapeHTML(dst, tc.Function.Name)
				dst = append(dst, ',')
			}
			dst = append(dst, `"arguments":`...)
			// json.Marshal HTML-escapes a marshaler's output too.
			dst = jsonw.StringEscapeHTML(dst, string(tc.Function.Arguments))
			dst = append(dst, "}}"...)
		}
		dst = append(dst, ']')
	}
	dst = optString(dst, `,"tool_call_id":`, m.ToolCallID)
	dst = optString(dst, `,"reasoning_content":`, m.ReasoningContent)
	dst = optString(dst, `,"reasoning":`, m.Reasoning)
	return append(dst, '}'), nil
}

func optFloat(dst []byte, key string, v *float64) []byte {
	if v == nil {
		return dst
	}
	return jsonw.Float(append(dst, key...), *v)
}

func optInt(dst []byte, key string, v *int64) []byte {
	if v == nil {
		return dst
	}
	return jsonw.Int(append(dst, key...), *v)
}

func optString(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	return jsonw.StringEscapeHTML(append(dst, key...), v)
}

// appendMarshaled appends key and v as json.Marshal writes v.
func appendMarshaled(dst []byte, key string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(append(dst, key...), b...), nil
}
