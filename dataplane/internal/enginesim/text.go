package enginesim

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// tokKind is what a generated token belongs to.
type tokKind uint8

const (
	tokContent tokKind = iota
	tokThinking
	tokTool
)

// token is one generated token: one streamed chunk.
type token struct {
	kind tokKind
	text string
	tool int // index into plan.calls for tokTool
}

// plan is what a generation will emit.
type plan struct {
	tokens []token
	// calls are all scripted tool calls, with ids filled in; complete
	// reports which of them fit in the token limit.
	calls    []ToolCall
	complete []bool
	// finish is the OpenAI finish reason: "stop", "length" or "tool_calls".
	finish string
	// status and errMsg describe a scripted engine error (status >= 400).
	status int
	errMsg string
	// drop asks for the connection to be closed after the first token.
	drop bool
}

// text returns the concatenated text of the tokens of kind k.
func (p *plan) text(k tokKind) string {
	var b strings.Builder
	for _, t := range p.tokens {
		if t.kind == k {
			b.WriteString(t.text)
		}
	}
	return b.String()
}

// completeCalls returns the tool calls whose arguments were fully emitted.
func (p *plan) completeCalls() []ToolCall {
	var out []ToolCall
	for i, c := range p.calls {
		if p.complete[i] {
			out = append(out, c)
		}
	}
	return out
}

// DefaultText returns the text the simulator generates for n tokens of an
// unscripted reply: "sim token 1 sim token 2 … sim token n".
func DefaultText(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(defaultToken(i))
	}
	return b.String()
}

func defaultToken(i int) string {
	if i == 0 {
		return "sim token 1"
	}
	return fmt.Sprintf(" sim token %d", i+1)
}

// PromptTokens is the simulator's prompt token count for messages: for
// each message, ceil(characters/4) of its content plus 3 for the chat
// template.
func PromptTokens(msgs []Message) int {
	n := 0
	for _, m := range msgs {
		n += textTokens(m.Content) + 3
	}
	return n
}

// textTokens estimates the tokens of s as ceil(characters/4).
func textTokens(s string) int {
	return (utf8.RuneCountInString(s) + 3) / 4
}

// makePlan decides what a generation request produces. maxTokens <= 0
// means no limit; thinking selects whether reasoning text is emitted.
func (s *Server) makePlan(req Request, maxTokens int, thinking bool, newID func() string) plan {
	var reply *Reply
	if s.cfg.Script != nil {
		reply = s.cfg.Script(req)
	}
	var p plan
	if reply == nil {
		if schema, ok := formatSchema(req.Format); ok {
			// A constrained decoder emits JSON valid for the schema.
			for _, f := range splitFragments(schemaJSON(schema)) {
				p.tokens = append(p.tokens, token{kind: tokContent, text: f})
			}
		} else {
			for i := range s.cfg.CompletionTokens {
				p.tokens = append(p.tokens, token{kind: tokContent, text: defaultToken(i)})
			}
		}
	} else {
		if reply.Status >= 400 {
			p.status, p.errMsg = reply.Status, reply.ErrorMessage
			if p.errMsg == "" {
				p.errMsg = "simulated engine error"
			}
			return p
		}
		p.drop = reply.ErrorMessage == DropConnection
		if thinking {
			for _, w := range splitWords(reply.Thinking) {
				p.tokens = append(p.tokens, token{kind: tokThinking, text: w})
			}
		}
		for _, w := range splitWords(reply.Content) {
			p.tokens = append(p.tokens, token{kind: tokContent, text: w})
		}
		for i, c := range reply.ToolCalls {
			if c.ID == "" {
				c.ID = newID()
			}
			if strings.TrimSpace(c.Arguments) == "" {
				c.Arguments = "{}"
			}
			p.calls = append(p.calls, c)
			for _, f := range splitFragments(c.Arguments) {
				p.tokens = append(p.tokens, token{kind: tokTool, text: f, tool: i})
			}
		}
	}
	p.complete = make([]bool, len(p.calls))
	truncated := maxTokens > 0 && len(p.tokens) > maxTokens
	if truncated {
		p.tokens = p.tokens[:maxTokens]
	}
	for i := range p.calls {
		p.complete[i] = !truncated
	}
	if truncated && len(p.calls) > 0 { // calls that ended before the cut are complete
		seen := make([]int, len(p.calls))
		for _, t := range p.tokens {
			if t.kind == tokTool {
				seen[t.tool]++
			}
		}
		for i, c := range p.calls {
			p.complete[i] = seen[i] == len(splitFragments(c.Arguments))
		}
	}
	switch {
	case truncated:
		p.finish = "length"
	case reply != nil && reply.FinishReason != "":
		p.finish = reply.FinishReason
	case len(p.calls) > 0:
		p.finish = "tool_calls"
	default:
		p.finish = "stop"
	}
	return p
}

// splitWords splits s into tokens that concatenate back to s: each is a run
// of spaces followed by a run of non-spaces.
func splitWords(s string) []string {
	var out []string
	start, inWord := 0, false
	for i, r := range s {
		space := unicode.IsSpace(r)
		if space && inWord {
			out = append(out, s[start:i])
			start, inWord = i, false
		} else if !space {
			inWord = true
		}
	}
	if start < len(s) {
		if !inWord && len(out) > 0 { // trailing spaces join the last word
			out[len(out)-1] += s[start:]
		} else {
			out = append(out, s[start:])
		}
	}
	return out
}

// splitFragments splits JSON arguments into at least three pieces (fewer
// only for shorter text) of about eight bytes, as a tool-call parser
// streams them.
func splitFragments(s string) []string {
	runes := []rune(s)
	n := max(3, (len(runes)+7)/8)
	n = min(n, len(runes))
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, string(runes[i*len(runes)/n:(i+1)*len(runes)/n]))
	}
	return out
}

// pace sleeps before token i: TTFT before the first, the inter-token delay
// before the others. It returns false when ctx ends first.
func (s *Server) pace(ctx context.Context, i int) bool {
	d := s.cfg.InterTokenDelay
	if i == 0 {
		d = s.cfg.TTFT
	}
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// embedding returns a deterministic vector of dim values for text; when
// normalize is set it has unit length.
func embedding(text string, dim int, normalize bool) []float64 {
	h := fnv64(text)
	v := make([]float64, dim)
	var norm float64
	for i := range v {
		h ^= h >> 33
		h *= 0xff51afd7ed558ccd
		h ^= h >> 29
		x := float64(h%20000)/10000 - 1 // [-1, 1)
		v[i] = x
		norm += x * x
	}
	if normalize && norm > 0 {
		norm = math.Sqrt(norm)
		for i := range v {
			v[i] /= norm
		}
	}
	return v
}

// similarity is a deterministic relevance score in (0, 1) of doc for query:
// higher when they share more words.
func similarity(query, doc string) float64 {
	words := map[string]bool{}
	for _, w := range strings.Fields(strings.ToLower(query)) {
		words[w] = true
	}
	shared := 0
	for _, w := range strings.Fields(strings.ToLower(doc)) {
		if words[w] {
			shared++
		}
	}
	jitter := float64(fnv64(query+"\x00"+doc)%1000) / 100000
	return 1 - 1/(2+float64(shared)) - jitter
}

func fnv64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// tokenIDs returns n deterministic token ids for text.
func tokenIDs(text string, n int) []int {
	ids := make([]int, n)
	h := fnv64(text)
	for i := range ids {
		h = h*6364136223846793005 + 1442695040888963407
		ids[i] = int(h>>40) % 32000
	}
	return ids
}
