package ollama

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/translate/ollama"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
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
func (s *Surface) catalogCards(w http.ResponseWriter, r *http.Request, keep func(*controlplanev1.CatalogModel) bool) ([]ollama.ModelCard, bool) {
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
	for _, m := range catalog {
		if keep(m) {
			cards = append(cards, card(m))
		}
	}
	slices.SortFunc(cards, func(a, b ollama.ModelCard) int { return strings.Compare(a.Name, b.Name) })
	return cards, true
}

func (s *Surface) tags(w http.ResponseWriter, r *http.Request) {
	cards, ok := s.catalogCards(w, r, func(*controlplanev1.CatalogModel) bool { return true })
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
	cards, ok := s.catalogCards(w, r, (*controlplanev1.CatalogModel).GetLoaded)
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
func (s *Surface) findModel(r *http.Request, credential, name string) (*controlplanev1.CatalogModel, error) {
	catalog, err := s.catalog.ListModels(r.Context(), credential)
	if err != nil {
		return nil, err
	}
	want := strings.TrimSuffix(name, ":latest")
	for _, m := range catalog {
		if strings.TrimSuffix(m.GetName(), ":latest") == want {
			return m, nil
		}
	}
	return nil, &canonical.Error{Kind: canonical.KindNotFound, Code: "model_not_found", Message: ollama.ModelNotFound(name)}
}

// capabilityNames are Ollama's names for the catalog's capabilities, in
// Ollama's order; structured output and rerank have none.
var capabilityNames = []struct {
	c    controlplanev1.Capability
	name string
}{
	{controlplanev1.Capability_CAPABILITY_COMPLETION, "completion"},
	{controlplanev1.Capability_CAPABILITY_TOOLS, "tools"},
	{controlplanev1.Capability_CAPABILITY_VISION, "vision"},
	{controlplanev1.Capability_CAPABILITY_EMBEDDING, "embedding"},
	{controlplanev1.Capability_CAPABILITY_THINKING, "thinking"},
}

// card describes a catalog model in Ollama's terms. Models served only by
// vLLM are in safetensors format; any Ollama backend makes it gguf.
func card(m *controlplanev1.CatalogModel) ollama.ModelCard {
	c := ollama.ModelCard{
		Name: m.GetName(), Family: m.GetFamily(), ParameterSize: m.GetParameterSize(), Quantization: m.GetQuantization(),
		Format: "gguf", ContextLength: m.GetContextLength(), EmbeddingLength: m.GetEmbeddingLength(),
	}
	if m.GetCreated() > 0 {
		c.ModifiedAt = time.Unix(m.GetCreated(), 0)
	}
	if len(m.GetEngines()) > 0 && !slices.Contains(m.GetEngines(), controlplanev1.Engine_ENGINE_OLLAMA) {
		c.Format = "safetensors"
	}
	for _, n := range capabilityNames {
		if slices.Contains(m.GetCapabilities(), n.c) {
			c.Capabilities = append(c.Capabilities, n.name)
		}
	}
	return c
}
