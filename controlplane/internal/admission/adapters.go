package admission

import (
	"context"

	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/scoring"
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
		KeyRPMLimit: p.KeyRPMLimit,
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
	return candidatesFrom(cs), nil
}

func candidatesFrom(cs []registry.Candidate) []Candidate {
	out := make([]Candidate, len(cs))
	for i, c := range cs {
		out[i] = candidateFrom(c)
	}
	return out
}

// Screen is Candidates with the backends the hard filters removed (Screener).
func (a registryAdapter) Screen(model string, op controlplanev1.Operation, needs []controlplanev1.Capability) ([]Candidate, []Exclusion, error) {
	cs, removed, err := a.Registry.Screen(model, op, needs)
	if err != nil {
		return nil, nil, err
	}
	out := candidatesFrom(cs)
	var ex []Exclusion
	if len(removed) > 0 {
		ex = make([]Exclusion, len(removed))
		for i, x := range removed {
			ex[i] = Exclusion{BackendID: x.BackendID, BackendName: x.BackendName, Reason: x.Reason}
		}
	}
	return out, ex, nil
}

// Circuit is the backend's circuit-breaker state (CircuitView).
func (a registryAdapter) Circuit(backendID int64) string {
	return string(a.Registry.Circuit(backendID))
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

// NewRegistryScorer returns the Scorer of the reference's table (package
// scoring): model loaded, GPU utilisation, latency, queue share, throughput and
// admin priority, from the registry's live readings of each candidate and the
// scheduler's exact in-flight counts. The zero Weights means scoring.Defaults.
func NewRegistryScorer(r *registry.Registry, w scoring.Weights) Scorer {
	return newTableScorer(r, w)
}

// scoringSource describes a backend for scoring.Score; *registry.Registry is one.
type scoringSource interface {
	ScoringInput(backendID int64, loaded bool, inFlight int) (scoring.Input, bool)
}

func newTableScorer(r scoringSource, w scoring.Weights) *registryScorer {
	if w == (scoring.Weights{}) {
		w = scoring.Defaults()
	}
	return &registryScorer{r: r, w: w}
}

type registryScorer struct {
	r scoringSource
	w scoring.Weights
}

// Score implements Scorer.
func (s *registryScorer) Score(in ScoreInput, out []Score) {
	inputs := make([]scoring.Input, len(in.Candidates))
	for i := range in.Candidates {
		c := &in.Candidates[i]
		n := in.Load.InFlight(c.BackendID)
		si, ok := s.r.ScoringInput(c.BackendID, c.Loaded, n)
		if !ok {
			// Removed since the plan was made: score it from what the plan knows.
			si = scoring.Input{BackendID: c.BackendID, Name: c.BackendName, Loaded: c.Loaded, GPUUtilization: -1,
				InFlight: n, MaxConcurrent: c.MaxConcurrent, Priority: c.Priority}
		}
		inputs[i] = si
	}
	scored := scoring.Score(inputs, s.w)
	for i := range scored {
		sc := &scored[i]
		o := &out[i]
		o.Eligible, o.ExcludedReason, o.Total = sc.Eligible, sc.Reason, sc.Total
		if !sc.Eligible && sc.Reason == scoring.ReasonNoCapacity {
			o.ExcludedReason = reasonFull
		}
		cp := sc.Components
		o.Components = append(o.Components[:0],
			Component{scoring.ComponentLoaded, cp.Loaded},
			Component{scoring.ComponentGPUUtilization, cp.GPUUtilization},
			Component{scoring.ComponentLatency, cp.Latency},
			Component{scoring.ComponentQueue, cp.Queue},
			Component{scoring.ComponentThroughput, cp.Throughput},
			Component{scoring.ComponentPriority, cp.Priority})
	}
}
