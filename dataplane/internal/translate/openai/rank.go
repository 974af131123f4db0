package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/jsonw"
)

// RerankRequest is the body of POST /v1/rerank (vLLM's, which is Cohere's
// and Jina's): documents are strings or {"text": …} objects.
type RerankRequest struct {
	Model           string            `json:"model"`
	Query           *string           `json:"query"`
	Documents       []json.RawMessage `json:"documents"`
	TopN            *int              `json:"top_n,omitempty"`
	ReturnDocuments *bool             `json:"return_documents,omitempty"`
	User            string            `json:"user,omitempty"`
}

// DecodeRerankRequest parses a POST /v1/rerank body. return_documents
// defaults to true, as vLLM always returns them.
func DecodeRerankRequest(body []byte) (*canonical.RerankRequest, error) {
	var w RerankRequest
	if err := decodeObject(body, &w); err != nil {
		return nil, err
	}
	if strings.TrimSpace(w.Model) == "" {
		return nil, canonical.Invalid("model", "you must provide a model parameter")
	}
	if w.Query == nil {
		return nil, canonical.Invalid("query", "query is required")
	}
	switch {
	case len(w.Documents) == 0:
		return nil, canonical.Invalid("documents", "documents must be a non-empty array")
	case len(w.Documents) > MaxRerankDocuments:
		return nil, canonical.Invalid("documents",
			fmt.Sprintf("documents may hold at most %d entries; got %d", MaxRerankDocuments, len(w.Documents)))
	}
	req := &canonical.RerankRequest{Model: w.Model, Query: *w.Query, ReturnDocuments: true, User: w.User,
		Documents: make([]string, 0, len(w.Documents))}
	for i, raw := range w.Documents {
		d, err := documentText(raw)
		if err != nil {
			return nil, canonical.Invalid(fmt.Sprintf("documents[%d]", i), "each document must be a string or {\"text\": string}")
		}
		req.Documents = append(req.Documents, d)
	}
	if w.TopN != nil {
		if *w.TopN < 0 {
			return nil, canonical.Invalid("top_n", "top_n must not be negative")
		}
		req.TopN = *w.TopN
	}
	if w.ReturnDocuments != nil {
		req.ReturnDocuments = *w.ReturnDocuments
	}
	return req, nil
}

func documentText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	var s string
	if len(raw) > 0 && raw[0] == '"' {
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var obj struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Text == nil {
		return "", fmt.Errorf("not a document")
	}
	return *obj.Text, nil
}

// ScoreRequest is the body of POST /v1/score (vLLM's): text_1 and text_2 are
// each a string or an array of strings.
type ScoreRequest struct {
	Model string          `json:"model"`
	Text1 json.RawMessage `json:"text_1"`
	Text2 json.RawMessage `json:"text_2"`
	User  string          `json:"user,omitempty"`
}

// DecodeScoreRequest parses a POST /v1/score body: one text_1 is scored
// against every text_2, or text_1[i] against text_2[i] when both lists have
// the same length.
func DecodeScoreRequest(body []byte) (*canonical.ScoreRequest, error) {
	var w ScoreRequest
	if err := decodeObject(body, &w); err != nil {
		return nil, err
	}
	if strings.TrimSpace(w.Model) == "" {
		return nil, canonical.Invalid("model", "you must provide a model parameter")
	}
	left, err := stringOrList("text_1", w.Text1, MaxScorePairs)
	if err != nil {
		return nil, err
	}
	right, err := stringOrList("text_2", w.Text2, MaxScorePairs)
	if err != nil {
		return nil, err
	}
	if len(left) != 1 && len(left) != len(right) {
		return nil, canonical.Invalid("text_2", fmt.Sprintf(
			"text_1 must be one text or as many texts as text_2; got %d and %d", len(left), len(right)))
	}
	return &canonical.ScoreRequest{Model: w.Model, Text1: left, Text2: right, User: w.User}, nil
}

// EncodeRerankResponse writes vLLM's rerank answer:
// {"id":…,"model":…,"usage":{"prompt_tokens","total_tokens"},"results":[{"index","document":{"text"},"relevance_score"}]}.
// document is left out when the client set return_documents to false.
func EncodeRerankResponse(resp *canonical.RerankResponse, meta Meta, withDocuments bool) []byte {
	dst := make([]byte, 0, 128+64*len(resp.Results))
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, meta.ID)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, meta.Model)
	dst = append(dst, `,"usage":`...)
	dst = appendPoolingUsage(dst, resp.Usage, false)
	dst = append(dst, `,"results":[`...)
	for i, r := range resp.Results {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"index":`...)
		dst = appendInt(dst, int64(r.Index))
		if withDocuments {
			dst = append(dst, `,"document":{"text":`...)
			dst = appendString(dst, r.Document)
			dst = append(dst, '}')
		}
		dst = append(dst, `,"relevance_score":`...)
		dst = appendFloat64(dst, r.Score)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// EncodeScoreResponse writes vLLM's score answer:
// {"id":…,"object":"list","created":…,"model":…,"data":[{"index","object":"score","score"}],"usage":{…}}.
func EncodeScoreResponse(resp *canonical.ScoreResponse, meta Meta) []byte {
	dst := make([]byte, 0, 128+48*len(resp.Scores))
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, meta.ID)
	dst = append(dst, `,"object":"list","created":`...)
	dst = appendInt(dst, meta.Created)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, meta.Model)
	dst = append(dst, `,"data":[`...)
	for i, s := range resp.Scores {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"index":`...)
		dst = appendInt(dst, int64(i))
		dst = append(dst, `,"object":"score","score":`...)
		dst = appendFloat64(dst, s)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"usage":`...)
	dst = appendPoolingUsage(dst, resp.Usage, true)
	return append(dst, '}')
}

// appendPoolingUsage writes the usage of a pooling answer: prompt tokens only.
func appendPoolingUsage(dst []byte, u *canonical.Usage, completion bool) []byte {
	var prompt int64
	if u != nil {
		prompt = u.Prompt
	}
	dst = append(dst, `{"prompt_tokens":`...)
	dst = appendInt(dst, prompt)
	dst = append(dst, `,"total_tokens":`...)
	dst = appendInt(dst, prompt)
	if completion {
		dst = append(dst, `,"completion_tokens":0`...)
	}
	return append(dst, '}')
}

// appendFloat64 appends f as encoding/json would; NaN and infinities become 0.
func appendFloat64(dst []byte, f float64) []byte { return jsonw.Float(dst, f) }
