package registry

import (
	"context"
	"strings"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// Bounds on the text of the catalog rules (the store's columns).
const (
	maxDisplayName = 255
	maxDescription = 2000
	// maxContextOverride bounds an overridden context window (16M tokens).
	maxContextOverride = 1 << 24
)

// CatalogServer serves adminv1.CatalogService over a Registry: the
// administrator's model overrides and aliases. As AdminServer, it answers
// malformed calls itself and passes domain errors on.
type CatalogServer struct {
	adminv1.UnimplementedCatalogServiceServer
	r *Registry
}

// NewCatalogServer returns the CatalogService for r.
func NewCatalogServer(r *Registry) *CatalogServer { return &CatalogServer{r: r} }

var _ adminv1.CatalogServiceServer = (*CatalogServer)(nil)

// ListModelOverrides lists the overrides in force.
func (s *CatalogServer) ListModelOverrides(context.Context, *adminv1.ListModelOverridesRequest) (*adminv1.ListModelOverridesResponse, error) {
	os := s.r.ModelOverrides()
	out := make([]*adminv1.ModelOverride, len(os))
	for i, o := range os {
		out[i] = overrideProto(o)
	}
	return &adminv1.ListModelOverridesResponse{Overrides: out}, nil
}

// SetModelOverride stores an override.
func (s *CatalogServer) SetModelOverride(ctx context.Context, req *adminv1.SetModelOverrideRequest) (*adminv1.SetModelOverrideResponse, error) {
	o := req.GetOverride()
	model, err := validName("override.model", o.GetModel())
	if err != nil {
		return nil, err
	}
	switch {
	case o.GetContextLength() < 0 || o.GetContextLength() > maxContextOverride:
		return nil, invalidf("override.context_length must be between 0 and %d", maxContextOverride)
	case len(o.GetDisplayName()) > maxDisplayName:
		return nil, invalidf("override.display_name is longer than %d bytes", maxDisplayName)
	case len(o.GetDescription()) > maxDescription:
		return nil, invalidf("override.description is longer than %d bytes", maxDescription)
	}
	saved, err := s.r.SetModelOverride(ctx, store.ModelOverride{
		Model: model, Vision: o.Vision, Tools: o.Tools, Thinking: o.Thinking, Embeddings: o.Embeddings,
		StructuredOutput: o.StructuredOutput, ContextLength: o.GetContextLength(),
		DisplayName: strings.TrimSpace(o.GetDisplayName()), Description: strings.TrimSpace(o.GetDescription()),
	})
	if err != nil {
		return nil, err
	}
	return &adminv1.SetModelOverrideResponse{Override: overrideProto(saved)}, nil
}

// DeleteModelOverride removes an override.
func (s *CatalogServer) DeleteModelOverride(ctx context.Context, req *adminv1.DeleteModelOverrideRequest) (*adminv1.DeleteModelOverrideResponse, error) {
	model, err := validName("model", req.GetModel())
	if err != nil {
		return nil, err
	}
	if err := s.r.DeleteModelOverride(ctx, model); err != nil {
		return nil, err
	}
	return &adminv1.DeleteModelOverrideResponse{Deleted: true}, nil
}

// ListModelAliases lists the aliases in force.
func (s *CatalogServer) ListModelAliases(context.Context, *adminv1.ListModelAliasesRequest) (*adminv1.ListModelAliasesResponse, error) {
	as := s.r.ModelAliases()
	out := make([]*adminv1.ModelAlias, len(as))
	for i, a := range as {
		out[i] = aliasProto(a)
	}
	return &adminv1.ListModelAliasesResponse{Aliases: out}, nil
}

// SetModelAlias stores an alias.
func (s *CatalogServer) SetModelAlias(ctx context.Context, req *adminv1.SetModelAliasRequest) (*adminv1.SetModelAliasResponse, error) {
	a := req.GetAlias()
	if len(a.GetDescription()) > maxDescription {
		return nil, invalidf("alias.description is longer than %d bytes", maxDescription)
	}
	targets := make([]string, 0, len(a.GetTargets()))
	for _, t := range a.GetTargets() {
		t, err := validName("alias.targets", t)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	saved, err := s.r.SetModelAlias(ctx, store.ModelAlias{
		Name: strings.TrimSpace(a.GetName()), Targets: targets, Description: strings.TrimSpace(a.GetDescription()),
	})
	if err != nil {
		return nil, err
	}
	return &adminv1.SetModelAliasResponse{Alias: aliasProto(saved)}, nil
}

// DeleteModelAlias removes an alias.
func (s *CatalogServer) DeleteModelAlias(ctx context.Context, req *adminv1.DeleteModelAliasRequest) (*adminv1.DeleteModelAliasResponse, error) {
	name, err := validName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.r.DeleteModelAlias(ctx, name); err != nil {
		return nil, err
	}
	return &adminv1.DeleteModelAliasResponse{Deleted: true}, nil
}

func overrideProto(o store.ModelOverride) *adminv1.ModelOverride {
	return &adminv1.ModelOverride{
		Model: o.Model, Vision: o.Vision, Tools: o.Tools, Thinking: o.Thinking, Embeddings: o.Embeddings,
		StructuredOutput: o.StructuredOutput, ContextLength: o.ContextLength,
		DisplayName: o.DisplayName, Description: o.Description, UpdatedAt: timestamp(o.UpdatedAt),
	}
}

func aliasProto(a store.ModelAlias) *adminv1.ModelAlias {
	return &adminv1.ModelAlias{Name: a.Name, Targets: a.Targets, Description: a.Description, UpdatedAt: timestamp(a.UpdatedAt)}
}
