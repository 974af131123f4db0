package modeljob

import (
	"testing"
)

// FuzzParsePullLine feeds arbitrary lines of Ollama's pull stream to the
// parser: it never panics, and a line it accepts has a status or an error.
func FuzzParsePullLine(f *testing.F) {
	for _, s := range []string{
		`{"status":"pulling manifest"}`,
		`{"status":"pulling a1b2c3","digest":"sha256:a1b2c3","total":2142590208,"completed":241970}`,
		`{"status":"success"}`,
		`{"error":"pull model manifest: file does not exist"}`,
		`{"status":1}`, `[]`, `null`, `{}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parsePullLine(b)
		if err == nil && l.Status == "" && l.Error == "" {
			t.Fatalf("accepted %q without status or error", b)
		}
	})
}

func TestPermanent(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&ollamaError{code: 400, message: "invalid model name"}, true},
		{&ollamaError{code: 404, message: "model 'x' not found"}, true},
		{&ollamaError{code: 429, message: "busy"}, false},
		{&ollamaError{code: 500, message: "internal"}, false},
		{&ollamaError{message: "pull model manifest: file does not exist"}, true},
		{&ollamaError{message: "max retries exceeded: EOF"}, false},
	} {
		if got := permanent(c.err); got != c.want {
			t.Errorf("permanent(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
