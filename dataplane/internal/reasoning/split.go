package reasoning

import "strings"

const (
	openTag  = "<think>"
	closeTag = "</think>"
)

type state uint8

const (
	// stateStart: nothing but whitespace and a partial "<think>" seen yet.
	stateStart state = iota
	// stateThink: inside the block.
	stateThink
	// stateAfter: the block closed; whitespace before the answer is dropped.
	stateAfter
	// statePass: everything from here on is content.
	statePass
)

// Splitter splits one streamed answer (one choice) into reasoning and
// content. The zero value is ready. A Splitter is not safe for concurrent use.
type Splitter struct {
	st  state
	buf string // text held back: leading whitespace, a partial tag, trailing whitespace
	// thought is set once reasoning text has been released from the block.
	thought bool
}

// Push takes the next piece of answer text and returns what can be released
// now as reasoning and as content; the rest is held until more text comes or
// Flush is called.
func (s *Splitter) Push(text string) (reasoning, content string) {
	if text == "" {
		return "", ""
	}
	switch s.st {
	case statePass:
		return "", text
	case stateStart:
		s.buf += text
		t := strings.TrimLeft(s.buf, whitespace)
		switch {
		case t == "" || (len(t) < len(openTag) && strings.HasPrefix(openTag, t)):
			return "", ""
		case strings.HasPrefix(t, openTag):
			s.st, s.buf = stateThink, ""
			return s.Push(t[len(openTag):])
		}
		s.st = statePass
		content, s.buf = s.buf, ""
		return "", content
	case stateThink:
		if !s.thought && s.buf == "" {
			text = strings.TrimLeft(text, whitespace)
		}
		s.buf += text
		if i := strings.Index(s.buf, closeTag); i >= 0 {
			reasoning = strings.TrimRight(s.buf[:i], whitespace)
			rest := s.buf[i+len(closeTag):]
			s.st, s.buf = stateAfter, ""
			_, content = s.Push(rest)
			return reasoning, content
		}
		keep := len(s.buf) - partialSuffix(s.buf, closeTag)
		reasoning = s.buf[:keep]
		s.buf = s.buf[keep:]
		if reasoning != "" {
			s.thought = true
		}
		return reasoning, ""
	}
	// stateAfter
	text = strings.TrimLeft(text, whitespace)
	if text == "" {
		return "", ""
	}
	s.st = statePass
	return "", text
}

// Flush ends the answer (or the search for a block): it returns whatever is
// held back, and later pushes pass through as content. Text held inside an
// unterminated block (an answer cut off while reasoning) is reasoning.
func (s *Splitter) Flush() (reasoning, content string) {
	held := s.buf
	s.buf = ""
	st := s.st
	s.st = statePass
	switch st {
	case stateStart:
		return "", held
	case stateThink:
		return strings.TrimRight(held, whitespace), ""
	}
	return "", ""
}

// Active reports whether the splitter is still looking at the start of the
// answer or inside a block, that is, whether Push may change text.
func (s *Splitter) Active() bool { return s.st != statePass }

// Split splits a whole answer: the reasoning of a leading <think> block and
// the content after it. ok is false, and content is text unchanged, when the
// answer does not start with a block.
func Split(text string) (reasoning, content string, ok bool) {
	t := strings.TrimLeft(text, whitespace)
	if !strings.HasPrefix(t, openTag) {
		return "", text, false
	}
	var s Splitter
	r1, c1 := s.Push(text)
	r2, c2 := s.Flush()
	return r1 + r2, c1 + c2, true
}

const whitespace = " \t\r\n"

// partialSuffix returns the length of the longest suffix of s that is a
// proper prefix of tag, plus any whitespace right before it, so that neither a
// split tag nor the whitespace before the closing tag is released early.
func partialSuffix(s, tag string) int {
	n := 0
	for k := min(len(tag)-1, len(s)); k > 0; k-- {
		if strings.HasSuffix(s, tag[:k]) {
			n = k
			break
		}
	}
	rest := s[:len(s)-n]
	return n + len(rest) - len(strings.TrimRight(rest, whitespace))
}
