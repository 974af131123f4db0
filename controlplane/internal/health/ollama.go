package health

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// ollamaTag is one entry of Ollama's GET /api/tags (and /api/ps).
type ollamaTag struct {
	Name    string        `json:"name"`
	Model   string        `json:"model"`
	Size    int64         `json:"size"`
	Digest  string        `json:"digest"`
	Details ollamaDetails `json:"details"`
}

// ollamaDetails is the "details" object of /api/tags and /api/show.
type ollamaDetails struct {
	Family            string `json:"family"`
	ParameterSize     string `json:"parameter_size"`
	QuantizationLevel string `json:"quantization_level"`
}

// name returns the tag's model name ("name", else "model").
func (t ollamaTag) name() string {
	if t.Name != "" {
		return t.Name
	}
	return t.Model
}

// parseOllamaTags parses GET /api/tags or GET /api/ps.
func parseOllamaTags(b []byte) ([]ollamaTag, error) {
	var v struct {
		Models []ollamaTag `json:"models"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode model list: %w", err)
	}
	out := v.Models[:0]
	for _, t := range v.Models {
		if t.name() != "" {
			out = append(out, t)
		}
	}
	return out, nil
}

// ollamaShow is what a probe keeps of POST /api/show.
type ollamaShow struct {
	Family          string
	ParameterSize   string
	Quantization    string
	ContextLength   int64 // architectural maximum, 0 when unknown
	NumCtx          int64 // Modelfile num_ctx, 0 when unset
	EmbeddingLength int64
	Capabilities    []string
}

// parseOllamaShow parses POST /api/show. The context window is
// model_info["<general.architecture>.context_length"].
func parseOllamaShow(b []byte) (ollamaShow, error) {
	var v struct {
		Parameters   string                     `json:"parameters"`
		Details      ollamaDetails              `json:"details"`
		ModelInfo    map[string]json.RawMessage `json:"model_info"`
		Capabilities []string                   `json:"capabilities"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return ollamaShow{}, fmt.Errorf("decode show: %w", err)
	}
	s := ollamaShow{
		Family:        v.Details.Family,
		ParameterSize: v.Details.ParameterSize,
		Quantization:  v.Details.QuantizationLevel,
		NumCtx:        numCtx(v.Parameters),
		Capabilities:  normalizeCapabilities(v.Capabilities),
	}
	var arch string
	if raw, ok := v.ModelInfo["general.architecture"]; ok {
		_ = json.Unmarshal(raw, &arch)
	}
	if arch != "" {
		s.ContextLength = infoInt(v.ModelInfo[arch+".context_length"])
		s.EmbeddingLength = infoInt(v.ModelInfo[arch+".embedding_length"])
	}
	if s.Family == "" {
		s.Family = arch
	}
	return s, nil
}

// infoInt reads a non-negative integer from a model_info value.
func infoInt(raw json.RawMessage) int64 {
	if len(raw) == 0 {
		return 0
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f < 0 || f > 1<<53 {
		return 0
	}
	return int64(f)
}

// numCtx finds "num_ctx N" in the Modelfile parameters text.
func numCtx(params string) int64 {
	for line := range strings.SplitSeq(params, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 2 && fields[0] == "num_ctx" {
			if n, err := strconv.ParseInt(fields[1], 10, 64); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// normalizeCapabilities lower-cases, de-duplicates and sorts capability names.
func normalizeCapabilities(caps []string) []string {
	if len(caps) == 0 {
		return nil
	}
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		c = strings.ToLower(strings.TrimSpace(c))
		if c != "" {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// probeOllama checks an Ollama server: GET /api/tags decides health;
// /api/version, /api/ps and /api/show add detail when they answer.
func (p *Prober) probeOllama(ctx context.Context, base string) Result {
	hctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	b, err := p.fetchJSON(hctx, "GET", base, "/api/tags", nil)
	if err != nil {
		return Result{Err: err.Error()}
	}
	tags, err := parseOllamaTags(b)
	if err != nil {
		return Result{Err: "GET /api/tags: " + err.Error()}
	}
	res := Result{Healthy: true}
	if b, err := p.fetchJSON(hctx, "GET", base, "/api/version", nil); err == nil {
		res.Version, _ = parseVersion(b)
	} else {
		p.log.DebugContext(ctx, "ollama version unavailable", slog.String("error", err.Error()))
	}
	res.Simulated = isSimulated(res.Version)
	loaded := map[string]bool{}
	if b, err := p.fetchJSON(hctx, "GET", base, "/api/ps", nil); err == nil {
		running, _ := parseOllamaTags(b)
		for _, t := range running {
			loaded[t.name()] = true
		}
	}
	res.Models = p.describeOllama(ctx, base, tags, loaded)
	return res
}

// describeOllama turns the tag list into model specs, asking /api/show (at
// most showConcurrency at a time) only for models not described before under
// the same digest.
func (p *Prober) describeOllama(ctx context.Context, base string, tags []ollamaTag, loaded map[string]bool) []store.ModelSpec {
	p.mu.Lock()
	cached := p.shows[base]
	p.mu.Unlock()

	sctx, cancel := context.WithTimeout(ctx, p.showTimeout)
	defer cancel()
	specs := make([]store.ModelSpec, len(tags))
	described := make([]bool, len(tags))
	sem := make(chan struct{}, showConcurrency)
	var wg sync.WaitGroup
	for i, t := range tags {
		key := showKey{t.name(), t.Digest}
		if spec, ok := cached[key]; ok && t.Digest != "" {
			specs[i], described[i] = spec, true
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			specs[i], described[i] = p.showOllama(sctx, base, t)
		})
	}
	wg.Wait()

	fresh := make(map[showKey]store.ModelSpec, len(tags))
	for i, t := range tags {
		if described[i] && t.Digest != "" {
			fresh[showKey{t.name(), t.Digest}] = specs[i]
		}
		specs[i].Capabilities = slices.Clone(specs[i].Capabilities)
		specs[i].Loaded = loaded[t.name()]
	}
	p.mu.Lock()
	if _, ok := p.shows[base]; !ok && len(p.shows) >= maxCachedURLs {
		clear(p.shows)
	}
	p.shows[base] = fresh
	p.mu.Unlock()
	slices.SortFunc(specs, func(a, b store.ModelSpec) int { return strings.Compare(a.Name, b.Name) })
	return specs
}

// showOllama describes one model; when /api/show fails it falls back to what
// the tag list says and reports that the model was not described.
func (p *Prober) showOllama(ctx context.Context, base string, t ollamaTag) (store.ModelSpec, bool) {
	spec := store.ModelSpec{
		Name:          t.name(),
		Family:        t.Details.Family,
		ParameterSize: t.Details.ParameterSize,
		Quantization:  t.Details.QuantizationLevel,
		SizeBytes:     t.Size,
		ContextLength: DefaultContextLength,
	}
	b, err := p.fetchJSON(ctx, "POST", base, "/api/show", map[string]string{"model": spec.Name})
	var show ollamaShow
	if err == nil {
		show, err = parseOllamaShow(b)
	}
	if err != nil {
		p.log.DebugContext(ctx, "ollama show failed", slog.String("model", spec.Name), slog.String("error", err.Error()))
		if strings.Contains(strings.ToLower(spec.Name), "embed") {
			spec.Capabilities = []string{"embedding"}
		}
		return spec, false
	}
	ctxLen := show.ContextLength
	if show.NumCtx > 0 && (ctxLen == 0 || show.NumCtx < ctxLen) {
		ctxLen = show.NumCtx
	}
	if ctxLen > 0 {
		spec.ContextLength = ctxLen
	}
	spec.EmbeddingLength = show.EmbeddingLength
	spec.Capabilities = show.Capabilities
	if spec.Family == "" {
		spec.Family = show.Family
	}
	if spec.ParameterSize == "" {
		spec.ParameterSize = show.ParameterSize
	}
	if spec.Quantization == "" {
		spec.Quantization = show.Quantization
	}
	return spec, true
}
