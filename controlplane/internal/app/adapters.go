package app

import (
	"context"
	"strings"
	"sync"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/scoring"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// The adapters between admission's ports and the components that serve them
// live here, in the composition root, so that admission depends on neither the
// identity service nor the registry's and scoring's types.

// The identity service's revocation feed is used as is.
var _ admission.Revocations = (*identity.Service)(nil)

// identityPort adapts the identity service (API keys) and, when sessions is
// set, browser sessions (the web chat's credential) to admission.Identity.
func identityPort(s *identity.Service, sessions SessionVerifier) admission.Identity {
	return identityAdapter{s, sessions}
}

// SessionVerifier resolves a browser session (identity.Accounts).
type SessionVerifier interface {
	VerifySession(ctx context.Context, token string) (identity.Principal, error)
}

type identityAdapter struct {
	s        *identity.Service
	sessions SessionVerifier
}

// SessionCredentialPrefix starts the credential a data plane's web chat puts
// in Admit and ListModels: "session:<session token>:<CSRF token>". The web
// chat has no API key; its messages are admitted, charged and audited as the
// session's user, exactly like that user's API requests.
const SessionCredentialPrefix = "session:"

func (a identityAdapter) Verify(ctx context.Context, credential string) (admission.Principal, error) {
	if rest, ok := strings.CutPrefix(credential, SessionCredentialPrefix); ok && a.sessions != nil {
		return a.verifySession(ctx, rest)
	}
	p, err := a.s.Verify(ctx, credential)
	if err != nil {
		return admission.Principal{}, err
	}
	// Counted in memory and flushed in batches: no database write per request.
	a.s.RecordUse(p.APIKeyID)
	return principalFrom(p), nil
}

// verifySession resolves "<session token>:<CSRF token>": the session must be
// valid and the CSRF token its own (compared in constant time), so that a
// page of another site cannot chat on a signed-in browser's behalf. The
// session acts with its user's group rights, inference included (a session
// carries no key scopes); it has no key, so no key counts or key limits apply.
func (a identityAdapter) verifySession(ctx context.Context, rest string) (admission.Principal, error) {
	token, csrf, ok := strings.Cut(rest, ":")
	if !ok || token == "" || csrf == "" {
		return admission.Principal{}, identity.ErrInvalidCredential
	}
	p, err := a.sessions.VerifySession(ctx, token)
	if err != nil {
		return admission.Principal{}, err
	}
	if !identity.SameSecret(csrf, p.CSRFToken) {
		return admission.Principal{}, identity.ErrCSRF
	}
	out := principalFrom(p)
	out.Inference = true
	return out, nil
}

func principalFrom(p identity.Principal) admission.Principal {
	return admission.Principal{
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

// registryPort adapts the registry to admission.Registry (and its optional
// Screener, CircuitView and BackendView).
func registryPort(r *registry.Registry) admission.Registry { return registryAdapter{r} }

// registryAdapter passes every method through but Candidates, which it converts.
type registryAdapter struct{ *registry.Registry }

func (a registryAdapter) Candidates(model string, op controlplanev1.Operation, needs []controlplanev1.Capability) ([]admission.Candidate, error) {
	cs, err := a.Registry.Candidates(model, op, needs)
	if err != nil {
		return nil, err
	}
	return candidatesFrom(cs), nil
}

func candidatesFrom(cs []registry.Candidate) []admission.Candidate {
	out := make([]admission.Candidate, len(cs))
	for i, c := range cs {
		out[i] = candidateFrom(c)
	}
	return out
}

// Screen is Candidates with the backends the hard filters removed (Screener).
func (a registryAdapter) Screen(model string, op controlplanev1.Operation, needs []controlplanev1.Capability) ([]admission.Candidate, []admission.Exclusion, error) {
	cs, removed, err := a.Registry.Screen(model, op, needs)
	if err != nil {
		return nil, nil, err
	}
	out := candidatesFrom(cs)
	var ex []admission.Exclusion
	if len(removed) > 0 {
		ex = make([]admission.Exclusion, len(removed))
		for i, x := range removed {
			ex[i] = admission.Exclusion{BackendID: x.BackendID, BackendName: x.BackendName, Reason: x.Reason}
		}
	}
	return out, ex, nil
}

// Circuit is the backend's circuit-breaker state (CircuitView).
func (a registryAdapter) Circuit(backendID int64) string {
	return string(a.Registry.Circuit(backendID))
}

// Backends lists every registered backend (BackendView).
func (a registryAdapter) Backends() []admission.BackendInfo {
	bs := a.ListBackends()
	out := make([]admission.BackendInfo, len(bs))
	for i, b := range bs {
		out[i] = admission.BackendInfo{ID: b.ID, Name: b.Name, MaxConcurrent: b.MaxConcurrent}
	}
	return out
}

func candidateFrom(c registry.Candidate) admission.Candidate {
	return admission.Candidate{
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
	case registry.EngineTTS:
		return controlplanev1.Engine_ENGINE_TTS
	case registry.EngineSTT:
		return controlplanev1.Engine_ENGINE_STT
	}
	return controlplanev1.Engine_ENGINE_UNSPECIFIED
}

// registryScorer returns the admission.Scorer of the reference's table
// (package scoring): model loaded, GPU utilisation, latency, queue share,
// throughput and admin priority, from the registry's live readings of each
// candidate and the scheduler's exact in-flight counts. The zero Weights means
// scoring.Defaults.
func registryScorer(r *registry.Registry, w scoring.Weights) admission.Scorer {
	return newTableScorer(r, w)
}

// scoringSource describes a backend for scoring.Score; *registry.Registry is one.
type scoringSource interface {
	ScoringInput(backendID int64, loaded bool, inFlight int) (scoring.Input, bool)
}

func newTableScorer(r scoringSource, w scoring.Weights) *tableScorer {
	if w == (scoring.Weights{}) {
		w = scoring.Defaults()
	}
	return &tableScorer{r: r, w: w}
}

type tableScorer struct {
	r scoringSource
	w scoring.Weights
	// scratch recycles the inputs and verdicts of one Score call: it runs under
	// the scheduler's lock on every attempt to place a waiter.
	scratch sync.Pool
}

// scoreScratch is the buffers of one Score call.
type scoreScratch struct {
	inputs []scoring.Input
	scored []scoring.Scored
}

// Score implements admission.Scorer.
func (s *tableScorer) Score(in admission.ScoreInput, out []admission.Score) {
	sc, _ := s.scratch.Get().(*scoreScratch)
	if sc == nil {
		sc = &scoreScratch{}
	}
	defer s.scratch.Put(sc)
	inputs := sc.inputs[:0]
	for i := range in.Candidates {
		c := &in.Candidates[i]
		n := in.Load.InFlight(c.BackendID)
		si, ok := s.r.ScoringInput(c.BackendID, c.Loaded, n)
		if !ok {
			// Removed since the plan was made: score it from what the plan knows.
			si = scoring.Input{BackendID: c.BackendID, Name: c.BackendName, Loaded: c.Loaded, GPUUtilization: -1,
				InFlight: n, MaxConcurrent: c.MaxConcurrent, Priority: c.Priority}
		}
		inputs = append(inputs, si)
	}
	scored := scoring.AppendScores(sc.scored[:0], inputs, s.w)
	sc.inputs, sc.scored = inputs, scored
	for i := range scored {
		sc := &scored[i]
		o := &out[i]
		o.Eligible, o.ExcludedReason, o.Total = sc.Eligible, sc.Reason, sc.Total
		if !sc.Eligible && sc.Reason == scoring.ReasonNoCapacity {
			o.ExcludedReason = admission.ReasonNoFreeSlot
		}
		cp := sc.Components
		o.Components = append(o.Components[:0],
			admission.Component{Name: scoring.ComponentLoaded, Value: cp.Loaded},
			admission.Component{Name: scoring.ComponentGPUUtilization, Value: cp.GPUUtilization},
			admission.Component{Name: scoring.ComponentLatency, Value: cp.Latency},
			admission.Component{Name: scoring.ComponentQueue, Value: cp.Queue},
			admission.Component{Name: scoring.ComponentThroughput, Value: cp.Throughput},
			admission.Component{Name: scoring.ComponentPriority, Value: cp.Priority})
	}
}

// actorName names the administrator behind an admin call (the server puts the
// caller in the context), for the system switch's "changed by".
func actorName(ctx context.Context) string {
	a, _ := store.ActorFromContext(ctx)
	return a.Username
}
