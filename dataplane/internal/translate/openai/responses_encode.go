package openai

import (
	"encoding/json"
	"strconv"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// ResponseObject is the Responses API's response object.
type ResponseObject struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	CreatedAt          int64             `json:"created_at"`
	Status             string            `json:"status"`
	Background         bool              `json:"background"`
	Error              *ResponseError    `json:"error"`
	IncompleteDetails  *Incomplete       `json:"incomplete_details"`
	Instructions       *string           `json:"instructions"`
	MaxOutputTokens    *int64            `json:"max_output_tokens"`
	Model              string            `json:"model"`
	Output             []Item            `json:"output"`
	ParallelToolCalls  bool              `json:"parallel_tool_calls"`
	PreviousResponseID *string           `json:"previous_response_id"`
	Reasoning          ReasoningEcho     `json:"reasoning"`
	Store              bool              `json:"store"`
	Temperature        float64           `json:"temperature"`
	Text               ResponsesText     `json:"text"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	Tools              []ResponsesTool   `json:"tools"`
	TopP               float64           `json:"top_p"`
	Truncation         string            `json:"truncation"`
	Usage              *ResponsesUsage   `json:"usage"`
	User               *string           `json:"user"`
	Metadata           map[string]string `json:"metadata"`
}

// ResponseError is a failed response's error.
type ResponseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Incomplete says why a response is incomplete.
type Incomplete struct {
	Reason string `json:"reason"`
}

// ReasoningEcho echoes the reasoning configuration.
type ReasoningEcho struct {
	Effort  *string `json:"effort"`
	Summary *string `json:"summary"`
}

// ResponsesUsage is the Responses API's usage object.
type ResponsesUsage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

// NewResponseObject returns the response object of r in progress (no output
// yet), with the request's settings echoed and their defaults filled.
func NewResponseObject(r *Responses, id string, created int64) *ResponseObject {
	w := r.Wire
	o := &ResponseObject{
		ID: id, Object: "response", CreatedAt: created, Status: "in_progress", Instructions: w.Instructions,
		MaxOutputTokens: w.MaxOutputTokens, Model: w.Model, Output: []Item{}, ParallelToolCalls: true,
		Store: w.Store == nil || *w.Store, Temperature: 1, TopP: 1, Truncation: "disabled",
		Tools: w.Tools, ToolChoice: json.RawMessage(`"auto"`), Metadata: w.Metadata,
	}
	if o.Tools == nil {
		o.Tools = []ResponsesTool{}
	}
	if o.Metadata == nil {
		o.Metadata = map[string]string{}
	}
	if w.ParallelToolCalls != nil {
		o.ParallelToolCalls = *w.ParallelToolCalls
	}
	if w.PreviousResponseID != "" {
		o.PreviousResponseID = &w.PreviousResponseID
	}
	if w.Temperature != nil {
		o.Temperature = *w.Temperature
	}
	if w.TopP != nil {
		o.TopP = *w.TopP
	}
	if w.Truncation != "" {
		o.Truncation = w.Truncation
	}
	if len(nullToNil(w.ToolChoice)) > 0 {
		o.ToolChoice = w.ToolChoice
	}
	if w.User != "" {
		o.User = &w.User
	}
	o.Text.Format = &ResponsesFormat{Type: "text"}
	if w.Text != nil && w.Text.Format != nil {
		o.Text.Format = w.Text.Format
	}
	if w.Reasoning != nil {
		if w.Reasoning.Effort != "" {
			o.Reasoning.Effort = &w.Reasoning.Effort
		}
		if s := w.Reasoning.Summary + w.Reasoning.GenerateSummary; s != "" {
			o.Reasoning.Summary = &s
		}
	}
	return o
}

// Finish sets the terminal status, output and usage of o.
func (o *ResponseObject) Finish(output []Item, finish canonical.FinishReason, u canonical.Usage) {
	o.Output = output
	o.Status = "completed"
	if finish == canonical.FinishLength {
		o.Status = "incomplete"
		o.IncompleteDetails = &Incomplete{Reason: "max_output_tokens"}
	}
	usage := &ResponsesUsage{InputTokens: u.Prompt, OutputTokens: u.Completion, TotalTokens: u.Total()}
	o.Usage = usage
}

// Fail marks o failed with err.
func (o *ResponseObject) Fail(output []Item, err *canonical.Error) {
	o.Output = output
	o.Status = "failed"
	_, eo := errorObject(err)
	code := eo.Code
	switch err.Kind {
	case canonical.KindRateLimited:
		code = "rate_limit_exceeded"
	case canonical.KindQuotaExhausted:
		code = "insufficient_quota"
	case canonical.KindInvalidRequest, canonical.KindUnprocessable, canonical.KindNotFound:
		if code == "" {
			code = "invalid_prompt"
		}
	default:
		code = "server_error"
	}
	o.Error = &ResponseError{Code: code, Message: eo.Message}
}

// OutputText is the concatenated text of o's message items.
func (o *ResponseObject) OutputText() string {
	var s string
	for i := range o.Output {
		if o.Output[i].Type != "message" {
			continue
		}
		var parts []ItemPart
		_ = json.Unmarshal(o.Output[i].Content, &parts)
		for _, p := range parts {
			s += p.Text
		}
	}
	return s
}

// ItemIDs mints the ids of one response's items: prefix + the response's hex
// + a counter, unique per response.
type ItemIDs struct {
	hex string
	n   int
}

// NewItemIDs returns the id source of the response respID (resp_<hex>).
func NewItemIDs(respID string) *ItemIDs {
	return &ItemIDs{hex: respID[min(len(respID), len("resp_")):]}
}

// Next returns a new id with prefix (msg, rs, fc, call).
func (g *ItemIDs) Next(prefix string) string {
	g.n++
	return prefix + "_" + g.hex + strconv.Itoa(g.n)
}

// textContent is a message item's content: one output_text part.
func textContent(text string) json.RawMessage {
	b, _ := json.Marshal([]outputTextPart{{Type: "output_text", Text: text, Annotations: []any{}, Logprobs: []any{}}})
	return b
}

type outputTextPart struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Annotations []any  `json:"annotations"`
	Logprobs    []any  `json:"logprobs"`
}

// reasoningItem is a reasoning output item; the summary repeats the
// reasoning text when summaries were asked for (the engines produce no
// separate summary).
func reasoningItem(id, text string, summary bool) Item {
	it := Item{ID: id, Type: "reasoning", Summary: json.RawMessage(`[]`)}
	it.Content, _ = json.Marshal([]ItemPart{{Type: "reasoning_text", Text: text}})
	if summary {
		it.Summary, _ = json.Marshal([]ItemPart{{Type: "summary_text", Text: text}})
	}
	return it
}

func messageItem(id, text, status string) Item {
	return Item{ID: id, Type: "message", Status: status, Role: "assistant", Content: textContent(text)}
}

func functionCallItem(id, callID, name, args, status string) Item {
	return Item{ID: id, Type: "function_call", Status: status, CallID: callID, Name: name, Arguments: &args}
}

// OutputItems converts a non-streamed answer's first choice to output items.
func OutputItems(resp *canonical.Response, ids *ItemIDs, summary bool) []Item {
	out := []Item{}
	if len(resp.Choices) == 0 {
		return out
	}
	m := &resp.Choices[0].Message
	status := "completed"
	if resp.Choices[0].FinishReason == canonical.FinishLength {
		status = "incomplete"
	}
	if m.Reasoning != "" {
		out = append(out, reasoningItem(ids.Next("rs"), m.Reasoning, summary))
	}
	if text := m.Text(); text != "" || len(m.ToolCalls) == 0 {
		out = append(out, messageItem(ids.Next("msg"), text, status))
	}
	for _, tc := range m.ToolCalls {
		callID := tc.ID
		if callID == "" {
			callID = ids.Next("call")
		}
		out = append(out, functionCallItem(ids.Next("fc"), callID, tc.Name, tc.Arguments, "completed"))
	}
	return out
}

// IdentifyItems gives every input item an id (msg_, fc_, fco_, rs_) and a
// type, as the input_items listing shows them; items that cannot be read are
// kept as they are.
func IdentifyItems(items []json.RawMessage, ids *ItemIDs) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(items))
	for _, raw := range items {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			out = append(out, raw)
			continue
		}
		var typ string
		_ = json.Unmarshal(m["type"], &typ)
		if typ == "" {
			typ = "message"
			m["type"] = json.RawMessage(`"message"`)
		}
		if _, ok := m["id"]; !ok {
			prefix := map[string]string{"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}[typ]
			if prefix == "" {
				prefix = "item"
			}
			m["id"], _ = json.Marshal(ids.Next(prefix))
		}
		var text string
		if typ == "message" && json.Unmarshal(m["content"], &text) == nil { // listed as parts, as OpenAI lists them
			kind := "input_text"
			var role string
			if _ = json.Unmarshal(m["role"], &role); role == "assistant" {
				kind = "output_text"
			}
			m["content"], _ = json.Marshal([]ItemPart{{Type: kind, Text: text}})
		}
		if _, ok := m["status"]; !ok && typ != "reasoning" {
			m["status"] = json.RawMessage(`"completed"`)
		}
		b, err := json.Marshal(m)
		if err != nil {
			b = raw
		}
		out = append(out, b)
	}
	return out
}

// EncodeItemList writes a page of items as the API's list object: newest
// first when desc, starting after the item with id after (if any).
func EncodeItemList(items []json.RawMessage, desc bool, after string, limit int) ([]byte, error) {
	ordered := make([]json.RawMessage, len(items))
	copy(ordered, items)
	if desc {
		for i, j := 0, len(ordered)-1; i < j; i, j = i+1, j-1 {
			ordered[i], ordered[j] = ordered[j], ordered[i]
		}
	}
	idOf := func(raw json.RawMessage) string {
		var it struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(raw, &it)
		return it.ID
	}
	if after != "" {
		for i, raw := range ordered {
			if idOf(raw) == after {
				ordered = ordered[i+1:]
				break
			}
		}
	}
	hasMore := len(ordered) > limit
	if hasMore {
		ordered = ordered[:limit]
	}
	list := struct {
		Object  string            `json:"object"`
		Data    []json.RawMessage `json:"data"`
		FirstID *string           `json:"first_id"`
		LastID  *string           `json:"last_id"`
		HasMore bool              `json:"has_more"`
	}{Object: "list", Data: ordered, HasMore: hasMore}
	if len(ordered) > 0 {
		first, last := idOf(ordered[0]), idOf(ordered[len(ordered)-1])
		list.FirstID, list.LastID = &first, &last
	}
	return json.Marshal(list)
}
