package cpclient

import (
	"context"
	"time"

	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// ModelOverride is an administrator's correction of what discovery says
// about one model name. A nil capability keeps the discovered value; a zero
// ContextLength keeps the discovered window.
type ModelOverride struct {
	Model                                           string
	Vision, Tools, Thinking, Embeddings, Structured *bool
	ContextLength                                   int64
	DisplayName, Description                        string
	UpdatedAt                                       time.Time
}

// ModelAlias is a public model name standing for one or more real models.
type ModelAlias struct {
	Name        string
	Targets     []string
	Description string
	UpdatedAt   time.Time
}

// ModelOverrides lists the overrides (admins and auditors).
func (w *Web) ModelOverrides(ctx context.Context, c Caller) ([]ModelOverride, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.catalog.ListModelOverrides(ctx, &adminv1.ListModelOverridesRequest{})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]ModelOverride, len(r.GetOverrides()))
	for i, o := range r.GetOverrides() {
		out[i] = ModelOverride{Model: o.GetModel(), Vision: o.Vision, Tools: o.Tools, Thinking: o.Thinking,
			Embeddings: o.Embeddings, Structured: o.StructuredOutput, ContextLength: o.GetContextLength(),
			DisplayName: o.GetDisplayName(), Description: o.GetDescription(), UpdatedAt: ts(o.GetUpdatedAt())}
	}
	return out, nil
}

// SetModelOverride creates or replaces the override of o.Model (admins; the
// control plane records it in the admin-action log).
func (w *Web) SetModelOverride(ctx context.Context, c Caller, o ModelOverride) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.catalog.SetModelOverride(ctx, &adminv1.SetModelOverrideRequest{Override: &adminv1.ModelOverride{
		Model: o.Model, Vision: o.Vision, Tools: o.Tools, Thinking: o.Thinking, Embeddings: o.Embeddings,
		StructuredOutput: o.Structured, ContextLength: o.ContextLength, DisplayName: o.DisplayName, Description: o.Description}})
	return webError(err)
}

// DeleteModelOverride removes the override of model (admins).
func (w *Web) DeleteModelOverride(ctx context.Context, c Caller, model string) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.catalog.DeleteModelOverride(ctx, &adminv1.DeleteModelOverrideRequest{Model: model})
	return webError(err)
}

// ModelAliases lists the aliases (admins and auditors).
func (w *Web) ModelAliases(ctx context.Context, c Caller) ([]ModelAlias, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.catalog.ListModelAliases(ctx, &adminv1.ListModelAliasesRequest{})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]ModelAlias, len(r.GetAliases()))
	for i, a := range r.GetAliases() {
		out[i] = ModelAlias{Name: a.GetName(), Targets: a.GetTargets(), Description: a.GetDescription(), UpdatedAt: ts(a.GetUpdatedAt())}
	}
	return out, nil
}

// SetModelAlias creates or replaces an alias (admins).
func (w *Web) SetModelAlias(ctx context.Context, c Caller, a ModelAlias) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.catalog.SetModelAlias(ctx, &adminv1.SetModelAliasRequest{Alias: &adminv1.ModelAlias{
		Name: a.Name, Targets: a.Targets, Description: a.Description}})
	return webError(err)
}

// DeleteModelAlias removes an alias (admins).
func (w *Web) DeleteModelAlias(ctx context.Context, c Caller, name string) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.catalog.DeleteModelAlias(ctx, &adminv1.DeleteModelAliasRequest{Name: name})
	return webError(err)
}
