package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// DefaultCompletionMaxTokens is the output limit of a text completion that
// gives none, as in OpenAI's and vLLM's legacy completions API.
const DefaultCompletionMaxTokens = 16

// MaxCompletionPrompts is the most prompts one completions request may carry.
const MaxCompletionPrompts = 16

// CompletionRequest is the body of POST /v1/completions (the legacy text
// completions API) with the vLLM extras of ChatRequest. Fields it ignores
// (logprobs, logit_bias, …) are not declared.
type CompletionRequest struct {
	Model             string          `json:"model"`
	Prompt            json.RawMessage `json:"prompt"`
	Suffix            *string         `json:"suffix,omitempty"`
	Echo              bool            `json:"echo,omitempty"`
	BestOf            *int            `json:"best_of,omitempty"`
	Temperature       *float64        `json:"temperature,omitempty"`
	TopP              *float64        `json:"top_p,omitempty"`
	TopK              *int64          `json:"top_k,omitempty"`
	MinP              *float64        `json:"min_p,omitempty"`
	PresencePenalty   *float64        `json:"presence_penalty,omitempty"`
	FrequencyPenalty  *float64        `json:"frequency_penalty,omitempty"`
	RepetitionPenalty *float64        `json:"repetition_penalty,omitempty"`
	Seed              *int64          `json:"seed,omitempty"`
	Stop              StopList        `json:"stop,omitempty"`
	MaxTokens         *int64          `json:"max_tokens,omitempty"`
	N                 *int            `json:"n,omitempty"`
	Stream            bool            `json:"stream"`
	StreamOptions     *StreamOptions  `json:"stream_options,omitempty"`
	ResponseFormat    *ResponseFormat `json:"response_format,omitempty"`
	User              string          `json:"user,omitempty"`
	ReasoningEffort   string          `json:"reasoning_effort,omitempty"`
	Think             json.RawMessage `json:"think,omitempty"`
}

// Completion is a decoded text completions request: one chat request per
// prompt (each prompt becomes one user message), answered as one
// text_completion whose choices are numbered prompt by prompt (n per prompt).
type Completion struct {
	// Requests holds one chat request per prompt, in order.
	Requests []*canonical.Request
	// Prompts are the prompt texts, for echo.
	Prompts []string
	// Echo asks for each prompt in front of its completions.
	Echo bool
}

// DecodeCompletionRequest parses a POST /v1/completions body. A prompt is a
// string or an array of strings; token-id prompts, suffix (insertion) and a
// best_of other than n cannot be served through chat models and are refused.
func DecodeCompletionRequest(body []byte) (*Completion, error) {
	var w CompletionRequest
	if err := decodeObject(body, &w); err != nil {
		return nil, err
	}
	if strings.TrimSpace(w.Model) == "" {
		return nil, canonical.Invalid("model", "you must provide a model parameter")
	}
	prompts, err := stringOrList("prompt", w.Prompt, MaxCompletionPrompts)
	if err != nil {
		if raw := bytes.TrimSpace(w.Prompt); len(raw) > 0 && raw[0] == '[' {
			return nil, canonical.Invalid("prompt", fmt.Sprintf(
				"prompt must be a string or an array of at most %d strings (token-id prompts are not supported)", MaxCompletionPrompts))
		}
		return nil, err
	}
	if w.Suffix != nil && *w.Suffix != "" {
		return nil, canonical.Invalid("suffix", "suffix (insertion) is not supported")
	}
	chat := ChatRequest{
		Model: w.Model, Temperature: w.Temperature, TopP: w.TopP, TopK: w.TopK, MinP: w.MinP,
		PresencePenalty: w.PresencePenalty, FrequencyPenalty: w.FrequencyPenalty, RepetitionPenalty: w.RepetitionPenalty,
		Seed: w.Seed, Stop: w.Stop, MaxTokens: w.MaxTokens, N: w.N, Stream: w.Stream, StreamOptions: w.StreamOptions,
		ResponseFormat: w.ResponseFormat, User: w.User, ReasoningEffort: w.ReasoningEffort, Think: w.Think,
	}
	if chat.MaxTokens == nil {
		n := int64(DefaultCompletionMaxTokens)
		chat.MaxTokens = &n
	}
	if w.BestOf != nil {
		n := 1
		if w.N != nil {
			n = *w.N
		}
		if *w.BestOf != n {
			return nil, canonical.Invalid("best_of", "best_of is not supported (only best_of equal to n)")
		}
	}
	out := &Completion{Prompts: prompts, Echo: w.Echo}
	for _, p := range prompts {
		chat.Messages = []ChatMessage{{Role: "user", Content: StringContent(p)}}
		req, err := chat.Canonical()
		if err != nil {
			return nil, err
		}
		out.Requests = append(out.Requests, req)
	}
	return out, nil
}

// TextCompletion is a complete text_completion object.
type TextCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []TextChoice `json:"choices"`
	Usage   *Usage       `json:"usage,omitempty"`
}

// TextChoice is one choice of a text_completion.
type TextChoice struct {
	Text         string          `json:"text"`
	Index        int             `json:"index"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

// EncodeCompletion writes a text_completion object from the answers to the
// prompts of c, in order; with echo, each text starts with its prompt.
// Reasoning has no place in a text completion and is left out.
func EncodeCompletion(c *Completion, answers []*canonical.Response, meta Meta) ([]byte, error) {
	out := TextCompletion{ID: meta.ID, Object: "text_completion", Created: meta.Created, Model: meta.Model}
	var usage *canonical.Usage
	offset := 0
	for p, resp := range answers {
		for _, ch := range resp.Choices {
			text := ch.Message.Text()
			if c.Echo {
				text = c.Prompts[p] + text
			}
			var finish *string
			if ch.FinishReason != "" {
				s := string(ch.FinishReason)
				finish = &s
			}
			out.Choices = append(out.Choices, TextChoice{Text: text, Index: offset + ch.Index, Logprobs: json.RawMessage("null"), FinishReason: finish})
		}
		offset += choicesPerPrompt(c.Requests[p])
		usage = sumUsage(usage, resp.Usage)
	}
	if usage != nil {
		out.Usage = wireUsage(*usage)
	}
	return marshal(out)
}

func choicesPerPrompt(req *canonical.Request) int { return max(1, req.Sampling.N) }

// sumUsage adds the usage of one prompt's answer.
func sumUsage(sum, u *canonical.Usage) *canonical.Usage {
	switch {
	case u == nil:
		return sum
	case sum == nil:
		c := *u
		return &c
	}
	return &canonical.Usage{Prompt: sum.Prompt + u.Prompt, Completion: sum.Completion + u.Completion,
		Estimated: sum.Estimated || u.Estimated}
}

// CompletionChunkEncoder writes canonical chunks as text_completion
// server-sent events: {"id","object":"text_completion","created","model",
// "choices":[{"text","index","logprobs":null,"finish_reason"}]}. The answers
// to the prompts of one request come one after the other (StartPrompt before
// each); usage is summed over them and written once by AppendUsage, only when
// the client asked for it. Reasoning is left out.
//
// A CompletionChunkEncoder is for one stream and is not safe for concurrent use.
type CompletionChunkEncoder struct {
	prefix       []byte
	includeUsage bool
	offset       int
	echo         string
	echoed       map[int]bool
	usage        *canonical.Usage
}

// NewCompletionChunkEncoder returns an encoder for one stream.
func NewCompletionChunkEncoder(meta Meta, includeUsage bool) *CompletionChunkEncoder {
	p := make([]byte, 0, 96+len(meta.ID)+len(meta.Model))
	p = append(p, `data: {"id":`...)
	p = appendString(p, meta.ID)
	p = append(p, `,"object":"text_completion","created":`...)
	p = appendInt(p, meta.Created)
	p = append(p, `,"model":`...)
	p = appendString(p, meta.Model)
	return &CompletionChunkEncoder{prefix: p, includeUsage: includeUsage}
}

// StartPrompt starts the answer to the next prompt: its choices are numbered
// from offset, and echo (when not empty) is written before each choice's
// first text.
func (e *CompletionChunkEncoder) StartPrompt(offset int, echo string) {
	e.offset, e.echo, e.echoed = offset, echo, map[int]bool{}
}

// AppendChunk appends the event for c to dst: nothing when c carries no text
// and no finish reason. Usage is kept for AppendUsage.
func (e *CompletionChunkEncoder) AppendChunk(dst []byte, c *canonical.Chunk) []byte {
	if c.Usage != nil {
		e.usage = sumUsage(e.usage, c.Usage)
	}
	text := c.Content
	if e.echo != "" && !e.echoed[c.Choice] && (text != "" || c.FinishReason != "") {
		e.echoed[c.Choice] = true
		text = e.echo + text
	}
	if text == "" && c.FinishReason == "" {
		return dst
	}
	dst = append(dst, e.prefix...)
	dst = append(dst, `,"choices":[{"text":`...)
	dst = appendString(dst, text)
	dst = append(dst, `,"index":`...)
	dst = appendInt(dst, int64(e.offset+c.Choice))
	dst = append(dst, `,"logprobs":null,"finish_reason":`...)
	if c.FinishReason == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, string(c.FinishReason))
	}
	return append(dst, "}]}\n\n"...)
}

// AppendUsage appends the usage event (empty choices) when the client asked
// for it with stream_options.include_usage.
func (e *CompletionChunkEncoder) AppendUsage(dst []byte) []byte {
	if !e.includeUsage || e.usage == nil {
		return dst
	}
	dst = append(dst, e.prefix...)
	dst = append(dst, `,"choices":[],"usage":`...)
	dst = appendUsage(dst, *e.usage)
	return append(dst, "}\n\n"...)
}
