package tokens

import "github.com/mindrouter/mindrouter/dataplane/internal/canonical"

const (
	// charsPerToken is the usual ratio for English text with BPE tokenizers.
	charsPerToken = 4
	// perMessage covers the role markers and separators a chat template adds.
	perMessage = 4
	// perRequest covers the assistant turn's opening tokens.
	perRequest = 3
	// PerImage is what a high-detail 1024×1024 image costs on OpenAI's scale; local
	// vision models are in the same range.
	PerImage = 765
)

// FromChars estimates the tokens of n characters of text (rounded up).
func FromChars(n int) int64 {
	return int64((n + charsPerToken - 1) / charsPerToken)
}

// Prompt estimates the prompt tokens of a chat request: its text, tool calls and
// tool definitions by length, plus per-message and per-image overheads.
func Prompt(req *canonical.Request) int64 {
	chars := 0
	var n int64 = perRequest
	for i := range req.Messages {
		m := &req.Messages[i]
		n += perMessage
		chars += len(m.Reasoning) + len(m.Name)
		for _, p := range m.Content {
			switch p.Type {
			case canonical.PartText:
				chars += len(p.Text)
			case canonical.PartImage:
				n += PerImage
			}
		}
		for _, tc := range m.ToolCalls {
			chars += len(tc.Name) + len(tc.Arguments)
		}
	}
	for _, t := range req.Tools {
		chars += len(t.Name) + len(t.Description) + len(t.Parameters)
	}
	if rf := req.ResponseFormat; rf != nil {
		chars += len(rf.Schema)
	}
	return n + FromChars(chars)
}

// Counter counts the characters of a streamed answer to estimate its tokens
// when the engine reports no usage. The zero value is ready to use.
type Counter struct {
	chars int
}

// Add counts one chunk.
func (c *Counter) Add(ch *canonical.Chunk) {
	c.chars += len(ch.Content) + len(ch.Reasoning)
	for _, d := range ch.ToolCalls {
		c.chars += len(d.Name) + len(d.Arguments)
	}
}

// AddResponse counts a whole answer.
func (c *Counter) AddResponse(r *canonical.Response) {
	for i := range r.Choices {
		m := &r.Choices[i].Message
		c.chars += len(m.Reasoning)
		for _, p := range m.Content {
			c.chars += len(p.Text)
		}
		for _, tc := range m.ToolCalls {
			c.chars += len(tc.Name) + len(tc.Arguments)
		}
	}
}

// Tokens returns the estimate so far.
func (c *Counter) Tokens() int64 { return FromChars(c.chars) }
