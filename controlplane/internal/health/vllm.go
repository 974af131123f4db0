package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// probeVLLM checks a vLLM (or other OpenAI-compatible) server: GET /health
// must answer 200 (engines without /health are accepted when /v1/models
// answers), GET /v1/models lists the models, GET /version adds the version.
// vLLM serves what it lists, so every model counts as loaded.
func (p *Prober) probeVLLM(ctx context.Context, base string) Result {
	hctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	code, _, err := p.fetch(hctx, "GET", base, "/health", nil)
	if err != nil {
		return Result{Err: err.Error()}
	}
	if code != http.StatusOK && code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		return Result{Err: fmt.Sprintf("GET /health: status %d", code)}
	}
	b, err := p.fetchJSON(hctx, "GET", base, "/v1/models", nil)
	if err != nil {
		return Result{Err: err.Error()}
	}
	models, err := parseVLLMModels(b)
	if err != nil {
		return Result{Err: "GET /v1/models: " + err.Error()}
	}
	res := Result{Healthy: true, Models: models}
	if b, err := p.fetchJSON(hctx, "GET", base, "/version", nil); err == nil {
		res.Version, _ = parseVersion(b)
	}
	res.Simulated = isSimulated(res.Version)
	return res
}

// parseVLLMModels parses GET /v1/models; max_model_len is the context window.
func parseVLLMModels(b []byte) ([]store.ModelSpec, error) {
	var v struct {
		Data []struct {
			ID          string `json:"id"`
			MaxModelLen int64  `json:"max_model_len"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode model list: %w", err)
	}
	specs := make([]store.ModelSpec, 0, len(v.Data))
	seen := map[string]bool{}
	for _, m := range v.Data {
		if m.ID == "" || seen[m.ID] {
			continue
		}
		seen[m.ID] = true
		ctxLen := m.MaxModelLen
		if ctxLen <= 0 {
			ctxLen = DefaultContextLength
		}
		specs = append(specs, store.ModelSpec{
			Name:          m.ID,
			ContextLength: ctxLen,
			Capabilities:  vllmCapabilities(m.ID),
			Loaded:        true,
		})
	}
	slices.SortFunc(specs, func(a, b store.ModelSpec) int { return strings.Compare(a.Name, b.Name) })
	return specs, nil
}

// vLLM reports no capabilities, so they are guessed from the model id, as the
// original MindRouter did: embedding and reranking models by name, every other
// model chats and takes tools (vLLM serves tools when started with a tool
// parser; a model started without one answers the request with a 400, which
// reaches the client as the backend's own refusal). Vision and thinking are
// inferred from well-known model families.
var (
	vllmVisionHints   = []string{"llava", "vision", "-vl", "vl-", "multimodal", "qwen3.5", "qwen3.6", "gemma3", "gemma-3", "gemma4", "gemma-4", "pixtral"}
	vllmThinkingHints = []string{"qwen3", "gpt-oss", "deepseek-r1", "qwq"}
)

// vllmCapabilities guesses a vLLM model's capabilities from its id.
func vllmCapabilities(id string) []string {
	name := strings.ToLower(id)
	switch {
	case strings.Contains(name, "rerank"):
		return []string{"rerank"}
	case strings.Contains(name, "embed"):
		return []string{"embedding"}
	}
	caps := []string{"completion", "tools"}
	if containsAny(name, vllmVisionHints) {
		caps = append(caps, "vision")
	}
	if containsAny(name, vllmThinkingHints) {
		caps = append(caps, "thinking")
	}
	slices.Sort(caps)
	return caps
}

// containsAny reports whether s contains any of subs.
func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
