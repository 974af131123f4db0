package enginesim

import (
	"encoding/json"
	"net/http"
	"time"
)

func (s *Server) ollamaEmbed(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	var req struct {
		Model      string          `json:"model"`
		Input      any             `json:"input"`
		Dimensions int             `json:"dimensions"`
		KeepAlive  json.RawMessage `json:"keep_alive"`
	}
	if _, ok := s.ollamaDecode(w, r, &req); !ok {
		return
	}
	m := s.ollamaLookup(w, req.Model)
	if m == nil {
		return
	}
	inputs, ok := stringList(req.Input)
	if !ok {
		ollamaError(w, http.StatusBadRequest, "invalid input type")
		return
	}
	keepAlive, err := parseKeepAlive(req.KeepAlive)
	if err != nil {
		ollamaError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(inputs) == 0 {
		writeJSON(w, http.StatusOK, ctJSON, obj{{"model", req.Model}, {"embeddings", [][]float32{}}})
		return
	}
	dim := m.spec.EmbeddingDim
	if req.Dimensions > 0 && req.Dimensions < dim {
		dim = req.Dimensions
	}
	vecs := make([][]float32, len(inputs))
	prompt := 0
	for i, in := range inputs {
		vecs[i] = float32s(embedding(in, dim, true))
		prompt += max(1, textTokens(in))
	}
	s.keepModel(m, keepAlive)
	t := ollamaTimings(began, began, time.Time{}, prompt, 0, false)
	writeJSON(w, http.StatusOK, ctJSON, obj{{"model", req.Model}, {"embeddings", vecs},
		{"total_duration", t.TotalDuration}, {"load_duration", t.LoadDuration}, {"prompt_eval_count", prompt}})
}

func (s *Server) ollamaEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model     string          `json:"model"`
		Prompt    string          `json:"prompt"`
		KeepAlive json.RawMessage `json:"keep_alive"`
	}
	if _, ok := s.ollamaDecode(w, r, &req); !ok {
		return
	}
	m := s.ollamaLookup(w, req.Model)
	if m == nil {
		return
	}
	keepAlive, err := parseKeepAlive(req.KeepAlive)
	if err != nil {
		ollamaError(w, http.StatusBadRequest, err.Error())
		return
	}
	vec := []float64{}
	if req.Prompt != "" {
		for _, x := range embedding(req.Prompt, m.spec.EmbeddingDim, false) {
			vec = append(vec, float64(float32(3*x))) // float32 values, as llama.cpp returns
		}
		s.keepModel(m, keepAlive)
	}
	writeJSON(w, http.StatusOK, ctJSON, map[string]any{"embedding": vec})
}

// stringList accepts a string or a list of strings.
func stringList(v any) ([]string, bool) {
	switch t := v.(type) {
	case nil:
		return nil, true
	case string:
		if t == "" {
			return nil, true
		}
		return []string{t}, true
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func float32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
