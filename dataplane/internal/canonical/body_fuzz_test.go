package canonical_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// maxEchoed is the longest message an echoed input can produce: MaxEcho bytes
// of input, the ellipsis and the "(N bytes)" note, plus the fixed wording
// around it.
const maxEchoed = canonical.MaxEcho + 200

// FuzzRequestBody feeds arbitrary bodies and Content-Types through the checks
// every surface runs before and while decoding: nothing panics, a refusal is a
// client error, and no message leaks Go's wording or repeats more than the
// echo cap of the client's input.
func FuzzRequestBody(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"model":"m","messages":["hi"]}`},
		{"", `{"model":1}`},
		{"text/plain", `{"model":"m"}`},
		{"application/vnd.api+json; charset=utf-8", `[1,2]`},
		{"application/x-www-form-urlencoded", `{"model":`},
		{"application/json", "{\"model\":\"\xff\xfe\"}"},
		{"multipart/form-data; boundary=\"", `{}`},
		{"application/json", `{"model":"` + strings.Repeat("x", 2048) + `"}`},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		r, err := http.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
		if err != nil {
			t.Skip()
		}
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if ce := canonical.CheckJSONBody(r, body); ce != nil {
			checkClientError(t, ce)
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("invalid UTF-8 accepted: %q", body)
		}
		var w wire
		if err := json.Unmarshal(body, &w); err != nil {
			checkClientError(t, canonical.DecodeError(err))
		}
	})
}

func checkClientError(t *testing.T, ce *canonical.Error) {
	t.Helper()
	if ce.Kind != canonical.KindInvalidRequest {
		t.Fatalf("kind %v, want invalid request: %s", ce.Kind, ce.Message)
	}
	if ce.Status != 0 && (ce.Status < 400 || ce.Status > 499) {
		t.Fatalf("status %d is not a client error: %s", ce.Status, ce.Message)
	}
	if len(ce.Message) > maxEchoed {
		t.Fatalf("message of %d bytes echoes too much", len(ce.Message))
	}
	for _, leak := range []string{"Go value", "canonical_test.wire", "json: "} {
		if strings.Contains(ce.Message, leak) {
			t.Fatalf("message leaks %q: %s", leak, ce.Message)
		}
	}
}
