package jsonw

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stdlib is what encoding/json writes for v with HTML escaping off.
func stdlib(t testing.TB, v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(v))
	return string(bytes.TrimSuffix(b.Bytes(), []byte{'\n'}))
}

func TestStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "ctl \x00\x01\x1f\x7f", "\b\f\n\r\t",
		"<html> & friends", "é ü 中文 🙂", "bad \xff utf8 \xc3", "line\u2028sep\u2029", "\u00a0",
	} {
		assert.Equal(t, stdlib(t, s), string(String(nil, s)), "%q", s)
	}
}

func TestNumbersMatchEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 1.5, 1e-6, 1e-7, 123456789, 1e20, 1e21, 1e-9, -2.5e-8, 3.14159, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		assert.Equal(t, stdlib(t, f), string(Float(nil, f)), "%v", f)
		f32 := float32(f)
		if math.IsInf(float64(f32), 0) {
			continue
		}
		assert.Equal(t, stdlib(t, f32), string(Float32(nil, f32)), "%v", f32)
	}
	assert.Equal(t, "0", string(Float(nil, math.NaN())))
	assert.Equal(t, "0", string(Float32(nil, float32(math.Inf(-1)))))
	assert.Equal(t, stdlib(t, int64(-42)), string(Int(nil, -42)))
	assert.Equal(t, "true", string(Bool(nil, true)))
}

func TestStringEscapeHTMLMatchesMarshal(t *testing.T) {
	for _, s := range []string{"", "<a href='x'>&amp;</a>", "\x00\b\u2028\xff"} {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(StringEscapeHTML(nil, s)))
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00\b\f", "\xff\xfe", "\u2028", "<>&", "🙂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(String(nil, s)), stdlib(t, s); got != want {
			t.Fatalf("String(%q) = %s, encoding/json writes %s", s, got, want)
		}
		want, err := json.Marshal(s)
		if err != nil || string(StringEscapeHTML(nil, s)) != string(want) {
			t.Fatalf("StringEscapeHTML(%q) = %s, json.Marshal writes %s", s, StringEscapeHTML(nil, s), want)
		}
	})
}

func FuzzFloat(f *testing.F) {
	for _, v := range []float64{0, 1e-7, 1e21, 0.1, -3.5} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		if got, want := string(Float(nil, v)), stdlib(t, v); got != want {
			t.Fatalf("Float(%v) = %s, encoding/json writes %s", v, got, want)
		}
		if math.IsInf(float64(float32(v)), 0) {
			return
		}
		if got, want := string(Float32(nil, float32(v))), stdlib(t, float32(v)); got != want {
			t.Fatalf("Float32(%v) = %s, encoding/json writes %s", float32(v), got, want)
		}
	})
}

func TestReadStringMatchesEncodingJSON(t *testing.T) {
	for _, lit := range []string{`""`, `"plain"`, `"é 中 🙂"`, `"esc \" \\ \n \u00e9"`, "\"bad \xff\"", "\"ctl \x01\"", `"unterminated`, `x`, `"a"b"`} {
		got, gotErr := ReadString([]byte(lit))
		var want string
		wantErr := json.Unmarshal([]byte(lit), &want)
		assert.Equal(t, wantErr != nil, gotErr != nil, "%q", lit)
		if wantErr == nil {
			assert.Equal(t, want, got, "%q", lit)
		}
	}
}

func FuzzReadString(f *testing.F) {
	for _, s := range []string{`""`, `"a"`, `"\u2028"`, "\"\xff\"", `"\"`, `"é"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotErr := ReadString(b)
		var want string
		wantErr := json.Unmarshal(b, &want)
		if (gotErr != nil) != (wantErr != nil) || (wantErr == nil && got != want) {
			t.Fatalf("ReadString(%q) = %q, %v; encoding/json: %q, %v", b, got, gotErr, want, wantErr)
		}
	})
}

// FuzzSkipStringAndStringIs checks that the copy-free readers agree with
// String: the same input accepted, the same position after it, and StringIs
// true exactly when String reads the value compared with.
func FuzzSkipStringAndStringIs(f *testing.F) {
	for _, s := range []string{`"error"`, `"\u0065rror"`, `null`, `"err\"or"`, "\"\xffrror\"", `"chatcmpl-1" ,`, `1`, `"x`, `"error"}`} {
		f.Add([]byte(s), "error")
	}
	f.Add([]byte(`""`), "")
	f.Fuzz(func(t *testing.T, b []byte, s string) {
		for _, c := range []byte(s) {
			if c >= 0x80 {
				return // StringIs compares with ASCII strings only
			}
		}
		want, wantErr := NewReader(b).String()
		r := NewReader(b)
		rs := NewReader(b)
		_, _ = rs.String()
		if err := r.SkipString(); (err != nil) != (wantErr != nil) || (err == nil && r.i != rs.i) {
			t.Fatalf("SkipString(%q) = %v at %d; String: %v at %d", b, err, r.i, wantErr, rs.i)
		}
		is, err := NewReader(b).StringIs(s)
		if (err != nil) != (wantErr != nil) || (err == nil && is != (want == s)) {
			t.Fatalf("StringIs(%q, %q) = %t, %v; String: %q, %v", b, s, is, err, want, wantErr)
		}
	})
}
