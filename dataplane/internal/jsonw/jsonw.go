// Package jsonw appends JSON values to byte slices without reflection, for the
// encoders on the hot path (chat answers, stream chunks, engine requests), and
// reads JSON strings without a second pass where it can. Its output is byte for
// byte what encoding/json writes with SetEscapeHTML(false), and what it reads
// is what encoding/json reads: the tests and fuzz targets compare the two.
package jsonw

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// String appends s as a JSON string. It escapes what JSON requires (quote,
// backslash, control characters, with the short forms \b \f \n \r \t),
// replaces invalid UTF-8 with U+FFFD and escapes U+2028 and U+2029, as
// encoding/json does; <, > and & are left as they are.
func String(dst []byte, s string) []byte { return appendString(dst, s, false) }

// StringEscapeHTML appends s as a JSON string as json.Marshal writes it: as
// String does, and with <, > and & escaped as \u003c, \u003e and \u0026.
func StringEscapeHTML(dst []byte, s string) []byte { return appendString(dst, s, true) }

func appendString(dst []byte, s string, escapeHTML bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!escapeHTML || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Int appends n in decimal.
func Int(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }

// Bool appends true or false.
func Bool(dst []byte, b bool) []byte { return strconv.AppendBool(dst, b) }

// Float appends f as encoding/json writes a float64: the shortest
// representation, in exponent form below 1e-6 and from 1e21. NaN and the
// infinities, which JSON cannot carry (encoding/json refuses them) and no
// engine sends, are written as 0, so that an array of numbers stays one.
func Float(dst []byte, f float64) []byte { return appendFloat(dst, f, 64) }

// Float32 appends f as encoding/json writes a float32 (the shortest text that
// reads back as the same float32); NaN and the infinities are written as 0.
func Float32(dst []byte, f float32) []byte { return appendFloat(dst, float64(f), 32) }

// appendFloat is encoding/json's float encoder for the given bit size.
func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, '0')
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// 1e-07 becomes 1e-7, as encoding/json writes it.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// ReadString decodes the JSON string literal b (as an UnmarshalJSON method
// receives it). A literal without escapes, control characters or invalid
// UTF-8, which is almost every one, is copied out directly; anything else is
// left to encoding/json, whose result and errors it returns.
func ReadString(b []byte) (string, error) {
	if n := len(b); n >= 2 && b[0] == '"' && b[n-1] == '"' {
		inner := b[1 : n-1]
		plain := true
		for _, c := range inner {
			if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
				plain = false
				break
			}
		}
		if plain || (utf8.Valid(inner) && !hasSpecial(inner)) {
			return string(inner), nil
		}
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// hasSpecial reports whether b holds a byte that a plain JSON string literal
// cannot: a quote, a backslash or a control character.
func hasSpecial(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '"' || c == '\\' {
			return true
		}
	}
	return false
}
