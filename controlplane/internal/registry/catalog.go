package registry

import (
	"cmp"
	"slices"

	"google.golang.org/protobuf/proto"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Catalog returns the models clients may use: one entry per model name (a
// name and its ":latest" form are one model), merged over the healthy backends
// serving it, ordered by name. The context length is the largest model
// maximum among those backends, bounded by ContextCap. Simulated is true when
// every one of those backends is the engine simulator. The result is the
// caller's to keep.
func (r *Registry) Catalog() []*controlplanev1.CatalogModel {
	cat := r.view.Load().catalog
	out := make([]*controlplanev1.CatalogModel, len(cat))
	for i, m := range cat {
		out[i] = proto.CloneOf(m)
	}
	return out
}

// buildCatalog merges the view's models into catalog entries.
func buildCatalog(v *view, contextCap int64) []*controlplanev1.CatalogModel {
	var out []*controlplanev1.CatalogModel
	for key, listed := range v.byKey {
		m := catalogEntry(listed, contextCap)
		if a, ok := v.aliasOf[key]; ok {
			m = aliasEntry(key, a, listed, contextCap)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *controlplanev1.CatalogModel) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// catalogEntry merges one model over its healthy backends; nil when none is
// healthy.
func catalogEntry(listed []Candidate, contextCap int64) *controlplanev1.CatalogModel {
	var cm *controlplanev1.CatalogModel
	var maxCtx int64
	caps := map[controlplanev1.Capability]bool{}
	engines := map[controlplanev1.Engine]bool{}
	for _, c := range listed {
		if c.Backend.Status != StatusHealthy {
			continue
		}
		m := c.Model
		if cm == nil {
			cm = &controlplanev1.CatalogModel{Name: m.Name, Simulated: true}
		}
		cm.HealthyBackends++
		cm.Loaded = cm.Loaded || m.Loaded
		cm.Simulated = cm.Simulated && c.Backend.Simulated
		cm.Family = cmp.Or(cm.Family, m.Family)
		cm.ParameterSize = cmp.Or(cm.ParameterSize, m.ParameterSize)
		cm.Quantization = cmp.Or(cm.Quantization, m.Quantization)
		cm.EmbeddingLength = cmp.Or(cm.EmbeddingLength, m.EmbeddingLength)
		cm.DisplayName = cmp.Or(cm.DisplayName, m.DisplayName)
		cm.Description = cmp.Or(cm.Description, m.Description)
		if first := cmp.Or(m.CreatedAt, c.Backend.CreatedAt); !first.IsZero() && (cm.Created == 0 || first.Unix() < cm.Created) {
			cm.Created = first.Unix()
		}
		maxCtx = max(maxCtx, m.ContextLength)
		engines[engineProto(c.Backend.Engine)] = true
		for _, cp := range catalogCapabilities(m) {
			caps[cp] = true
		}
	}
	if cm == nil {
		return nil
	}
	cm.ContextLength = min(maxCtx, contextCap)
	cm.Capabilities = sortedKeys(caps)
	cm.Engines = sortedKeys(engines)
	return cm
}

// catalogCapabilities maps a model's engine capabilities to the contract's.
// Every text model accepts structured output (both engines constrain output
// to a JSON schema) unless an administrator's override says otherwise.
func catalogCapabilities(m Model) []controlplanev1.Capability {
	var out []controlplanev1.Capability
	if chatCapable(m) {
		out = append(out, controlplanev1.Capability_CAPABILITY_COMPLETION)
	}
	if structuredCapable(m) {
		out = append(out, controlplanev1.Capability_CAPABILITY_STRUCTURED_OUTPUT)
	}
	if toolCapable(m) {
		out = append(out, controlplanev1.Capability_CAPABILITY_TOOLS)
	}
	for name, cp := range map[string]controlplanev1.Capability{
		"vision":    controlplanev1.Capability_CAPABILITY_VISION,
		"thinking":  controlplanev1.Capability_CAPABILITY_THINKING,
		"embedding": controlplanev1.Capability_CAPABILITY_EMBEDDING,
		"rerank":    controlplanev1.Capability_CAPABILITY_RERANK,
		// Models of speech backends (health.SpeechCapability, TranscriptionCapability).
		"speech":        controlplanev1.Capability_CAPABILITY_SPEECH,
		"transcription": controlplanev1.Capability_CAPABILITY_TRANSCRIPTION,
	} {
		if hasCap(m, name) {
			out = append(out, cp)
		}
	}
	return out
}

// engineProto converts an engine to the contract's enum.
func engineProto(e Engine) controlplanev1.Engine {
	switch e {
	case EngineOllama:
		return controlplanev1.Engine_ENGINE_OLLAMA
	case EngineVLLM:
		return controlplanev1.Engine_ENGINE_VLLM
	case EngineTTS:
		return controlplanev1.Engine_ENGINE_TTS
	case EngineSTT:
		return controlplanev1.Engine_ENGINE_STT
	default:
		return controlplanev1.Engine_ENGINE_UNSPECIFIED
	}
}

// sortedKeys returns a set's members in order.
func sortedKeys[K cmp.Ordered](set map[K]bool) []K {
	out := make([]K, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// catalogEqual compares two catalog entries.
func catalogEqual(a, b *controlplanev1.CatalogModel) bool { return proto.Equal(a, b) }
