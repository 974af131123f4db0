package canonical

import "slices"

// Accumulator folds a stream of chunks into the Response a non-streamed request
// would have produced. The zero value is ready to use.
type Accumulator struct {
	choices []accChoice
	usage   *Usage
}

type accChoice struct {
	role      Role
	content   []byte
	reasoning []byte
	calls     []accCall
	finish    FinishReason
}

type accCall struct {
	index int
	id    string
	name  string
	args  []byte
}

// Add folds one chunk in.
func (a *Accumulator) Add(c Chunk) {
	if c.Usage != nil {
		u := *c.Usage
		a.usage = &u
	}
	if c.Choice < 0 {
		return
	}
	for len(a.choices) <= c.Choice {
		a.choices = append(a.choices, accChoice{})
	}
	ch := &a.choices[c.Choice]
	if c.Role != "" {
		ch.role = c.Role
	}
	ch.content = append(ch.content, c.Content...)
	ch.reasoning = append(ch.reasoning, c.Reasoning...)
	for _, d := range c.ToolCalls {
		i := slices.IndexFunc(ch.calls, func(k accCall) bool { return k.index == d.Index })
		if i < 0 {
			ch.calls = append(ch.calls, accCall{index: d.Index})
			i = len(ch.calls) - 1
		}
		call := &ch.calls[i]
		if d.ID != "" {
			call.id = d.ID
		}
		if d.Name != "" {
			call.name = d.Name
		}
		call.args = append(call.args, d.Arguments...)
	}
	if c.FinishReason != "" {
		ch.finish = c.FinishReason
	}
}

// Response returns what has been folded in so far.
func (a *Accumulator) Response() *Response {
	r := &Response{Usage: a.usage, Choices: make([]Choice, 0, len(a.choices))}
	for i := range a.choices {
		ch := &a.choices[i]
		m := Message{Role: ch.role, Reasoning: string(ch.reasoning)}
		if m.Role == "" {
			m.Role = RoleAssistant
		}
		if len(ch.content) > 0 {
			m.Content = []Part{TextPart(string(ch.content))}
		}
		slices.SortStableFunc(ch.calls, func(x, y accCall) int { return x.index - y.index })
		for j := range ch.calls {
			k := &ch.calls[j]
			m.ToolCalls = append(m.ToolCalls, ToolCall{ID: k.id, Name: k.name, Arguments: string(k.args)})
		}
		r.Choices = append(r.Choices, Choice{Index: i, Message: m, FinishReason: ch.finish})
	}
	return r
}
