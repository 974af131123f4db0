package registry

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// The refusals of Candidates. The errors returned wrap one of them and carry a
// message meant for the client.
var (
	// ErrModelNotFound means no backend of any status lists the model.
	ErrModelNotFound = errors.New("model not found")
	// ErrCapabilityUnsupported means backends list the model but none can do
	// what the request needs.
	ErrCapabilityUnsupported = errors.New("capability unsupported")
	// ErrNoHealthyBackend means capable backends list the model but none of
	// them is healthy and enabled. It carries a Retry-After.
	ErrNoHealthyBackend = errors.New("no healthy backend")
	// ErrInsufficientMemory means the healthy backends that list the model
	// have too little GPU memory to load it. It wraps ErrNoHealthyBackend.
	ErrInsufficientMemory = fmt.Errorf("%w: insufficient GPU memory", ErrNoHealthyBackend)
	// ErrCircuitOpen means every backend left has its circuit open; the
	// Retry-After is when the first one turns half-open. It wraps
	// ErrNoHealthyBackend.
	ErrCircuitOpen = fmt.Errorf("%w: circuit open", ErrNoHealthyBackend)
)

// lookupError is a refusal of Candidates with a client-facing message.
type lookupError struct {
	kind  error
	msg   string
	retry time.Duration
}

func (e *lookupError) Error() string { return e.msg }

func (e *lookupError) Unwrap() error { return e.kind }

// RetryAfter is how long a client should wait before trying again; 0 when
// waiting does not help.
func (e *lookupError) RetryAfter() time.Duration { return e.retry }

// Exclusion is a backend listing the model that a hard filter removed.
type Exclusion struct {
	BackendID   int64
	BackendName string
	// Reason says which filter, for people: a capability message, "backend
	// unhealthy" (or disabled, draining, unknown), a memory message,
	// ReasonCircuitOpen.
	Reason string
}

// Candidates returns the backends that may serve a request for model with
// operation op and the given needs, ordered by backend id. It applies the
// hard filters: the backend lists the model ("name" and "name:latest" match
// each other), can do what the request needs, is healthy (not unhealthy,
// unknown, disabled or draining), has GPU memory for the model (see
// memoryFit) and its circuit is not open. A half-open circuit is a candidate:
// AcquireCircuit decides at the choice whether this request may be its
// trial. Capacity and scoring are for the caller. The error wraps
// ErrModelNotFound, ErrCapabilityUnsupported or ErrNoHealthyBackend (itself
// perhaps through ErrInsufficientMemory or ErrCircuitOpen).
func (r *Registry) Candidates(model string, op controlplanev1.Operation, needs []controlplanev1.Capability) ([]Candidate, error) {
	out, _, err := r.screen(model, op, needs, false)
	return out, err
}

// Screen is Candidates that also returns the backends the hard filters
// removed and why, for the record of a decision; the exclusions come with
// the error too.
func (r *Registry) Screen(model string, op controlplanev1.Operation, needs []controlplanev1.Capability) ([]Candidate, []Exclusion, error) {
	return r.screen(model, op, needs, true)
}

// screen applies the hard filters; with explain it lists the exclusions.
func (r *Registry) screen(model string, op controlplanev1.Operation, needs []controlplanev1.Capability, explain bool) ([]Candidate, []Exclusion, error) {
	v := r.view.Load()
	key := modelKey(model)
	listed, lives := v.byKey[key], v.byKeyLive[key]
	if len(listed) == 0 {
		return nil, nil, &lookupError{kind: ErrModelNotFound, msg: fmt.Sprintf("model %q not found", model)}
	}
	var ex []Exclusion
	exclude := func(b Backend, why string) {
		if explain {
			ex = append(ex, Exclusion{BackendID: b.ID, BackendName: b.Name, Reason: why})
		}
	}
	now := r.now()
	out := make([]Candidate, 0, len(listed))
	capable, healthy, fitting, crowded := 0, 0, 0, 0
	missing := ""
	var reopen time.Duration
	for i, c := range listed {
		if why := unsupported(model, c, op, needs); why != "" {
			missing = cmp.Or(missing, why)
			exclude(c.Backend, why)
			continue
		}
		capable++
		if c.Backend.Status != StatusHealthy {
			exclude(c.Backend, "backend "+string(c.Backend.Status))
			continue
		}
		healthy++
		fit, why := memoryFit(c, v.loadedBytes)
		if fit == fitNever {
			exclude(c.Backend, why)
			continue
		}
		fitting++
		state, failures, left := lives[i].peek(now)
		c.Backend.Circuit, c.Backend.LiveFailures = state, failures
		if state == CircuitOpen {
			reopen = minPositive(reopen, left)
			exclude(c.Backend, ReasonCircuitOpen)
			continue
		}
		if fit == fitEvicting {
			crowded++
		}
		out = append(out, c)
	}
	if crowded > 0 && crowded < len(out) {
		out = preferRoomy(out, v.loadedBytes, exclude)
	}
	switch {
	case capable == 0:
		return nil, ex, &lookupError{kind: ErrCapabilityUnsupported, msg: missing}
	case healthy == 0:
		return nil, ex, &lookupError{
			kind:  ErrNoHealthyBackend,
			msg:   fmt.Sprintf("no healthy backend available for model %q", model),
			retry: r.opts.FastPollInterval,
		}
	case fitting == 0:
		return nil, ex, &lookupError{
			kind:  ErrInsufficientMemory,
			msg:   fmt.Sprintf("model %q does not fit in the GPU memory of any backend serving it", model),
			retry: r.opts.FastPollInterval,
		}
	case len(out) == 0:
		return nil, ex, &lookupError{
			kind:  ErrCircuitOpen,
			msg:   fmt.Sprintf("no healthy backend available for model %q: its backends are failing, retry later", model),
			retry: max(reopen, time.Second),
		}
	}
	return out, ex, nil
}

// minPositive is the smaller of a and b, ignoring a zero a.
func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 {
		return b
	}
	return min(a, b)
}

// preferRoomy drops the candidates that would have to evict loaded models to
// load this one, when others need not.
func preferRoomy(cands []Candidate, loaded map[int64]int64, exclude func(Backend, string)) []Candidate {
	out := cands[:0]
	for _, c := range cands {
		if fit, why := memoryFit(c, loaded); fit == fitEvicting {
			exclude(c.Backend, why)
			continue
		}
		out = append(out, c)
	}
	return out
}

// fit says whether a model fits in a backend's GPU memory.
type fit int

const (
	// fitUnknown: the model is loaded, or a size is unknown.
	fitUnknown fit = iota
	// fitFree: it fits beside the models already loaded.
	fitFree
	// fitEvicting: it fits only if the engine unloads loaded models.
	fitEvicting
	// fitNever: it is larger than the backend's GPU memory.
	fitNever
)

// memoryFit checks a model that is not loaded against the backend's GPU
// memory (GPUMemoryGB × 1e9 bytes) when both sizes are known. A model larger
// than the memory never fits (a hard filter). One that fits only when the
// loaded models (whose sizes are all known) are unloaded — which Ollama does
// by itself — is kept only when no other candidate has room for it.
// Without sizes the check is skipped. vLLM models are always loaded.
func memoryFit(c Candidate, loaded map[int64]int64) (fit, string) {
	m, b := c.Model, c.Backend
	if m.Loaded || m.SizeBytes <= 0 || b.GPUMemoryGB <= 0 {
		return fitUnknown, ""
	}
	total := int64(b.GPUMemoryGB * 1e9)
	if m.SizeBytes > total {
		return fitNever, fmt.Sprintf("memory insufficient: the model needs %.1f GB, the backend has %.1f GB",
			float64(m.SizeBytes)/1e9, b.GPUMemoryGB)
	}
	used, ok := loaded[b.ID]
	if !ok {
		return fitUnknown, ""
	}
	if m.SizeBytes > total-used {
		return fitEvicting, fmt.Sprintf("memory insufficient beside the loaded models (%.1f GB free, %.1f GB needed)",
			float64(total-used)/1e9, float64(m.SizeBytes)/1e9)
	}
	return fitFree, ""
}

// unsupported says what a candidate lacks for the request, or "" when it can
// serve it.
func unsupported(model string, c Candidate, op controlplanev1.Operation, needs []controlplanev1.Capability) string {
	m, vllm := c.Model, c.Backend.Engine == EngineVLLM
	switch op {
	case controlplanev1.Operation_OPERATION_EMBEDDING:
		if !hasCap(m, "embedding") {
			return fmt.Sprintf("model %q does not support embeddings", model)
		}
	case controlplanev1.Operation_OPERATION_RERANK:
		if !vllm {
			return "rerank is only available on vLLM backends"
		}
	case controlplanev1.Operation_OPERATION_SCORE:
		if !vllm {
			return "score is only available on vLLM backends"
		}
	case controlplanev1.Operation_OPERATION_SPEECH:
		if c.Backend.Engine != EngineTTS || !hasCap(m, "speech") {
			return fmt.Sprintf("model %q does not support speech synthesis (it is not served by a tts backend)", model)
		}
	case controlplanev1.Operation_OPERATION_TRANSCRIPTION:
		if c.Backend.Engine != EngineSTT || !hasCap(m, "transcription") {
			return fmt.Sprintf("model %q does not support transcription (it is not served by an stt backend)", model)
		}
	default:
		if !chatCapable(m) {
			return fmt.Sprintf("model %q does not support chat or text completion", model)
		}
	}
	for _, need := range needs {
		ok := true
		switch need {
		case controlplanev1.Capability_CAPABILITY_VISION:
			ok = hasCap(m, "vision")
		case controlplanev1.Capability_CAPABILITY_TOOLS:
			ok = toolCapable(m)
		case controlplanev1.Capability_CAPABILITY_THINKING:
			ok = hasCap(m, "thinking")
		case controlplanev1.Capability_CAPABILITY_EMBEDDING:
			ok = hasCap(m, "embedding")
		case controlplanev1.Capability_CAPABILITY_RERANK:
			if !vllm {
				return "rerank is only available on vLLM backends"
			}
		case controlplanev1.Capability_CAPABILITY_COMPLETION:
			ok = chatCapable(m)
		case controlplanev1.Capability_CAPABILITY_STRUCTURED_OUTPUT:
			ok = structuredCapable(m)
		case controlplanev1.Capability_CAPABILITY_SPEECH:
			ok = hasCap(m, "speech")
		case controlplanev1.Capability_CAPABILITY_TRANSCRIPTION:
			ok = hasCap(m, "transcription")
		}
		if !ok {
			return fmt.Sprintf("model %q does not support %s", model, capabilityName(need))
		}
	}
	return ""
}

// capabilityName is a capability as a client reads it.
func capabilityName(c controlplanev1.Capability) string {
	switch c {
	case controlplanev1.Capability_CAPABILITY_VISION:
		return "image input (vision)"
	case controlplanev1.Capability_CAPABILITY_TOOLS:
		return "tools"
	case controlplanev1.Capability_CAPABILITY_THINKING:
		return "thinking"
	case controlplanev1.Capability_CAPABILITY_EMBEDDING:
		return "embeddings"
	case controlplanev1.Capability_CAPABILITY_STRUCTURED_OUTPUT:
		return "structured output"
	case controlplanev1.Capability_CAPABILITY_COMPLETION:
		return "text completion"
	default:
		return c.String()
	}
}

// hasCap reports whether a model lists an engine capability.
func hasCap(m Model, c string) bool { return slices.Contains(m.Capabilities, c) }

// chatCapable reports whether a model generates text. Ollama servers older
// than 0.6 report no capabilities; such models are assumed to chat.
func chatCapable(m Model) bool { return len(m.Capabilities) == 0 || hasCap(m, "completion") }

// toolCapable reports whether a model takes tools; models without capability
// information are assumed to (the engine refuses with its own 400 otherwise).
func toolCapable(m Model) bool { return len(m.Capabilities) == 0 || hasCap(m, "tools") }
