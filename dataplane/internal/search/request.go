package search

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// MaxQueryChars bounds a query (the original's limit).
const MaxQueryChars = 2000

// MaxResultsLimit is the most results one search may ask for.
const MaxResultsLimit = 50

// Request is a parsed search request.
type Request struct {
	Query      string `json:"query"`
	MaxResults int    `json:"max_results"`
}

// ParseRequest decodes a /v1/search body: {"query": "…", "max_results": n}.
// max_results defaults to def and must lie in 1..MaxResultsLimit. Refusals are
// *canonical.Error (invalid_request).
func ParseRequest(body []byte, def int) (Request, error) {
	var raw struct {
		Query      *string          `json:"query"`
		MaxResults *json.RawMessage `json:"max_results"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return Request{}, canonical.Invalid("", "the body is not a JSON object: "+err.Error())
	}
	if dec.More() {
		return Request{}, canonical.Invalid("", "the body holds more than one JSON value")
	}
	if raw.Query == nil {
		return Request{}, canonical.Invalid("query", "query is required")
	}
	return newRequest(*raw.Query, raw.MaxResults, def)
}

func newRequest(query string, maxResults *json.RawMessage, def int) (Request, error) {
	q := strings.TrimSpace(query)
	switch {
	case q == "":
		return Request{}, canonical.Invalid("query", "query must not be empty")
	case !utf8.ValidString(q):
		return Request{}, canonical.Invalid("query", "query must be valid UTF-8")
	case utf8.RuneCountInString(q) > MaxQueryChars:
		return Request{}, canonical.Invalid("query", "query is longer than 2000 characters")
	}
	n := def
	if maxResults != nil && string(*maxResults) != "null" {
		if err := json.Unmarshal(*maxResults, &n); err != nil {
			return Request{}, canonical.Invalid("max_results", "max_results must be an integer")
		}
		if n < 1 || n > MaxResultsLimit {
			return Request{}, canonical.Invalid("max_results", "max_results must be between 1 and 50")
		}
	}
	return Request{Query: q, MaxResults: min(max(n, 1), MaxResultsLimit)}, nil
}

// NewRequest validates a query and a result count given as arguments (the MCP
// tool's); n of 0 takes def.
func NewRequest(query string, n, def int) (Request, error) {
	if n == 0 {
		return newRequest(query, nil, def)
	}
	raw := json.RawMessage(mustInt(n))
	return newRequest(query, &raw, def)
}

func mustInt(n int) []byte {
	b, _ := json.Marshal(n)
	return b
}
