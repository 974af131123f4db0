// Package healthtest provides small HTTP servers that imitate the discovery
// endpoints of Ollama and vLLM, for tests of the health and registry
// packages. They answer only what a probe asks (versions, model lists,
// /api/show, /api/ps, /health) in the engines' own JSON shapes; they do not
// generate text.
package healthtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
)

// Model is one model an Engine serves.
type Model struct {
	Name string
	// Digest identifies the model's content (Ollama); default derived from Name.
	Digest        string
	Family        string
	ContextLength int64
	// NumCtx is a Modelfile num_ctx parameter (Ollama); 0 for none.
	NumCtx          int64
	EmbeddingLength int64
	Capabilities    []string
	Loaded          bool
	ParameterSize   string
	Quantization    string
	Size            int64
}

// Engine is a running imitation of one engine.
type Engine struct {
	srv  *httptest.Server
	vllm bool

	mu        sync.Mutex
	version   string
	models    []Model
	down      bool
	showFails bool
	calls     map[string]int
}

// NewOllama starts an imitation of Ollama's discovery endpoints; it is closed
// when the test ends.
func NewOllama(t testing.TB, version string, models ...Model) *Engine {
	return start(t, false, version, models)
}

// NewVLLM starts an imitation of vLLM's discovery endpoints; it is closed when
// the test ends.
func NewVLLM(t testing.TB, version string, models ...Model) *Engine {
	return start(t, true, version, models)
}

func start(t testing.TB, vllm bool, version string, models []Model) *Engine {
	t.Helper()
	e := &Engine{vllm: vllm, version: version, models: slices.Clone(models), calls: map[string]int{}}
	mux := http.NewServeMux()
	if vllm {
		mux.HandleFunc("GET /health", e.vllmHealth)
		mux.HandleFunc("GET /v1/models", e.vllmModels)
		mux.HandleFunc("GET /version", e.serveVersion)
	} else {
		mux.HandleFunc("GET /api/version", e.serveVersion)
		mux.HandleFunc("GET /api/tags", e.ollamaTags)
		mux.HandleFunc("GET /api/ps", e.ollamaPS)
		mux.HandleFunc("POST /api/show", e.ollamaShow)
	}
	e.srv = httptest.NewServer(e.count(mux))
	t.Cleanup(e.srv.Close)
	return e
}

// URL returns the engine's base URL.
func (e *Engine) URL() string { return e.srv.URL }

// Handler returns the engine's handler, to serve it again after Close.
func (e *Engine) Handler() http.Handler { return e.srv.Config.Handler }

// Close stops the engine: connections are refused from then on.
func (e *Engine) Close() { e.srv.Close() }

// SetDown makes every endpoint answer 500 (true) or work again (false).
func (e *Engine) SetDown(down bool) { e.mu.Lock(); e.down = down; e.mu.Unlock() }

// SetShowFails makes /api/show answer 500.
func (e *Engine) SetShowFails(fail bool) { e.mu.Lock(); e.showFails = fail; e.mu.Unlock() }

// SetModels replaces the models.
func (e *Engine) SetModels(models ...Model) {
	e.mu.Lock()
	e.models = slices.Clone(models)
	e.mu.Unlock()
}

// SetVersion replaces the version string.
func (e *Engine) SetVersion(v string) { e.mu.Lock(); e.version = v; e.mu.Unlock() }

// Calls returns how often path was requested.
func (e *Engine) Calls(path string) int { e.mu.Lock(); defer e.mu.Unlock(); return e.calls[path] }

func (e *Engine) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.calls[r.URL.Path]++
		down := e.down
		e.mu.Unlock()
		if down {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "engine down"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (e *Engine) snapshot() (string, []Model) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.version, slices.Clone(e.models)
}

func (e *Engine) serveVersion(w http.ResponseWriter, _ *http.Request) {
	v, _ := e.snapshot()
	writeJSON(w, http.StatusOK, map[string]string{"version": v})
}

func digest(m Model) string {
	if m.Digest != "" {
		return m.Digest
	}
	return fmt.Sprintf("%064x", len(m.Name)*7919+int(m.ContextLength))
}

func tagEntry(m Model) map[string]any {
	return map[string]any{
		"name": m.Name, "model": m.Name, "modified_at": "2026-01-02T03:04:05Z",
		"size": m.Size, "digest": digest(m),
		"details": map[string]any{
			"parent_model": "", "format": "gguf", "family": m.Family, "families": []string{m.Family},
			"parameter_size": m.ParameterSize, "quantization_level": m.Quantization,
		},
	}
}

func (e *Engine) ollamaTags(w http.ResponseWriter, _ *http.Request) {
	_, models := e.snapshot()
	list := []map[string]any{}
	for _, m := range models {
		list = append(list, tagEntry(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": list})
}

func (e *Engine) ollamaPS(w http.ResponseWriter, _ *http.Request) {
	_, models := e.snapshot()
	list := []map[string]any{}
	for _, m := range models {
		if m.Loaded {
			entry := tagEntry(m)
			entry["expires_at"] = "2026-01-02T03:09:05Z"
			entry["size_vram"] = m.Size
			entry["context_length"] = m.ContextLength
			list = append(list, entry)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": list})
}

func (e *Engine) ollamaShow(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Name  string `json:"name"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON"})
		return
	}
	if req.Model == "" {
		req.Model = req.Name
	}
	e.mu.Lock()
	fails := e.showFails
	e.mu.Unlock()
	if fails {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "show failed"})
		return
	}
	_, models := e.snapshot()
	for _, m := range models {
		if m.Name != req.Model {
			continue
		}
		arch := m.Family
		if arch == "" {
			arch = "llama"
		}
		info := map[string]any{"general.architecture": arch, "general.parameter_count": 3212749888}
		if m.ContextLength > 0 {
			info[arch+".context_length"] = m.ContextLength
		}
		if m.EmbeddingLength > 0 {
			info[arch+".embedding_length"] = m.EmbeddingLength
		}
		params := "stop                           \"<|eot_id|>\""
		if m.NumCtx > 0 {
			params = fmt.Sprintf("num_ctx                        %d\n%s", m.NumCtx, params)
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"license": "LICENSE TEXT", "modelfile": "FROM " + m.Name, "parameters": params,
			"template": "{{ .Prompt }}",
			"details": map[string]any{
				"parent_model": "", "format": "gguf", "family": m.Family, "families": []string{m.Family},
				"parameter_size": m.ParameterSize, "quantization_level": m.Quantization,
			},
			"model_info": info, "capabilities": m.Capabilities, "modified_at": "2026-01-02T03:04:05Z",
		})
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model '%s' not found", req.Model)})
}

func (e *Engine) vllmHealth(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }

func (e *Engine) vllmModels(w http.ResponseWriter, _ *http.Request) {
	_, models := e.snapshot()
	data := []map[string]any{}
	for _, m := range models {
		data = append(data, map[string]any{
			"id": m.Name, "object": "model", "created": 1767323045, "owned_by": "vllm",
			"root": m.Name, "parent": nil, "max_model_len": m.ContextLength,
			"permission": []map[string]any{{"id": "modelperm-0", "object": "model_permission"}},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
