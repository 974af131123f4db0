package enginesim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"time"
)

// vllmPoolingModel resolves the model of an embeddings, rerank or score
// request; only embedding models serve them.
func (s *Server) vllmPoolingModel(w http.ResponseWriter, name, api string) *simModel {
	m := s.vllmLookup(w, name)
	if m != nil && !m.has("embedding") {
		vllmError(w, http.StatusBadRequest, "The model does not support "+api+" API")
		return nil
	}
	return m
}

func (s *Server) vllmEmbeddings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model          string `json:"model"`
		Input          any    `json:"input"`
		EncodingFormat string `json:"encoding_format"`
		Dimensions     int    `json:"dimensions"`
	}
	if _, ok := s.vllmDecode(w, r, &req); !ok {
		return
	}
	if req.Input == nil {
		missingField(w, "input")
		return
	}
	inputs, ok := stringList(req.Input)
	if !ok { // token ids: count them as text
		raw, _ := json.Marshal(req.Input)
		inputs = []string{string(raw)}
	}
	m := s.vllmPoolingModel(w, req.Model, "Embeddings")
	if m == nil {
		return
	}
	dim := m.spec.EmbeddingDim
	if req.Dimensions > 0 && req.Dimensions < dim {
		dim = req.Dimensions
	}
	data := []obj{}
	prompt := 0
	for i, in := range inputs {
		n := max(1, textTokens(in))
		if n > m.spec.ContextLength {
			vllmError(w, http.StatusBadRequest, "This model's maximum context length is "+itoa(m.spec.ContextLength)+
				" tokens. However, your request has "+itoa(n)+" input tokens. Please reduce the length of the input messages.")
			return
		}
		prompt += n
		vec := embedding(in, dim, true)
		var value any = vec
		if req.EncodingFormat == "base64" {
			buf := make([]byte, 4*len(vec))
			for k, x := range vec {
				binary.LittleEndian.PutUint32(buf[4*k:], math.Float32bits(float32(x)))
			}
			value = base64.StdEncoding.EncodeToString(buf)
		}
		data = append(data, obj{{"index", i}, {"object", "embedding"}, {"embedding", value}})
	}
	s.countPooling(m, prompt)
	vllmJSON(w, http.StatusOK, obj{{"id", "embd-" + s.nextID(32)}, {"object", "list"},
		{"created", time.Now().Unix()}, {"model", m.spec.Name}, {"data", data}, {"usage", usage(prompt, 0)}})
}

func (s *Server) vllmRerank(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model     string   `json:"model"`
		Query     *string  `json:"query"`
		Documents []string `json:"documents"`
		TopN      int      `json:"top_n"`
	}
	if _, ok := s.vllmDecode(w, r, &req); !ok {
		return
	}
	if req.Query == nil {
		missingField(w, "query")
		return
	}
	m := s.vllmPoolingModel(w, req.Model, "Rerank (Score)")
	if m == nil {
		return
	}
	type scored struct {
		index int
		score float64
	}
	results := make([]scored, len(req.Documents))
	prompt := 0
	for i, d := range req.Documents {
		results[i] = scored{i, similarity(*req.Query, d)}
		prompt += textTokens(*req.Query) + textTokens(d) + 2
	}
	sort.SliceStable(results, func(a, b int) bool { return results[a].score > results[b].score })
	if req.TopN > 0 && req.TopN < len(results) {
		results = results[:req.TopN]
	}
	out := []obj{}
	for _, res := range results {
		out = append(out, obj{{"index", res.index},
			{"document", obj{{"text", req.Documents[res.index]}, {"multi_modal", nil}}},
			{"relevance_score", res.score}})
	}
	s.countPooling(m, prompt)
	vllmJSON(w, http.StatusOK, obj{{"id", "rerank-" + s.nextID(32)}, {"model", m.spec.Name},
		{"usage", obj{{"prompt_tokens", prompt}, {"total_tokens", prompt}}}, {"results", out}})
}

func (s *Server) vllmScore(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Text1 any    `json:"text_1"`
		Text2 any    `json:"text_2"`
	}
	if _, ok := s.vllmDecode(w, r, &req); !ok {
		return
	}
	left, ok1 := stringList(req.Text1)
	right, ok2 := stringList(req.Text2)
	switch {
	case req.Text1 == nil || !ok1:
		missingField(w, "text_1")
		return
	case req.Text2 == nil || !ok2:
		missingField(w, "text_2")
		return
	}
	m := s.vllmPoolingModel(w, req.Model, "Score")
	if m == nil {
		return
	}
	if len(left) == 1 { // one text_1 is scored against every text_2
		for len(left) < len(right) {
			left = append(left, left[0])
		}
	}
	if len(left) != len(right) {
		vllmError(w, http.StatusBadRequest, "text_1 and text_2 lists must have the same length")
		return
	}
	data := []obj{}
	prompt := 0
	for i := range right {
		data = append(data, obj{{"index", i}, {"object", "score"}, {"score", similarity(left[i], right[i])}})
		prompt += textTokens(left[i]) + textTokens(right[i]) + 2
	}
	s.countPooling(m, prompt)
	vllmJSON(w, http.StatusOK, obj{{"id", "score-" + s.nextID(32)}, {"object", "list"},
		{"created", time.Now().Unix()}, {"model", m.spec.Name}, {"data", data}, {"usage", usage(prompt, 0)}})
}

func (s *Server) vllmTokenize(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string       `json:"model"`
		Prompt   *string      `json:"prompt"`
		Messages *[]vllmInMsg `json:"messages"`
	}
	if _, ok := s.vllmDecode(w, r, &req); !ok {
		return
	}
	m := s.vllmLookup(w, req.Model)
	if m == nil {
		return
	}
	var n int
	var text string
	switch {
	case req.Prompt != nil:
		text = *req.Prompt
		n = PromptTokens([]Message{{Role: "user", Content: text}})
	case req.Messages != nil:
		var msgs []Message
		for _, msg := range *req.Messages {
			c, _ := messageContent(msg.Content)
			msgs = append(msgs, Message{Role: msg.Role, Content: c})
			text += c
		}
		n = PromptTokens(msgs)
	default:
		missingField(w, "prompt")
		return
	}
	vllmJSON(w, http.StatusOK, obj{{"count", n}, {"max_model_len", m.spec.ContextLength},
		{"tokens", tokenIDs(text, n)}, {"token_strs", nil}})
}

// countPooling records a pooling request's prompt tokens in the metrics.
func (s *Server) countPooling(m *simModel, prompt int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mm := s.metrics.model(m.spec.Name)
	mm.prompt += int64(prompt)
	mm.success["stop"]++
	m.loaded = true
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
