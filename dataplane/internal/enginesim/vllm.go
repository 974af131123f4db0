package enginesim

// vLLM's OpenAI-compatible server. Bodies follow vLLM's pydantic models
// (vllm/entrypoints/openai/engine/protocol.py, chat_completion/protocol.py,
// completion/protocol.py, pooling protocols) as serialized by its routers:
// non-streaming bodies are model_dump() (every field, nulls included),
// stream chunks are model_dump_json(exclude_unset=True). Errors use the
// current ErrorResponse, {"error": {"message", "type", "param", "code"}};
// vLLM before 0.10 answered the flat {"object": "error", "message", …}.
// See testdata/recorded/README.md for sources.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/jsonw"
)

// VLLMVersion is what the simulated vLLM reports at /version.
const VLLMVersion = "0.19.0-sim"

func (s *Server) routesVLLM(mux *http.ServeMux) {
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		vllmJSON(w, http.StatusOK, obj{{"version", VLLMVersion}})
	})
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	mux.HandleFunc("GET /v1/models", s.vllmModels)
	mux.HandleFunc("POST /v1/chat/completions", s.vllmChat)
	mux.HandleFunc("POST /v1/completions", s.vllmCompletions)
	mux.HandleFunc("POST /v1/embeddings", s.vllmEmbeddings)
	for _, p := range []string{"/rerank", "/v1/rerank"} {
		mux.HandleFunc("POST "+p, s.vllmRerank)
	}
	for _, p := range []string{"/score", "/v1/score"} {
		mux.HandleFunc("POST "+p, s.vllmScore)
	}
	mux.HandleFunc("POST /tokenize", s.vllmTokenize)
}

// fastAPIFallback answers unknown routes as FastAPI does.
func fastAPIFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" {
				vllmJSON(w, http.StatusMethodNotAllowed, obj{{"detail", "Method Not Allowed"}})
				return
			}
		}
		vllmJSON(w, http.StatusNotFound, obj{{"detail", "Not Found"}})
	})
}

// kv and obj build JSON objects with ordered keys, as pydantic writes them.
type kv struct {
	k string
	v any
}

type obj []kv

// MarshalJSON writes the keys in order.
func (o obj) MarshalJSON() ([]byte, error) { return appendPy(nil, o) }

// marshalPy encodes v compactly without HTML escaping, as Python's json
// and pydantic do.
func marshalPy(v any) ([]byte, error) { return appendPy(nil, v) }

// appendPy appends v as marshalPy encodes it. The shapes the simulator builds
// (ordered objects, lists, strings, numbers, null) are written directly, so
// that the simulator spends its time answering rather than reflecting; any
// other value goes through encoding/json.
func appendPy(dst []byte, v any) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return jsonw.String(dst, v), nil
	case int:
		return jsonw.Int(dst, int64(v)), nil
	case int64:
		return jsonw.Int(dst, v), nil
	case bool:
		return jsonw.Bool(dst, v), nil
	case float64:
		return jsonw.Float(dst, v), nil
	case obj:
		dst = append(dst, '{')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonw.String(dst, e.k)
			dst = append(dst, ':')
			if dst, err = appendPy(dst, e.v); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	case []obj:
		return appendPyList(dst, v)
	case []any:
		return appendPyList(dst, v)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return append(dst, bytes.TrimSuffix(b.Bytes(), []byte("\n"))...), nil
}

// appendPyList appends a list of values as appendPy writes each.
func appendPyList[T any](dst []byte, list []T) ([]byte, error) {
	var err error
	dst = append(dst, '[')
	for i, e := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = appendPy(dst, e); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

func vllmJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshalPy(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"detail":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// vllmErrorType is the error type vLLM's create_error_response gives a
// status.
func vllmErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BadRequestError"
	case http.StatusNotFound:
		return "NotFoundError"
	case http.StatusInternalServerError:
		return "InternalServerError"
	case http.StatusNotImplemented:
		return "NotImplementedError"
	}
	return strings.ReplaceAll(http.StatusText(status), " ", "") + "Error"
}

func vllmErrorBody(status int, msg string) obj {
	return obj{{"error", obj{{"message", msg}, {"type", vllmErrorType(status)}, {"param", nil}, {"code", status}}}}
}

func vllmError(w http.ResponseWriter, status int, msg string) {
	vllmJSON(w, status, vllmErrorBody(status, msg))
}

// vllmDecode reads and decodes a request body, answering 400 (or 413) in
// vLLM's shape itself on failure. Pydantic's messages are paraphrased.
func (s *Server) vllmDecode(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	body, err := s.readBody(w, r)
	if err != nil {
		if isTooLarge(err) {
			vllmError(w, http.StatusRequestEntityTooLarge, err.Error())
		} else {
			vllmError(w, http.StatusBadRequest, err.Error())
		}
		return nil, false
	}
	if err := json.Unmarshal(body, v); err != nil {
		var se *json.SyntaxError
		msg := fmt.Sprintf("[{'type': 'model_attributes_type', 'loc': ('body',), 'msg': 'Input should be a valid dictionary or object to extract fields from', 'input': %q}]", truncate(string(body), 80))
		if errors.As(err, &se) || len(bytes.TrimSpace(body)) == 0 || err.Error() == "unexpected end of JSON input" {
			off := int64(len(body))
			if se != nil {
				off = se.Offset
			}
			msg = fmt.Sprintf("[{'type': 'json_invalid', 'loc': ('body', %d), 'msg': 'JSON decode error', 'input': {}, 'ctx': {'error': %q}}]", off, err.Error())
		}
		vllmError(w, http.StatusBadRequest, msg)
		return nil, false
	}
	return body, true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// missingField answers pydantic's "Field required" error.
func missingField(w http.ResponseWriter, field string) {
	vllmError(w, http.StatusBadRequest, fmt.Sprintf("[{'type': 'missing', 'loc': ('body', '%s'), 'msg': 'Field required', 'input': {}}]", field))
}

// vllmLookup resolves the request's model: vLLM serves the first (default)
// model when none is named.
func (s *Server) vllmLookup(w http.ResponseWriter, name string) *simModel {
	if name == "" {
		return s.models[0]
	}
	for _, m := range s.models {
		if m.spec.Name == name {
			return m
		}
	}
	vllmError(w, http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist.", name))
	return nil
}

func (s *Server) vllmModels(w http.ResponseWriter, _ *http.Request) {
	created := time.Now().Unix()
	data := []obj{}
	for _, m := range s.models {
		perm := obj{{"id", "modelperm-" + s.nextID(32)}, {"object", "model_permission"}, {"created", created},
			{"allow_create_engine", false}, {"allow_sampling", true}, {"allow_logprobs", true},
			{"allow_search_indices", false}, {"allow_view", true}, {"allow_fine_tuning", false},
			{"organization", "*"}, {"group", nil}, {"is_blocking", false}}
		data = append(data, obj{{"id", m.spec.Name}, {"object", "model"}, {"created", created},
			{"owned_by", "vllm"}, {"root", m.spec.Name}, {"parent", nil},
			{"max_model_len", m.spec.ContextLength}, {"permission", []obj{perm}}})
	}
	vllmJSON(w, http.StatusOK, obj{{"object", "list"}, {"data", data}})
}

// usage is vLLM's UsageInfo as model_dump() writes it.
func usage(prompt, completion int) obj {
	return obj{{"prompt_tokens", prompt}, {"total_tokens", prompt + completion},
		{"completion_tokens", completion}, {"prompt_tokens_details", nil}}
}

// streamUsage is UsageInfo in a stream chunk (exclude_unset, or
// exclude_none for the final usage chunk).
func streamUsage(prompt, completion int) obj {
	return obj{{"prompt_tokens", prompt}, {"total_tokens", prompt + completion}, {"completion_tokens", completion}}
}

// sse writes one server-sent event and flushes it.
func sse(w http.ResponseWriter, rc *http.ResponseController, v any) bool {
	b, err := appendPy([]byte("data: "), v)
	if err != nil {
		return false
	}
	if _, err := w.Write(append(b, "\n\n"...)); err != nil {
		return false
	}
	return rc.Flush() == nil
}

func sseStart(w http.ResponseWriter) *http.ResponseController {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	return http.NewResponseController(w)
}

func sseDone(w http.ResponseWriter, rc *http.ResponseController) {
	_, _ = fmt.Fprint(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}

// checkContext applies vLLM's context-length checks (get_max_tokens and
// the renderer's validation); it answers 400 itself and returns false when
// the request does not fit.
func checkContext(w http.ResponseWriter, m *simModel, prompt, maxTokens int) bool {
	ctx := m.spec.ContextLength
	if prompt > ctx {
		vllmError(w, http.StatusBadRequest, fmt.Sprintf("This model's maximum context length is %d tokens. "+
			"However, your request has %d input tokens. Please reduce the length of the input messages.", ctx, prompt))
		return false
	}
	if maxTokens > ctx-prompt {
		vllmError(w, http.StatusBadRequest, fmt.Sprintf("'max_tokens' or 'max_completion_tokens' is too large: %d. "+
			"This model's maximum context length is %d tokens and your request has %d input tokens (%d > %d - %d).",
			maxTokens, ctx, prompt, maxTokens, ctx, prompt))
		return false
	}
	return true
}
