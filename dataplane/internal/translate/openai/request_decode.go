package openai

import (
	"github.com/mindrouter/mindrouter/dataplane/internal/jsonw"
)

var (
	requestFields        = []string{requestFieldModel: "model", requestFieldMessages: "messages", requestFieldTemperature: "temperature", requestFieldTopP: "top_p", requestFieldTopK: "top_k", requestFieldMinP: "min_p", requestFieldPresencePenalty: "presence_penalty", requestFieldFrequencyPenalty: "frequency_penalty", requestFieldRepetitionPenalty: "repetition_penalty", requestFieldSeed: "seed", requestFieldStop: "stop", requestFieldMaxTokens: "max_tokens", requestFieldMaxCompletionTokens: "max_completion_tokens", requestFieldN: "n", requestFieldStream: "stream", requestFieldStreamOptions: "stream_options", requestFieldTools: "tools", requestFieldToolChoice: "tool_choice", requestFieldParallelToolCalls: "parallel_tool_calls", requestFieldResponseFormat: "response_format", requestFieldUser: "user", requestFieldReasoningEffort: "reasoning_effort", requestFieldThink: "think", requestFieldThinking: "thinking", requestFieldChatTemplateKwargs: "chat_template_kwargs"}
	requestMessageFields = []string{requestMessageFieldRole: "role", requestMessageFieldContent: "content", requestMessageFieldName: "name", requestMessageFieldToolCalls: "tool_calls", requestMessageFieldToolCallID: "tool_call_id", requestMessageFieldReasoningContent: "reasoning_content", requestMessageFieldReasoning: "reasoning"}
	streamOptionsFields  = []string{streamOptionsFieldIncludeUsage: "include_usage"}
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
		case requestFieldModel:
			w.Model, err = r.String()
		case requestFieldMessages:
			if r.Null() {
				return nil
			}
			w.Messages = make([]ChatMessage, 0, 2)
			err = r.Array(func() error {
				m, err := readRequestMessage(r)
				w.Messages = append(w.Messages, m)
				return err
			})
		case requestFieldTemperature:
			w.Temperature, err = readOptFloat(r)
		case requestFieldTopP:
			w.TopP, err = readOptFloat(r)
		case requestFieldTopK:
			w.TopK, err = readOptInt(r)
		case requestFieldMinP:
			w.MinP, err = readOptFloat(r)
		case requestFieldPresencePenalty:
			w.PresencePenalty, err = readOptFloat(r)
		case requestFieldFrequencyPenalty:
			w.FrequencyPenalty, err = readOptFloat(r)
		case requestFieldRepetitionPenalty:
			w.RepetitionPenalty, err = readOptFloat(r)
		case requestFieldSeed:
			w.Seed, err = readOptInt(r)
		case requestFieldMaxTokens:
			w.MaxTokens, err = readOptInt(r)
		case requestFieldMaxCompletionTokens:
			w.MaxCompletionTokens, err = readOptInt(r)
		case requestFieldN:
			var n *int64
			if n, err = readOptInt(r); err == nil && n != nil {
				v := int(*n)
				w.N = &v
			}
		case requestFieldStream:
			w.Stream, err = r.Bool()
		case requestFieldStreamOptions:
			if r.Null() {
				return nil
			}
			w.StreamOptions = &StreamOptions{}
			err = readObject(r, streamOptionsFields, func(int) error {
				var err error
				w.StreamOptions.IncludeUsage, err = r.Bool()
				return err
			})
		case requestFieldUser:
			w.User, err = r.String()
		case requestFieldReasoningEffort:
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
		case requestMessageFieldRole:
			m.Role, err = r.String()
		case requestMessageFieldContent:
			if r.Null() {
				m.Content = Content{}
				return nil
			}
			var s string
			s, err = r.String() // array content declines
			m.Content = StringContent(s)
		case requestMessageFieldName:
			m.Name, err = r.String()
		case requestMessageFieldToolCalls: // tool calls are left to encoding/json
			if !r.Null() {
				return jsonw.ErrDecline
			}
		case requestMessageFieldToolCallID:
			m.ToolCallID, err = r.String()
		case requestMessageFieldReasoningContent:
			m.ReasoningContent, err = r.String()
		case requestMessageFieldReasoning:
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

// Indexes into requestFields, as readObject reports them.
const (
	requestFieldModel = iota
	requestFieldMessages
	requestFieldTemperature
	requestFieldTopP
	requestFieldTopK
	requestFieldMinP
	requestFieldPresencePenalty
	requestFieldFrequencyPenalty
	requestFieldRepetitionPenalty
	requestFieldSeed
	requestFieldStop
	requestFieldMaxTokens
	requestFieldMaxCompletionTokens
	requestFieldN
	requestFieldStream
	requestFieldStreamOptions
	requestFieldTools
	requestFieldToolChoice
	requestFieldParallelToolCalls
	requestFieldResponseFormat
	requestFieldUser
	requestFieldReasoningEffort
	requestFieldThink
	requestFieldThinking
	requestFieldChatTemplateKwargs
)

// Indexes into requestMessageFields, as readObject reports them.
const (
	requestMessageFieldRole = iota
	requestMessageFieldContent
	requestMessageFieldName
	requestMessageFieldToolCalls
	requestMessageFieldToolCallID
	requestMessageFieldReasoningContent
	requestMessageFieldReasoning
)

// Indexes into streamOptionsFields, as readObject reports them.
const (
	streamOptionsFieldIncludeUsage = iota
)
