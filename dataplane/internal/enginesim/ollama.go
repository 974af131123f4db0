package enginesim

// Ollama's native API, as served by Ollama 0.17.4: routes in
// server/routes.go (GenerateRoutes), bodies in api/types.go. The shapes
// were checked against a real ollama 0.17.4 binary; see
// testdata/recorded/README.md.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// OllamaVersion is what the simulated Ollama reports at /api/version.
const OllamaVersion = "0.17.4-sim"

const (
	ctJSON   = "application/json; charset=utf-8"
	ctNDJSON = "application/x-ndjson"
	// defaultKeepAlive is OLLAMA_KEEP_ALIVE's default.
	defaultKeepAlive = 5 * time.Minute
)

func (s *Server) routesOllama(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Length", "17")
		_, _ = io.WriteString(w, "Ollama is running")
	})
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, ctJSON, map[string]string{"version": OllamaVersion})
	})
	mux.HandleFunc("GET /api/tags", s.ollamaTags)
	mux.HandleFunc("GET /api/ps", s.ollamaPs)
	mux.HandleFunc("POST /api/show", s.ollamaShow)
	mux.HandleFunc("POST /api/chat", s.ollamaChat)
	mux.HandleFunc("POST /api/generate", s.ollamaGenerate)
	mux.HandleFunc("POST /api/embed", s.ollamaEmbed)
	mux.HandleFunc("POST /api/embeddings", s.ollamaEmbeddings)
}

// ollamaError answers as Gin's c.JSON(status, gin.H{"error": msg}).
func ollamaError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ctJSON, map[string]string{"error": msg})
}

// ollamaDecode reads and decodes a request body as Ollama does
// (c.ShouldBindJSON), answering 400 itself on failure.
func (s *Server) ollamaDecode(w http.ResponseWriter, r *http.Request, v any) ([]byte, bool) {
	body, err := s.readBody(w, r)
	if err != nil {
		if isTooLarge(err) {
			ollamaError(w, http.StatusRequestEntityTooLarge, err.Error())
		} else {
			ollamaError(w, http.StatusBadRequest, err.Error())
		}
		return nil, false
	}
	err = json.NewDecoder(bytes.NewReader(body)).Decode(v)
	switch {
	case errors.Is(err, io.EOF):
		ollamaError(w, http.StatusBadRequest, "missing request body")
		return nil, false
	case err != nil:
		ollamaError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return body, true
}

// ollamaName returns name with Ollama's default tag.
func ollamaName(name string) string {
	base := name[strings.LastIndex(name, "/")+1:]
	if !strings.Contains(base, ":") {
		name += ":latest"
	}
	return strings.ToLower(name)
}

// ollamaModel finds a model by name, with or without its tag.
func (s *Server) ollamaModel(name string) *simModel {
	want := ollamaName(name)
	for _, m := range s.models {
		if ollamaName(m.spec.Name) == want {
			return m
		}
	}
	return nil
}

// ollamaLookup resolves the model of a request, answering the error itself
// when there is none.
func (s *Server) ollamaLookup(w http.ResponseWriter, name string) *simModel {
	if strings.TrimSpace(name) == "" {
		ollamaError(w, http.StatusBadRequest, "model is required")
		return nil
	}
	m := s.ollamaModel(name)
	if m == nil {
		ollamaError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", name))
	}
	return m
}

type ollamaDetails struct {
	ParentModel       string   `json:"parent_model"`
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
}

func (m *simModel) has(capability string) bool {
	return slices.Contains(m.spec.Capabilities, capability)
}

func (m *simModel) embeddingOnly() bool { return m.has("embedding") && !m.has("completion") }

func (m *simModel) details() ollamaDetails {
	d := ollamaDetails{Format: "gguf", Family: m.spec.Family, Families: []string{m.spec.Family},
		ParameterSize: "8.0B", QuantizationLevel: "Q4_K_M"}
	if m.embeddingOnly() {
		d.ParameterSize, d.QuantizationLevel = "137M", "F16"
	}
	return d
}

func (m *simModel) size() int64 {
	if m.embeddingOnly() {
		return 274302450
	}
	return 4920753328
}

func (m *simModel) digest() string {
	sum := sha256.Sum256([]byte("enginesim/" + ollamaName(m.spec.Name)))
	return hex.EncodeToString(sum[:])
}

func (s *Server) ollamaTags(w http.ResponseWriter, _ *http.Request) {
	type entry struct {
		Name       string        `json:"name"`
		Model      string        `json:"model"`
		ModifiedAt time.Time     `json:"modified_at"`
		Size       int64         `json:"size"`
		Digest     string        `json:"digest"`
		Details    ollamaDetails `json:"details"`
	}
	out := []entry{}
	for _, m := range s.models {
		name := ollamaName(m.spec.Name)
		out = append(out, entry{name, name, s.start.UTC(), m.size(), m.digest(), m.details()})
	}
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"models": out})
}

func (s *Server) ollamaPs(w http.ResponseWriter, _ *http.Request) {
	type entry struct {
		Name          string        `json:"name"`
		Model         string        `json:"model"`
		Size          int64         `json:"size"`
		Digest        string        `json:"digest"`
		Details       ollamaDetails `json:"details"`
		ExpiresAt     time.Time     `json:"expires_at"`
		SizeVRAM      int64         `json:"size_vram"`
		ContextLength int           `json:"context_length"`
	}
	now := time.Now()
	out := []entry{}
	s.mu.Lock()
	for _, m := range s.models {
		if !m.loaded || (!m.expires.IsZero() && now.After(m.expires)) {
			continue
		}
		expires := m.expires
		if expires.IsZero() { // kept forever, as with keep_alive -1
			expires = now.Add(math.MaxInt64)
		}
		name := ollamaName(m.spec.Name)
		out = append(out, entry{name, name, m.size(), m.digest(), m.details(), expires.UTC(), m.size(), m.spec.ContextLength})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"models": out})
}

func (s *Server) ollamaShow(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Name  string `json:"name"`
	}
	if _, ok := s.ollamaDecode(w, r, &req); !ok {
		return
	}
	if req.Model == "" {
		req.Model = req.Name
	}
	m := s.ollamaLookup(w, req.Model)
	if m == nil {
		return
	}
	name := ollamaName(m.spec.Name)
	tmpl := "{{- range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}assistant:"
	if m.has("tools") {
		tmpl = "{{- if .Tools }}tools: {{ .Tools }}\n{{ end }}" + tmpl
	}
	fam, dim, ctxLen := m.spec.Family, m.spec.EmbeddingDim, m.spec.ContextLength
	modelfile := fmt.Sprintf("# Modelfile generated by \"ollama show\"\n"+
		"# To build a new Modelfile based on this, replace FROM with:\n# FROM %s\n\n"+
		"FROM /usr/share/ollama/.ollama/models/blobs/sha256-%s\nTEMPLATE %s\nPARAMETER num_ctx %d\n",
		name, m.digest(), strconv.Quote(tmpl), ctxLen)
	type tensor struct {
		Name  string   `json:"name"`
		Type  string   `json:"type"`
		Shape []uint64 `json:"shape"`
	}
	writeJSON(w, http.StatusOK, ctJSON, obj{
		{"modelfile", modelfile},
		{"parameters", fmt.Sprintf("%-30s %d", "num_ctx", ctxLen)},
		{"template", tmpl},
		{"details", m.details()},
		{"model_info", map[string]any{
			"general.architecture":           fam,
			"general.file_type":              15,
			"general.parameter_count":        8030261248,
			"general.quantization_version":   2,
			fam + ".attention.head_count":    32,
			fam + ".attention.head_count_kv": 8,
			fam + ".block_count":             32,
			fam + ".context_length":          ctxLen,
			fam + ".embedding_length":        dim,
			fam + ".feed_forward_length":     4 * dim,
			fam + ".vocab_size":              32000,
			"tokenizer.ggml.model":           "gpt2",
			"tokenizer.ggml.tokens":          nil,
			"tokenizer.ggml.token_type":      nil,
			"tokenizer.ggml.merges":          nil,
		}},
		{"tensors", []tensor{
			{"output_norm.weight", "F32", []uint64{uint64(dim)}},
			{"token_embd.weight", "Q4_K", []uint64{uint64(dim), 32000}},
		}},
		{"capabilities", m.spec.Capabilities},
		{"modified_at", s.start.UTC()},
	})
}

// parseKeepAlive reads Ollama's keep_alive: a duration string or a number
// of seconds; negative keeps the model loaded forever.
func parseKeepAlive(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return defaultKeepAlive, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, err
	}
	switch t := v.(type) {
	case float64:
		if t < 0 {
			return -1, nil
		}
		return time.Duration(t * float64(time.Second)), nil
	case string:
		d, err := time.ParseDuration(t)
		if err != nil {
			n, nerr := strconv.ParseFloat(t, 64)
			if nerr != nil {
				return 0, err
			}
			d = time.Duration(n * float64(time.Second))
		}
		if d < 0 {
			return -1, nil
		}
		return d, nil
	}
	return 0, fmt.Errorf("unsupported type: '%T'", v)
}
