package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// CatalogStore keeps the administrator's catalog rules: model overrides and
// aliases (the store package). A Store that does not implement it has none.
type CatalogStore interface {
	ListModelOverrides(ctx context.Context) ([]store.ModelOverride, error)
	SetModelOverride(ctx context.Context, o store.ModelOverride) (store.ModelOverride, error)
	DeleteModelOverride(ctx context.Context, model string) error
	ListModelAliases(ctx context.Context) ([]store.ModelAlias, error)
	SetModelAlias(ctx context.Context, a store.ModelAlias) (store.ModelAlias, error)
	DeleteModelAlias(ctx context.Context, name string) error
}

// errNoCatalogStore refuses rule changes on a registry whose store keeps none.
var errNoCatalogStore = errors.New("this registry's store keeps no model overrides or aliases")

// rules are the catalog rules in force, keyed by model key (overrides) and
// alias name. They are replaced whole, never modified.
type rules struct {
	overrides map[string]store.ModelOverride
	aliases   map[string]store.ModelAlias
}

// aliasName is what an alias may be called: what clients can type as a model
// name, without the characters that would make it look like a path or a tag.
var aliasName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// loadRules reads the rules from the store, or none when it keeps none.
func (r *Registry) loadRules(ctx context.Context) (rules, error) {
	cs, ok := r.st.(CatalogStore)
	if !ok {
		return rules{}, nil
	}
	os, err := cs.ListModelOverrides(ctx)
	if err != nil {
		return rules{}, fmt.Errorf("load model overrides: %w", err)
	}
	as, err := cs.ListModelAliases(ctx)
	if err != nil {
		return rules{}, fmt.Errorf("load model aliases: %w", err)
	}
	out := rules{overrides: make(map[string]store.ModelOverride, len(os)), aliases: make(map[string]store.ModelAlias, len(as))}
	for _, o := range os {
		out.overrides[modelKey(o.Model)] = o
	}
	for _, a := range as {
		out.aliases[a.Name] = a
	}
	return out, nil
}

// ModelOverrides returns the overrides in force, ordered by model name.
func (r *Registry) ModelOverrides() []store.ModelOverride {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sortedValues(r.rules.overrides)
}

// ModelAliases returns the aliases in force, ordered by name.
func (r *Registry) ModelAliases() []store.ModelAlias {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sortedValues(r.rules.aliases)
}

// sortedValues returns a map's values ordered by their keys.
func sortedValues[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

// SetModelOverride stores an override of a model name and applies it to the
// catalog and to admission at once (the catalog's version moves, so every
// data plane is told).
func (r *Registry) SetModelOverride(ctx context.Context, o store.ModelOverride) (store.ModelOverride, error) {
	o.Model = modelKey(o.Model)
	if o.Model == "" {
		return store.ModelOverride{}, fmt.Errorf("set model override: %w: a model name is required", store.ErrInvalid)
	}
	if o.ContextLength < 0 {
		return store.ModelOverride{}, fmt.Errorf("set override of model %q: %w: context length must not be negative", o.Model, store.ErrInvalid)
	}
	return updateRules(r, func(cs CatalogStore) (store.ModelOverride, error) { return cs.SetModelOverride(ctx, o) },
		func(rs *rules, saved store.ModelOverride) { rs.overrides[saved.Model] = saved })
}

// DeleteModelOverride removes the override of a model name.
func (r *Registry) DeleteModelOverride(ctx context.Context, model string) error {
	key := modelKey(model)
	_, err := updateRules(r, func(cs CatalogStore) (struct{}, error) { return struct{}{}, cs.DeleteModelOverride(ctx, key) },
		func(rs *rules, _ struct{}) { delete(rs.overrides, key) })
	return err
}

// SetModelAlias stores an alias. Its name must not be a model's (a real model
// always wins, so such an alias would never be used) and its targets must
// not be aliases (one level, so that resolution is a single lookup).
func (r *Registry) SetModelAlias(ctx context.Context, a store.ModelAlias) (store.ModelAlias, error) {
	op := fmt.Sprintf("set model alias %q", a.Name)
	if !aliasName.MatchString(a.Name) {
		return store.ModelAlias{}, fmt.Errorf("%s: %w: an alias name is 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", op, store.ErrInvalid)
	}
	targets := make([]string, 0, len(a.Targets))
	for _, t := range a.Targets {
		if t = modelKey(t); t != "" && !slices.Contains(targets, t) {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 || len(targets) > 32 {
		return store.ModelAlias{}, fmt.Errorf("%s: %w: an alias needs 1 to 32 target models", op, store.ErrInvalid)
	}
	a.Targets = targets
	v := r.view.Load()
	if _, ok := v.byKey[modelKey(a.Name)]; ok && !v.isAlias[modelKey(a.Name)] {
		return store.ModelAlias{}, fmt.Errorf("%s: %w: a model of that name exists", op, store.ErrConflict)
	}
	r.mu.Lock()
	for _, t := range targets {
		if _, ok := r.rules.aliases[t]; ok || t == a.Name {
			r.mu.Unlock()
			return store.ModelAlias{}, fmt.Errorf("%s: %w: target %q is an alias", op, store.ErrInvalid, t)
		}
	}
	r.mu.Unlock()
	return updateRules(r, func(cs CatalogStore) (store.ModelAlias, error) { return cs.SetModelAlias(ctx, a) },
		func(rs *rules, saved store.ModelAlias) { rs.aliases[saved.Name] = saved })
}

// DeleteModelAlias removes an alias.
func (r *Registry) DeleteModelAlias(ctx context.Context, name string) error {
	_, err := updateRules(r, func(cs CatalogStore) (struct{}, error) { return struct{}{}, cs.DeleteModelAlias(ctx, name) },
		func(rs *rules, _ struct{}) { delete(rs.aliases, name) })
	return err
}

// updateRules writes a rule change to the store, then publishes a view with
// the changed rules.
func updateRules[T any](r *Registry, write func(CatalogStore) (T, error), apply func(*rules, T)) (T, error) {
	var zero T
	cs, ok := r.st.(CatalogStore)
	if !ok {
		return zero, errNoCatalogStore
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	saved, err := write(cs)
	if err != nil {
		return zero, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	next := rules{overrides: make(map[string]store.ModelOverride, len(r.rules.overrides)+1), aliases: make(map[string]store.ModelAlias, len(r.rules.aliases)+1)}
	for k, o := range r.rules.overrides {
		next.overrides[k] = o
	}
	for k, a := range r.rules.aliases {
		next.aliases[k] = a
	}
	apply(&next, saved)
	r.rules = next
	r.rebuildLocked()
	r.log.Info("catalog rules changed", slog.Int("overrides", len(next.overrides)), slog.Int("aliases", len(next.aliases)))
	return saved, nil
}

// applyOverride returns the model as the override describes it: each set
// capability added or removed, the context window replaced. A model whose
// engine reported no capabilities is first given the ones the registry
// assumes for it (completion and tools), so that adding one does not take
// the assumed ones away.
func applyOverride(m Model, o store.ModelOverride) Model {
	caps := slices.Clone(m.Capabilities)
	if len(caps) == 0 {
		caps = []string{"completion", "tools"}
	}
	for name, v := range map[string]*bool{"vision": o.Vision, "tools": o.Tools, "thinking": o.Thinking, "embedding": o.Embeddings} {
		if v == nil {
			continue
		}
		caps = slices.DeleteFunc(caps, func(c string) bool { return c == name })
		if *v {
			caps = append(caps, name)
		}
	}
	slices.Sort(caps)
	m.Capabilities = caps
	if o.StructuredOutput != nil {
		m.noStructuredOutput = !*o.StructuredOutput
	}
	if o.ContextLength > 0 {
		m.ContextLength = o.ContextLength
	}
	m.DisplayName, m.Description = o.DisplayName, o.Description
	return m
}

// structuredCapable reports whether a model constrains output to a schema:
// every text model does (both engines) unless an administrator said no.
func structuredCapable(m Model) bool { return chatCapable(m) && !m.noStructuredOutput }

// addAliases lists each alias under its own key with the candidates of its
// targets (ordered by backend id, then target order), unless a model has
// that name. It marks the keys it adds in v.isAlias.
func addAliases(v *view, aliases map[string]store.ModelAlias) {
	for name, a := range aliases {
		key := modelKey(name)
		if _, taken := v.byKey[key]; taken {
			continue
		}
		var cands []Candidate
		var lives []*live
		for _, t := range a.Targets {
			cands = append(cands, v.byKey[modelKey(t)]...)
			lives = append(lives, v.byKeyLive[modelKey(t)]...)
		}
		if len(cands) == 0 {
			continue
		}
		idx := make([]int, len(cands))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(i, j int) int { return cmp.Compare(cands[i].Backend.ID, cands[j].Backend.ID) })
		sc, sl := make([]Candidate, len(idx)), make([]*live, len(idx))
		for i, k := range idx {
			sc[i], sl[i] = cands[k], lives[k]
		}
		v.byKey[key], v.byKeyLive[key], v.isAlias[key] = sc, sl, true
		v.aliasOf[key] = a
	}
}

// aliasEntry is an alias's catalog entry: its targets' entries merged, under
// its own name, marked as an alias.
func aliasEntry(name string, a store.ModelAlias, listed []Candidate, contextCap int64) *controlplanev1.CatalogModel {
	cm := catalogEntry(listed, contextCap)
	if cm == nil {
		return nil
	}
	cm.Name, cm.IsAlias, cm.AliasTargets = name, true, slices.Clone(a.Targets)
	cm.DisplayName, cm.Description = "", a.Description
	return cm
}
