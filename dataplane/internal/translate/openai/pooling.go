package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/jsonw"
)

// Limits on the non-chat requests, so that one request cannot ask a backend
// for unbounded work.
const (
	// MaxEmbeddingInputs is the most texts one embeddings request may carry
	// (OpenAI's own limit).
	MaxEmbeddingInputs = 2048
	// MaxRerankDocuments is the most documents one rerank request may carry.
	MaxRerankDocuments = 1024
	// MaxScorePairs is the most text pairs one score request may carry.
	MaxScorePairs = 1024
)

// EmbeddingRequest is the body of POST /v1/embeddings, client side and
// engine side.
type EmbeddingRequest struct {
	Model string `json:"model"`
	// Input is a string or an array of strings. Token-id arrays, which OpenAI
	// also accepts, are refused: the gateway cannot know the backend's
	// tokenizer.
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format,omitempty"`
	Dimensions     *int            `json:"dimensions,omitempty"`
	User           string          `json:"user,omitempty"`
}

// EmbeddingOptions are what the surface needs to write the answer.
type EmbeddingOptions struct {
	// Base64 asks for each vector as base64 of little-endian float32s.
	Base64 bool
}

// DecodeEmbeddingRequest parses a POST /v1/embeddings body.
func DecodeEmbeddingRequest(body []byte) (*canonical.EmbeddingRequest, EmbeddingOptions, error) {
	var w EmbeddingRequest
	if err := decodeObject(body, &w); err != nil {
		return nil, EmbeddingOptions{}, err
	}
	if strings.TrimSpace(w.Model) == "" {
		return nil, EmbeddingOptions{}, canonical.Invalid("model", "you must provide a model parameter")
	}
	input, err := stringOrList("input", w.Input, MaxEmbeddingInputs)
	if err != nil {
		return nil, EmbeddingOptions{}, err
	}
	var opts EmbeddingOptions
	switch w.EncodingFormat {
	case "", "float":
	case "base64":
		opts.Base64 = true
	default:
		return nil, opts, canonical.Invalid("encoding_format",
			fmt.Sprintf("encoding_format must be \"float\" or \"base64\"; got %q", w.EncodingFormat))
	}
	req := &canonical.EmbeddingRequest{Model: w.Model, Input: input, User: w.User}
	if w.Dimensions != nil {
		if *w.Dimensions < 1 {
			return nil, opts, canonical.Invalid("dimensions", "dimensions must be at least 1")
		}
		req.Dimensions = *w.Dimensions
	}
	return req, opts, nil
}

// decodeObject unmarshals a request body that must be a JSON object.
func decodeObject(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return canonical.Invalid("", "request body is empty; send a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return canonical.DecodeError(err)
	}
	return nil
}

// stringOrList reads a field that is a string or a non-empty array of at most
// limit strings.
func stringOrList(param string, raw json.RawMessage, limit int) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, canonical.Invalid(param, param+" is required")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, canonical.Invalid(param, param+" must be a string or an array of strings")
	}
	switch {
	case len(many) == 0:
		return nil, canonical.Invalid(param, param+" must not be an empty array")
	case len(many) > limit:
		return nil, canonical.Invalid(param, fmt.Sprintf("%s may hold at most %d strings; got %d", param, limit, len(many)))
	}
	return many, nil
}

// EncodeEmbeddingResponse writes OpenAI's embeddings answer:
// {"object":"list","data":[{"object":"embedding","index":i,"embedding":…}],"model":…,"usage":{…}}.
func EncodeEmbeddingResponse(resp *canonical.EmbeddingResponse, model string, opts EmbeddingOptions) []byte {
	n := 64 + len(model)
	for _, v := range resp.Embeddings {
		n += 40 + 12*len(v)
	}
	dst := make([]byte, 0, n)
	dst = append(dst, `{"object":"list","data":[`...)
	for i, v := range resp.Embeddings {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"object":"embedding","index":`...)
		dst = strconv.AppendInt(dst, int64(i), 10)
		dst = append(dst, `,"embedding":`...)
		if opts.Base64 {
			dst = appendBase64Vector(dst, v)
		} else {
			dst = appendVector(dst, v)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `],"model":`...)
	dst = appendString(dst, model)
	dst = append(dst, `,"usage":{"prompt_tokens":`...)
	var prompt int64
	if resp.Usage != nil {
		prompt = resp.Usage.Prompt
	}
	dst = appendInt(dst, prompt)
	dst = append(dst, `,"total_tokens":`...)
	dst = appendInt(dst, prompt)
	return append(dst, "}}"...)
}

func appendVector(dst []byte, v []float32) []byte {
	dst = append(dst, '[')
	for i, f := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendFloat32(dst, f)
	}
	return append(dst, ']')
}

func appendBase64Vector(dst []byte, v []float32) []byte {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, raw)
	return append(dst, '"')
}

// AppendFloat32 appends f as encoding/json writes a float32 (the shortest
// text that reads back as the same float32). NaN and infinities, which JSON
// cannot hold and no engine sends, are written as 0.
func AppendFloat32(dst []byte, f float32) []byte { return jsonw.Float32(dst, f) }

// DecodeBase64Vector reads one base64 embedding (little-endian float32s).
func DecodeBase64Vector(s string) ([]float32, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode base64 embedding: %w", err)
	}
	if len(raw)%4 != 0 {
		return nil, fmt.Errorf("base64 embedding of %d bytes is not float32s", len(raw))
	}
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v, nil
}
