package jsonw

import (
	"bytes"
	"errors"
	"strconv"
)

// ErrDecline is what a Reader returns for input it does not handle itself:
// malformed JSON, a value of another type than asked for, or anything else a
// fast path leaves to encoding/json. The caller then decodes with
// encoding/json, whose result (or error) is the answer.
var ErrDecline = errors.New("jsonw: left to encoding/json")

// maxDepth bounds nesting in skipped values.
const maxDepth = 512

// A Reader reads one JSON document field by field, for decoders of a known
// shape on the hot path. It validates everything it reads or skips, and
// declines (ErrDecline) rather than guess: a decoder built on it falls back
// to encoding/json whenever it declines, so it never has to reproduce
// encoding/json's leniencies, only agree with it on what it accepts.
type Reader struct {
	b []byte
	i int
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

func (r *Reader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (r *Reader) peek() byte {
	r.ws()
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

// End checks that only white space is left.
func (r *Reader) End() error {
	if r.ws(); r.i < len(r.b) {
		return ErrDecline
	}
	return nil
}

// Null consumes a null and reports whether there was one.
func (r *Reader) Null() bool {
	if r.peek() == 'n' && bytes.HasPrefix(r.b[r.i:], []byte("null")) {
		r.i += 4
		return true
	}
	return false
}

// Object reads an object, calling field for each key (unescaped keys only; a
// key with an escape declines) with the Reader at its value. field must
// consume the value (Skip, String, …).
func (r *Reader) Object(field func(key []byte) error) error {
	if r.peek() != '{' {
		return ErrDecline
	}
	r.i++
	if r.peek() == '}' {
		r.i++
		return nil
	}
	for {
		if r.peek() != '"' {
			return ErrDecline
		}
		key, ok := r.plainString()
		if !ok {
			return ErrDecline
		}
		if r.peek() != ':' {
			return ErrDecline
		}
		r.i++
		if err := field(key); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			return nil
		default:
			return ErrDecline
		}
	}
}

// Array reads an array, calling elem with the Reader at each element.
func (r *Reader) Array(elem func() error) error {
	if r.peek() != '[' {
		return ErrDecline
	}
	r.i++
	if r.peek() == ']' {
		r.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			return nil
		default:
			return ErrDecline
		}
	}
}

// String reads a string; null leaves it "" as encoding/json leaves a string
// field alone.
func (r *Reader) String() (string, error) {
	if r.Null() {
		return "", nil
	}
	if r.peek() != '"' {
		return "", ErrDecline
	}
	start := r.i
	if !r.skipString() {
		return "", ErrDecline
	}
	s, err := ReadString(r.b[start:r.i])
	if err != nil {
		return "", ErrDecline
	}
	return s, nil
}

// SkipString reads a string (or null) that the caller does not keep: String
// without the copy, accepting and declining exactly what String does.
func (r *Reader) SkipString() error {
	if r.Null() {
		return nil
	}
	if r.peek() != '"' || !r.skipString() {
		return ErrDecline
	}
	return nil
}

// StringIs reads a string (null reads as "", as in String) and reports
// whether it is s, an ASCII string; a string without escapes is compared in
// place, without a copy.
func (r *Reader) StringIs(s string) (bool, error) {
	if r.Null() {
		return s == "", nil
	}
	if r.peek() != '"' {
		return false, ErrDecline
	}
	start := r.i
	if !r.skipString() {
		return false, ErrDecline
	}
	if raw := r.b[start+1 : r.i-1]; bytes.IndexByte(raw, '\\') < 0 {
		// Without escapes the value is raw, but for invalid UTF-8, which
		// decodes to U+FFFD and so differs from ASCII s as raw does.
		return string(raw) == s, nil
	}
	v, err := ReadString(r.b[start:r.i])
	if err != nil {
		return false, ErrDecline
	}
	return v == s, nil
}

// Int reads an integer that fits in 64 bits (null is 0); a fraction or an
// exponent declines, as encoding/json refuses them for integer fields.
func (r *Reader) Int() (int64, error) {
	if r.Null() {
		return 0, nil
	}
	start := r.i
	if !r.skipNumber() {
		return 0, ErrDecline
	}
	n, err := strconv.ParseInt(string(r.b[start:r.i]), 10, 64)
	if err != nil {
		return 0, ErrDecline
	}
	return n, nil
}

// Skip reads any value, validating it.
func (r *Reader) Skip() error {
	if !r.skip(0) {
		return ErrDecline
	}
	return nil
}

func (r *Reader) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch r.peek() {
	case '"':
		return r.skipString()
	case '{':
		return r.Object(func([]byte) error {
			if !r.skip(depth + 1) {
				return ErrDecline
			}
			return nil
		}) == nil
	case '[':
		return r.Array(func() error {
			if !r.skip(depth + 1) {
				return ErrDecline
			}
			return nil
		}) == nil
	case 't':
		return r.literal("true")
	case 'f':
		return r.literal("false")
	case 'n':
		return r.literal("null")
	}
	return r.skipNumber()
}

func (r *Reader) literal(s string) bool {
	if bytes.HasPrefix(r.b[r.i:], []byte(s)) {
		r.i += len(s)
		return true
	}
	return false
}

// plainString reads a string without escapes and returns its bytes.
func (r *Reader) plainString() ([]byte, bool) {
	start := r.i + 1
	for j := start; j < len(r.b); j++ {
		switch c := r.b[j]; {
		case c == '"':
			r.i = j + 1
			return r.b[start:j], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// skipString moves past a string literal, checking its escapes.
func (r *Reader) skipString() bool {
	for j := r.i + 1; j < len(r.b); j++ {
		c := r.b[j]
		switch {
		case c == '"':
			r.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j >= len(r.b) {
				return false
			}
			switch r.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(r.b) {
					return false
				}
				for _, h := range r.b[j+1 : j+5] {
					if !isHex(h) {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// skipNumber moves past a number in JSON's grammar.
func (r *Reader) skipNumber() bool {
	b, j := r.b, r.i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && '1' <= b[j] && b[j] <= '9':
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
	default:
		return false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if j >= len(b) || b[j] < '0' || b[j] > '9' {
			return false
		}
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if j >= len(b) || b[j] < '0' || b[j] > '9' {
			return false
		}
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
	}
	r.i = j
	return true
}

// Float reads a number as a float64, as encoding/json reads one (null is 0,
// a number out of range declines).
func (r *Reader) Float() (float64, error) {
	if r.Null() {
		return 0, nil
	}
	start := r.i
	if !r.skipNumber() {
		return 0, ErrDecline
	}
	f, err := strconv.ParseFloat(string(r.b[start:r.i]), 64)
	if err != nil {
		return 0, ErrDecline
	}
	return f, nil
}

// Bool reads true or false (null is false).
func (r *Reader) Bool() (bool, error) {
	switch {
	case r.Null():
		return false, nil
	case r.peek() == 't' && r.literal("true"):
		return true, nil
	case r.peek() == 'f' && r.literal("false"):
		return false, nil
	}
	return false, ErrDecline
}
