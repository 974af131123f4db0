package registry

import (
	"cmp"
	"slices"
	"strings"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// view is an immutable snapshot of the registry, published on every change so
// that reads take no lock.
type view struct {
	backends []Backend // ordered by id, Models filled
	byID     map[int64]int
	models   []Model // ordered by backend id, then name
	// byKey maps a model key (modelKey) to every backend listing the model, of
	// any status, ordered by backend id.
	byKey map[string][]Candidate
	// byKeyLive holds the live state of byKey's backends, index for index.
	byKeyLive map[string][]*live
	// live is every backend's live state, by id.
	live map[int64]*live
	// loadedBytes is the memory of the loaded models of every backend whose
	// loaded models all report a size, by id.
	loadedBytes map[int64]int64
	// isAlias marks the keys of byKey that are aliases, aliasOf holds them.
	isAlias map[string]bool
	aliasOf map[string]store.ModelAlias
	catalog []*controlplanev1.CatalogModel
}

// modelKey is the name under which a model is found: Ollama reports untagged
// names with ":latest", and clients may send either form.
func modelKey(name string) string {
	return strings.TrimSuffix(name, ":latest")
}

// buildView snapshots the entries, with the catalog rules applied: each
// model as its override describes it, and each alias listed under its name.
func buildView(entries map[int64]*entry, contextCap int64, rs rules) *view {
	v := &view{
		byID: make(map[int64]int, len(entries)), byKey: map[string][]Candidate{}, byKeyLive: map[string][]*live{},
		live: make(map[int64]*live, len(entries)), loadedBytes: map[int64]int64{},
		isAlias: map[string]bool{}, aliasOf: map[string]store.ModelAlias{},
	}
	for id, e := range entries {
		v.live[id] = e.live
		if n, ok := loadedBytes(e.models); ok {
			v.loadedBytes[id] = n
		}
		b := e.b
		ms := slices.Clone(e.models)
		slices.SortFunc(ms, func(a, b Model) int { return strings.Compare(a.Name, b.Name) })
		b.Models = make([]string, len(ms))
		for i := range ms {
			ms[i].BackendID, ms[i].BackendName = b.ID, b.Name
			b.Models[i] = ms[i].Name
			if o, ok := rs.overrides[modelKey(ms[i].Name)]; ok {
				ms[i] = applyOverride(ms[i], o)
			}
		}
		v.backends = append(v.backends, b)
		v.models = append(v.models, ms...)
	}
	slices.SortFunc(v.backends, func(a, b Backend) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(v.models, func(a, b Model) int {
		return cmp.Or(cmp.Compare(a.BackendID, b.BackendID), strings.Compare(a.Name, b.Name))
	})
	for i, b := range v.backends {
		v.byID[b.ID] = i
	}
	for _, m := range v.models {
		b := v.backends[v.byID[m.BackendID]]
		key := modelKey(m.Name)
		v.byKey[key] = append(v.byKey[key], Candidate{Backend: b, Model: m})
		v.byKeyLive[key] = append(v.byKeyLive[key], v.live[b.ID])
	}
	addAliases(v, rs.aliases)
	v.catalog = buildCatalog(v, contextCap)
	return v
}

// loadedBytes sums the sizes of the loaded models; false when one of them
// has no size.
func loadedBytes(ms []Model) (int64, bool) {
	var n int64
	for _, m := range ms {
		if !m.Loaded {
			continue
		}
		if m.SizeBytes <= 0 {
			return 0, false
		}
		n += m.SizeBytes
	}
	return n, true
}

// sameRouting reports whether two views route alike: same backends with the
// same status, capacity settings, addresses and models.
func sameRouting(a, b *view) bool {
	if len(a.backends) != len(b.backends) || len(a.models) != len(b.models) {
		return false
	}
	for i := range a.backends {
		x, y := a.backends[i], b.backends[i]
		if x.ID != y.ID || x.Status != y.Status || x.MaxConcurrent != y.MaxConcurrent ||
			x.Priority != y.Priority || x.URL != y.URL || x.Engine != y.Engine ||
			x.Simulated != y.Simulated || x.NodeID != y.NodeID || x.Name != y.Name ||
			!slices.Equal(x.GPUIndices, y.GPUIndices) {
			return false
		}
	}
	for i := range a.models {
		x, y := a.models[i], b.models[i]
		if x.BackendID != y.BackendID || x.Name != y.Name || x.ContextLength != y.ContextLength ||
			x.Loaded != y.Loaded || !slices.Equal(x.Capabilities, y.Capabilities) {
			return false
		}
	}
	return true
}
