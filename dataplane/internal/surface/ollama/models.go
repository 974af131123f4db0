package ollama

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
)

// runningFor is how far in the future /api/ps says loaded models expire: the
// backends, not the gateway, decide when to unload, so the gateway reports
// them as kept (Ollama's answer for keep_alive -1).
const runningFor = 100 * 365 * 24 * time.Hour

// rootBody is what Ollama answers on GET /, which clients use as a probe.
const rootBody = "Ollama is running"

func (s *Surface) root(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(rootBody)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, rootBody)
	}
}

func (s *Surface) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, ollama.EncodeVersion(s.cfg.Version))
}

// catalogCards returns the caller's catalog as Ollama model cards, by name.
func (s *Surface) catalogCards(w http.ResponseWriter, r *http.Request, keep func(*relay.ModelInfo) bool) ([]ollama.ModelCard, bool) {
	credential := Credential(r)
	if credential == "" {
		s.WriteError(w, r, errMissingKey)
		return nil, false
	}
	catalog, err := s.catalog.ListModels(r.Context(), credential)
	if err != nil {
		s.WriteError(w, r, err)
		return nil, false
	}
	cards := make([]ollama.ModelCard, 0, len(catalog))
	for i := range catalog {
		if m := &catalog[i]; keep(m) {
			cards = append(cards, card(m))
		}
	}
	slices.SortFunc(cards, func(a, b ollama.ModelCard) int { return strings.Compare(a.Name, b.Name) })
	return cards, true
}

func (s *Surface) tags(w http.ResponseWriter, r *http.Request) {
	cards, ok := s.catalogCards(w, r, func(*relay.ModelInfo) bool { return true })
	if !ok {
		return
	}
	b, err := ollama.EncodeTags(cards)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	writeJSON(w, b)
}

func (s *Surface) ps(w http.ResponseWriter, r *http.Request) {
	cards, ok := s.catalogCards(w, r, func(m *relay.ModelInfo) bool { return m.Loaded })
	if !ok {
		return
	}
	b, err := ollama.EncodePS(cards, s.cfg.Now().Add(runningFor))
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	writeJSON(w, b)
}

func (s *Surface) show(w http.ResponseWriter, r *http.Request) {
	credential, body, ok := s.readRequest(w, r)
	if !ok {
		return
	}
	name, err := ollama.DecodeShowRequest(body)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	m, err := s.findModel(r, credential, name)
	if err != nil {
		s.writeError(w, r, err, name)
		return
	}
	c := card(m)
	b, err := ollama.EncodeShow(&c)
	if err != nil {
		s.WriteError(w, r, err)
		return
	}
	writeJSON(w, b)
}

// findModel looks name up in the caller's catalog; "x" and "x:latest" are
// one model, as in Ollama.
func (s *Surface) findModel(r *http.Request, credential, name string) (*relay.ModelInfo, error) {
	catalog, err := s.catalog.ListModels(r.Context(), credential)
	if err != nil {
		return nil, err
	}
	want := strings.TrimSuffix(name, ":latest")
	for i := range catalog {
		if strings.TrimSuffix(catalog[i].Name, ":latest") == want {
			return &catalog[i], nil
		}
	}
	return nil, &canonical.Error{Kind: canonical.KindNotFound, Code: "model_not_found", Message: ollama.ModelNotFound(name)}
}

// capabilityNames are Ollama's names for the catalog's capabilities, in
// Ollama's order; structured output and rerank have none.
var capabilityNames = []struct {
	c    relay.Capability
	name string
}{
	{relay.CapabilityCompletion, "completion"},
	{relay.CapabilityTools, "tools"},
	{relay.CapabilityVision, "vision"},
	{relay.CapabilityEmbedding, "embedding"},
	{relay.CapabilityThinking, "thinking"},
}

// card describes a catalog model in Ollama's terms. Models served only by
// vLLM are in safetensors format; any Ollama backend makes it gguf.
func card(m *relay.ModelInfo) ollama.ModelCard {
	c := ollama.ModelCard{
		Name: m.Name, Family: m.Family, ParameterSize: m.ParameterSize, Quantization: m.Quantization,
		Format: "gguf", ContextLength: m.ContextLength, EmbeddingLength: m.EmbeddingLength,
	}
	if m.Created > 0 {
		c.ModifiedAt = time.Unix(m.Created, 0)
	}
	if m.IsAlias && len(m.AliasTargets) > 0 {
		c.AliasTarget = m.AliasTargets[0]
	}
	if len(m.Engines) > 0 && !slices.Contains(m.Engines, relay.EngineOllama) {
		c.Format = "safetensors"
	}
	for _, n := range capabilityNames {
		if slices.Contains(m.Capabilities, n.c) {
			c.Capabilities = append(c.Capabilities, n.name)
		}
	}
	return c
}
