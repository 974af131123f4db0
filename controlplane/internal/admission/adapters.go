package admission

import (
	"context"

	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// The identity service's revocation feed is used as is.
var _ Revocations = (*identity.Service)(nil)

// FromIdentity adapts the identity service to Identity.
func FromIdentity(s *identity.Service) Identity { return identityAdapter{s} }

type identityAdapter struct{ s *identity.Service }

func (a identityAdapter) Verify(ctx context.Context, credential string) (Principal, error) {
	p, err := a.s.Verify(ctx, credential)
	if err != nil {
		return Principal{}, err
	}
	// Counted in memory and flushed in batches: no database write per request.
	a.s.RecordUse(p.APIKeyID)
	return principalFrom(p), nil
}

func principalFrom(p identity.Principal) Principal {
	return Principal{
		UserID:      p.UserID,
		Username:    p.Username,
		APIKeyID:    p.APIKeyID,
		KeyPrefix:   p.KeyPrefix,
		GroupID:     p.GroupID,
		Group:       p.Group,
		Inference:   p.HasScope(identity.ScopeInference),
		Weight:      p.Weight,
		RPMLimit:    p.RPMLimit,
		TokenBudget: p.TokenBudget,
	}
}

// FromRegistry adapts the registry to Registry.
func FromRegistry(r *registry.Registry) Registry { return registryAdapter{r} }

// registryAdapter passes every method through but Candidates, which it converts.
type registryAdapter struct{ *registry.Registry }

func (a registryAdapter) Candidates(model string, op controlplanev1.Operation, needs []controlplanev1.Capability) ([]Candidate, error) {
	cs, err := a.Registry.Candidates(model, op, needs)
	if err != nil {
		return nil, err
	}
	out := make([]Candidate, len(cs))
	for i, c := range cs {
		out[i] = candidateFrom(c)
	}
	return out, nil
}

// Backends lists every registered backend (BackendView).
func (a registryAdapter) Backends() []BackendInfo {
	bs := a.Registry.ListBackends()
	out := make([]BackendInfo, len(bs))
	for i, b := range bs {
		out[i] = BackendInfo{ID: b.ID, Name: b.Name, MaxConcurrent: b.MaxConcurrent}
	}
	return out
}

func candidateFrom(c registry.Candidate) Candidate {
	return Candidate{
		BackendID:     c.Backend.ID,
		BackendName:   c.Backend.Name,
		URL:           c.Backend.URL,
		Engine:        engineOf(c.Backend.Engine),
		MaxConcurrent: c.Backend.MaxConcurrent,
		Priority:      c.Backend.Priority,
		Simulated:     c.Backend.Simulated,
		Model:         c.Model.Name,
		ContextLength: c.Model.ContextLength,
		Loaded:        c.Model.Loaded,
	}
}

func engineOf(e registry.Engine) controlplanev1.Engine {
	switch e {
	case registry.EngineOllama:
		return controlplanev1.Engine_ENGINE_OLLAMA
	case registry.EngineVLLM:
		return controlplanev1.Engine_ENGINE_VLLM
	}
	return controlplanev1.Engine_ENGINE_UNSPECIFIED
}
