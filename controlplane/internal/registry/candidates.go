package registry

import (
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

// Candidates returns the backends that may serve a request for model with
// operation op and the given needs, ordered by backend id. It applies hard
// filters only; capacity and scoring are for the caller. The model matches a
// backend's model by exact name, and "name" and "name:latest" match each
// other. The error wraps ErrModelNotFound, ErrCapabilityUnsupported or
// ErrNoHealthyBackend.
func (r *Registry) Candidates(model string, op controlplanev1.Operation, needs []controlplanev1.Capability) ([]Candidate, error) {
	listed := r.view.Load().byKey[modelKey(model)]
	if len(listed) == 0 {
		return nil, &lookupError{kind: ErrModelNotFound, msg: fmt.Sprintf("model %q not found", model)}
	}
	out := make([]Candidate, 0, len(listed))
	capable, missing := 0, ""
	for _, c := range listed {
		if why := unsupported(model, c, op, needs); why != "" {
			if missing == "" {
				missing = why
			}
			continue
		}
		capable++
		if c.Backend.Status == StatusHealthy {
			out = append(out, c)
		}
	}
	switch {
	case capable == 0:
		return nil, &lookupError{kind: ErrCapabilityUnsupported, msg: missing}
	case len(out) == 0:
		return nil, &lookupError{
			kind:  ErrNoHealthyBackend,
			msg:   fmt.Sprintf("no healthy backend available for model %q", model),
			retry: r.opts.FastPollInterval,
		}
	}
	return out, nil
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
		case controlplanev1.Capability_CAPABILITY_COMPLETION, controlplanev1.Capability_CAPABILITY_STRUCTURED_OUTPUT:
			ok = chatCapable(m)
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
