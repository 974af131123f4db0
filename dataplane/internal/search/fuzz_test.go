package search_test

import (
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/search"
)

// FuzzParseRequest: any body either parses to a valid request or is refused
// with an invalid_request error; nothing panics.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{`{"query":"q"}`, `{"query":"q","max_results":5}`, `{"query":""}`, `{}`, `[]`, `null`,
		`{"query":"q","max_results":"5"}`, `{"query":"q","max_results":1e3}`, `{"query":"q"} {}`, `{"query":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := search.ParseRequest(body, 10)
		if err != nil {
			var ce *canonical.Error
			if !errors.As(err, &ce) || ce.Kind != canonical.KindInvalidRequest {
				t.Fatalf("refusal is not invalid_request: %v", err)
			}
			return
		}
		if r.Query == "" || !utf8.ValidString(r.Query) || utf8.RuneCountInString(r.Query) > search.MaxQueryChars {
			t.Fatalf("bad query accepted: %q", r.Query)
		}
		if r.MaxResults < 1 || r.MaxResults > search.MaxResultsLimit {
			t.Fatalf("max_results %d accepted", r.MaxResults)
		}
	})
}
