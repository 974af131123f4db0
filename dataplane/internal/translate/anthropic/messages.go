package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// decodeSystem turns the top-level system prompt (a string or text blocks)
// into one system message; nil when there is none.
func decodeSystem(c *Content) (*canonical.Message, error) {
	var parts []canonical.Part
	switch c.Kind {
	case ContentNull:
		return nil, nil
	case ContentString:
		if c.Text == "" {
			return nil, nil
		}
		parts = []canonical.Part{canonical.TextPart(c.Text)}
	case ContentBlocks:
		for i, b := range c.Blocks {
			if b.Type != "text" {
				return nil, canonical.Invalid(fmt.Sprintf("system.%d.type", i),
					fmt.Sprintf("system.%d.type: system blocks must be text blocks; got %q", i, b.Type))
			}
			parts = append(parts, canonical.TextPart(b.Text))
		}
		if len(parts) == 0 {
			return nil, nil
		}
	}
	return &canonical.Message{Role: canonical.RoleSystem, Content: parts}, nil
}

// decodeMessages appends the conversation to out. A user message's
// tool_result blocks become tool messages, placed first (chat templates want
// them right after the assistant's calls), followed by a user message with the
// rest of its blocks; an assistant message's thinking becomes its reasoning,
// redacted thinking is dropped.
func decodeMessages(out []canonical.Message, msgs []Message) ([]canonical.Message, error) {
	var err error
	for i := range msgs {
		m := &msgs[i]
		p := fmt.Sprintf("messages.%d", i)
		if m.Content.Kind == ContentNull {
			return nil, canonical.Invalid(p+".content", p+".content: Field required")
		}
		switch m.Role {
		case "user":
			out, err = appendUser(out, p, &m.Content)
		case "assistant":
			out, err = appendAssistant(out, p, &m.Content)
		case "":
			return nil, canonical.Invalid(p+".role", p+".role: Field required")
		default:
			return nil, canonical.Invalid(p+".role", fmt.Sprintf(`%s.role: must be "user" or "assistant"; got %q`, p, m.Role))
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func appendUser(out []canonical.Message, p string, c *Content) ([]canonical.Message, error) {
	if c.Kind == ContentString {
		return append(out, canonical.Message{Role: canonical.RoleUser, Content: textParts(c.Text)}), nil
	}
	var parts []canonical.Part
	for j := range c.Blocks {
		b := &c.Blocks[j]
		bp := fmt.Sprintf("%s.content.%d", p, j)
		switch b.Type {
		case "text":
			parts = append(parts, canonical.TextPart(b.Text))
		case "image":
			im, err := decodeImage(bp+".source", b.Source)
			if err != nil {
				return nil, err
			}
			parts = append(parts, canonical.Part{Type: canonical.PartImage, Image: im})
		case "document":
			text, err := decodeDocument(bp+".source", b.Source)
			if err != nil {
				return nil, err
			}
			parts = append(parts, canonical.TextPart(text))
		case "tool_result":
			msg, images, err := decodeToolResult(bp, b)
			if err != nil {
				return nil, err
			}
			out = append(out, msg)
			parts = append(parts, images...)
		case "tool_use", "thinking", "redacted_thinking":
			return nil, canonical.Invalid(bp+".type", fmt.Sprintf("%s.type: %s blocks are only allowed in assistant messages", bp, b.Type))
		default:
			return nil, unsupportedBlock(bp, b.Type)
		}
	}
	if len(parts) > 0 || len(c.Blocks) == 0 {
		out = append(out, canonical.Message{Role: canonical.RoleUser, Content: parts})
	}
	return out, nil
}

func appendAssistant(out []canonical.Message, p string, c *Content) ([]canonical.Message, error) {
	m := canonical.Message{Role: canonical.RoleAssistant}
	if c.Kind == ContentString {
		m.Content = textParts(c.Text)
		return append(out, m), nil
	}
	var reasoning []string
	for j := range c.Blocks {
		b := &c.Blocks[j]
		bp := fmt.Sprintf("%s.content.%d", p, j)
		switch b.Type {
		case "text":
			m.Content = append(m.Content, canonical.TextPart(b.Text))
		case "thinking":
			if b.Thinking != "" {
				reasoning = append(reasoning, b.Thinking)
			}
		case "redacted_thinking":
			// Encrypted by Anthropic; no other engine can read it.
		case "tool_use":
			tc, err := decodeToolUse(bp, b)
			if err != nil {
				return nil, err
			}
			m.ToolCalls = append(m.ToolCalls, tc)
		case "image", "document", "tool_result":
			return nil, canonical.Invalid(bp+".type", fmt.Sprintf("%s.type: %s blocks are only allowed in user messages", bp, b.Type))
		default:
			return nil, unsupportedBlock(bp, b.Type)
		}
	}
	m.Reasoning = strings.Join(reasoning, "\n")
	return append(out, m), nil
}

func unsupportedBlock(bp, typ string) error {
	if typ == "" {
		return canonical.Invalid(bp+".type", bp+".type: Field required")
	}
	return canonical.Invalid(bp+".type", fmt.Sprintf("%s.type: content block type %q is not supported by this gateway", bp, typ))
}

func textParts(s string) []canonical.Part {
	if s == "" {
		return nil
	}
	return []canonical.Part{canonical.TextPart(s)}
}

func decodeToolUse(bp string, b *ContentBlock) (canonical.ToolCall, error) {
	if b.ID == "" {
		return canonical.ToolCall{}, canonical.Invalid(bp+".id", bp+".id: Field required")
	}
	if b.Name == "" {
		return canonical.ToolCall{}, canonical.Invalid(bp+".name", bp+".name: Field required")
	}
	args := "{}"
	if in := bytes.TrimSpace(b.Input); len(in) > 0 && !bytes.Equal(in, []byte("null")) {
		if in[0] != '{' {
			return canonical.ToolCall{}, canonical.Invalid(bp+".input", bp+".input: must be an object")
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, in); err != nil {
			return canonical.ToolCall{}, canonical.Invalid(bp+".input", bp+".input: must be an object")
		}
		args = buf.String()
	}
	return canonical.ToolCall{ID: b.ID, Name: b.Name, Arguments: args}, nil
}

// decodeToolResult returns the tool message for a tool_result block and its
// images, which the caller moves to the following user message: engines take
// images in user messages only.
func decodeToolResult(bp string, b *ContentBlock) (canonical.Message, []canonical.Part, error) {
	if b.ToolUseID == "" {
		return canonical.Message{}, nil, canonical.Invalid(bp+".tool_use_id", bp+".tool_use_id: Field required")
	}
	msg := canonical.Message{Role: canonical.RoleTool, ToolCallID: b.ToolUseID}
	if b.Content == nil {
		return msg, nil, nil
	}
	if b.Content.Kind == ContentString {
		msg.Content = textParts(b.Content.Text)
		return msg, nil, nil
	}
	var images []canonical.Part
	for k := range b.Content.Blocks {
		nb := &b.Content.Blocks[k]
		np := fmt.Sprintf("%s.content.%d", bp, k)
		switch nb.Type {
		case "text":
			msg.Content = append(msg.Content, canonical.TextPart(nb.Text))
		case "image":
			im, err := decodeImage(np+".source", nb.Source)
			if err != nil {
				return canonical.Message{}, nil, err
			}
			images = append(images, canonical.Part{Type: canonical.PartImage, Image: im})
		case "document":
			text, err := decodeDocument(np+".source", nb.Source)
			if err != nil {
				return canonical.Message{}, nil, err
			}
			msg.Content = append(msg.Content, canonical.TextPart(text))
		default:
			return canonical.Message{}, nil, unsupportedBlock(np, nb.Type)
		}
	}
	return msg, images, nil
}

// decodeImage reads a base64 or url source; a data: URL given as a url source
// is read as inline data.
func decodeImage(param string, s *Source) (*canonical.Image, error) {
	if s == nil {
		return nil, canonical.Invalid(param, param+": Field required")
	}
	switch s.Type {
	case "base64":
		if s.Data == "" {
			return nil, canonical.Invalid(param+".data", param+".data: Field required")
		}
		if s.MediaType == "" {
			return nil, canonical.Invalid(param+".media_type", param+".media_type: Field required")
		}
		return &canonical.Image{MediaType: s.MediaType, Data: s.Data}, nil
	case "url":
		return decodeImageURL(param+".url", s.URL)
	case "file":
		return nil, canonical.Invalid(param+".type", param+".type: file sources (the Files API) are not supported by this gateway; send the image as base64 or by URL")
	case "":
		return nil, canonical.Invalid(param+".type", param+".type: Field required")
	}
	return nil, canonical.Invalid(param+".type", fmt.Sprintf(`%s.type: must be "base64" or "url"; got %q`, param, s.Type))
}

func decodeImageURL(param, url string) (*canonical.Image, error) {
	if rest, ok := strings.CutPrefix(url, "data:"); ok {
		meta, data, found := strings.Cut(rest, ",")
		mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
		if !found || !isBase64 || data == "" {
			return nil, canonical.Invalid(param, param+": data URLs must look like data:<media type>;base64,<data>")
		}
		return &canonical.Image{MediaType: mediaType, Data: data}, nil
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, canonical.Invalid(param, param+": image URLs must be http(s) or base64 data: URLs")
	}
	return &canonical.Image{URL: url}, nil
}

// decodeDocument reads a plain-text document ("text" or "content" source) as
// text; PDFs and files are refused, since no engine here reads them.
func decodeDocument(param string, s *Source) (string, error) {
	if s == nil {
		return "", canonical.Invalid(param, param+": Field required")
	}
	switch s.Type {
	case "text":
		return s.Data, nil
	case "content":
		if s.Content == nil {
			return "", nil
		}
		if s.Content.Kind == ContentString {
			return s.Content.Text, nil
		}
		texts := make([]string, 0, len(s.Content.Blocks))
		for k, b := range s.Content.Blocks {
			if b.Type != "text" {
				return "", canonical.Invalid(fmt.Sprintf("%s.content.%d.type", param, k),
					fmt.Sprintf("%s.content.%d.type: document content must be text blocks; got %q", param, k, b.Type))
			}
			texts = append(texts, b.Text)
		}
		return strings.Join(texts, "\n"), nil
	}
	return "", canonical.Invalid(param+".type",
		fmt.Sprintf(`%s.type: only plain-text documents ("text" or "content" sources) are supported; got %q`, param, s.Type))
}
