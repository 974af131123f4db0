package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// MinThinkingBudget is the smallest thinking.budget_tokens Anthropic accepts.
const MinThinkingBudget = 1024

// DecodeMessagesRequest parses a POST /v1/messages body into a canonical
// request. Every refusal is a *canonical.Error of KindInvalidRequest whose
// message names the offending field the way Anthropic does
// ("messages.0.content.1.type: …"). max_tokens is required, as Anthropic
// requires it.
func DecodeMessagesRequest(body []byte) (*canonical.Request, error) {
	return decode(body, true)
}

// DecodeCountTokensRequest parses a POST /v1/messages/count_tokens body: the
// same fields as a message request, max_tokens not required.
func DecodeCountTokensRequest(body []byte) (*canonical.Request, error) {
	return decode(body, false)
}

func decode(body []byte, needMaxTokens bool) (*canonical.Request, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, canonical.Invalid("", "request body is empty; send a JSON object")
	}
	var w MessagesRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, jsonError(err)
	}
	return w.Canonical(needMaxTokens)
}

// jsonError turns a decoding error into a client-facing one.
func jsonError(err error) *canonical.Error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return &canonical.Error{Kind: canonical.KindInvalidRequest, Param: typeErr.Field,
			Message: canonical.Echo(fmt.Sprintf("%s: invalid type: got %s", typeErr.Field, typeErr.Value)), Err: err}
	}
	return canonical.DecodeError(err)
}

// Canonical validates the wire request and converts it. needMaxTokens makes
// max_tokens required (messages, not count_tokens).
func (w *MessagesRequest) Canonical(needMaxTokens bool) (*canonical.Request, error) {
	if strings.TrimSpace(w.Model) == "" {
		return nil, canonical.Invalid("model", "model: Field required")
	}
	if needMaxTokens && w.MaxTokens == nil {
		return nil, canonical.Invalid("max_tokens", "max_tokens: Field required")
	}
	if len(w.Messages) == 0 {
		return nil, canonical.Invalid("messages", "messages: at least one message is required")
	}
	req := &canonical.Request{Model: w.Model, Stream: w.Stream}
	if w.Metadata != nil {
		req.User = w.Metadata.UserID
	}
	system, err := decodeSystem(&w.System)
	if err != nil {
		return nil, err
	}
	req.Messages = make([]canonical.Message, 0, len(w.Messages)+1)
	if system != nil {
		req.Messages = append(req.Messages, *system)
	}
	if req.Messages, err = decodeMessages(req.Messages, w.Messages); err != nil {
		return nil, err
	}
	if req.Sampling, err = w.sampling(); err != nil {
		return nil, err
	}
	if req.Tools, err = decodeTools(w.Tools); err != nil {
		return nil, err
	}
	if req.ToolChoice, req.ParallelToolCalls, err = decodeToolChoice(w.ToolChoice, req.Tools); err != nil {
		return nil, err
	}
	if req.Think, err = w.thinking(); err != nil {
		return nil, err
	}
	if req.ResponseFormat, err = w.responseFormat(); err != nil {
		return nil, err
	}
	return req, nil
}

func (w *MessagesRequest) sampling() (canonical.Sampling, error) {
	s := canonical.Sampling{Temperature: w.Temperature, TopP: w.TopP}
	for _, c := range []struct {
		v    *float64
		name string
	}{{w.Temperature, "temperature"}, {w.TopP, "top_p"}} {
		if c.v != nil && (*c.v < 0 || *c.v > 1) {
			return s, canonical.Invalid(c.name, fmt.Sprintf("%s: must be between 0 and 1; got %g", c.name, *c.v))
		}
	}
	if w.TopK != nil {
		switch {
		case *w.TopK < 0:
			return s, canonical.Invalid("top_k", "top_k: must be 0 or greater")
		case *w.TopK > 0:
			s.TopK = w.TopK
		}
	}
	if w.MaxTokens != nil {
		if *w.MaxTokens < 1 {
			return s, canonical.Invalid("max_tokens", "max_tokens: must be at least 1")
		}
		s.MaxTokens = *w.MaxTokens
	}
	for i, seq := range w.StopSequences {
		if seq == "" {
			return s, canonical.Invalid(fmt.Sprintf("stop_sequences.%d", i), fmt.Sprintf("stop_sequences.%d: must not be empty", i))
		}
	}
	s.Stop = w.StopSequences
	return s, nil
}

func decodeTools(tools []Tool) ([]canonical.Tool, error) {
	if len(tools) == 0 {
		return nil, nil
	}
	out := make([]canonical.Tool, 0, len(tools))
	seen := make(map[string]bool, len(tools))
	for i, t := range tools {
		param := func(f string) string { return fmt.Sprintf("tools.%d.%s", i, f) }
		if t.Type != "" && t.Type != "custom" {
			return nil, canonical.Invalid(param("type"), fmt.Sprintf(
				"%s: tool type %q is an Anthropic-hosted tool, which this gateway does not run; "+
					"define custom tools with name, description and input_schema", param("type"), t.Type))
		}
		if t.Name == "" {
			return nil, canonical.Invalid(param("name"), param("name")+": Field required")
		}
		if seen[t.Name] {
			return nil, canonical.Invalid(param("name"), fmt.Sprintf("%s: tool names must be unique; %q is repeated", param("name"), t.Name))
		}
		seen[t.Name] = true
		schema := bytes.TrimSpace(t.InputSchema)
		switch {
		case len(schema) == 0 || bytes.Equal(schema, []byte("null")):
			schema = []byte(`{"type":"object","properties":{}}`)
		case schema[0] != '{':
			return nil, canonical.Invalid(param("input_schema"), param("input_schema")+": must be a JSON Schema object")
		}
		out = append(out, canonical.Tool{Name: t.Name, Description: t.Description, Parameters: schema, Strict: t.Strict})
	}
	return out, nil
}

// decodeToolChoice maps auto, any, tool and none; disable_parallel_tool_use
// becomes parallel_tool_calls=false.
func decodeToolChoice(tc *ToolChoice, tools []canonical.Tool) (*canonical.ToolChoice, *bool, error) {
	if tc == nil {
		return nil, nil, nil
	}
	var parallel *bool
	if tc.DisableParallelToolUse != nil {
		p := !*tc.DisableParallelToolUse
		parallel = &p
	}
	switch tc.Type {
	case "auto":
		return &canonical.ToolChoice{Mode: canonical.ToolChoiceAuto}, parallel, nil
	case "any":
		return &canonical.ToolChoice{Mode: canonical.ToolChoiceRequired}, parallel, nil
	case "none":
		return &canonical.ToolChoice{Mode: canonical.ToolChoiceNone}, nil, nil
	case "tool":
		if tc.Name == "" {
			return nil, nil, canonical.Invalid("tool_choice.name", "tool_choice.name: Field required")
		}
		for _, t := range tools {
			if t.Name == tc.Name {
				return &canonical.ToolChoice{Mode: canonical.ToolChoiceFunction, Name: tc.Name}, parallel, nil
			}
		}
		return nil, nil, canonical.Invalid("tool_choice.name", fmt.Sprintf("tool_choice.name: no tool named %q in tools", tc.Name))
	case "":
		return nil, nil, canonical.Invalid("tool_choice.type", "tool_choice.type: Field required")
	}
	return nil, nil, canonical.Invalid("tool_choice.type",
		fmt.Sprintf(`tool_choice.type: must be "auto", "any", "tool" or "none"; got %q`, tc.Type))
}

// thinking maps thinking.type: enabled (with budget_tokens, at least 1024 and
// below max_tokens, as Anthropic requires), adaptive, disabled. An
// output_config.effort level applies when thinking is on.
func (w *MessagesRequest) thinking() (*canonical.Thinking, error) {
	var t *canonical.Thinking
	if th := w.Thinking; th != nil {
		switch th.Type {
		case "enabled":
			if th.BudgetTokens == nil {
				return nil, canonical.Invalid("thinking.budget_tokens", "thinking.budget_tokens: Field required")
			}
			b := *th.BudgetTokens
			if b < MinThinkingBudget {
				return nil, canonical.Invalid("thinking.budget_tokens",
					fmt.Sprintf("thinking.budget_tokens: must be at least %d; got %d", MinThinkingBudget, b))
			}
			if w.MaxTokens != nil && b >= *w.MaxTokens {
				return nil, canonical.Invalid("thinking.budget_tokens",
					fmt.Sprintf("thinking.budget_tokens: must be less than max_tokens (%d); got %d", *w.MaxTokens, b))
			}
			t = &canonical.Thinking{Enabled: true, BudgetTokens: b}
		case "adaptive":
			t = &canonical.Thinking{Enabled: true}
		case "disabled":
			t = &canonical.Thinking{Enabled: false}
		case "":
			return nil, canonical.Invalid("thinking.type", "thinking.type: Field required")
		default:
			return nil, canonical.Invalid("thinking.type",
				fmt.Sprintf(`thinking.type: must be "enabled", "adaptive" or "disabled"; got %q`, th.Type))
		}
	}
	if oc := w.OutputConfig; oc != nil && oc.Effort != "" {
		level, ok := map[string]string{"low": "low", "medium": "medium", "high": "high", "max": "high"}[oc.Effort]
		if !ok {
			return nil, canonical.Invalid("output_config.effort",
				fmt.Sprintf(`output_config.effort: must be "low", "medium", "high" or "max"; got %q`, oc.Effort))
		}
		if t != nil && t.Enabled {
			t.Effort = level
		}
	}
	return t, nil
}

// responseFormat maps output_config.format (or the beta's output_format) of
// type json_schema.
func (w *MessagesRequest) responseFormat() (*canonical.ResponseFormat, error) {
	f, param := w.OutputFormat, "output_format"
	if w.OutputConfig != nil && w.OutputConfig.Format != nil {
		f, param = w.OutputConfig.Format, "output_config.format"
	}
	if f == nil {
		return nil, nil
	}
	if f.Type != "json_schema" {
		return nil, canonical.Invalid(param+".type", fmt.Sprintf(`%s.type: must be "json_schema"; got %q`, param, f.Type))
	}
	schema := bytes.TrimSpace(f.Schema)
	if len(schema) == 0 || schema[0] != '{' {
		return nil, canonical.Invalid(param+".schema", param+".schema: must be a JSON Schema object")
	}
	return &canonical.ResponseFormat{Type: canonical.FormatJSONSchema, Name: f.Name, Schema: schema}, nil
}
