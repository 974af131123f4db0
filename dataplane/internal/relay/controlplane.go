package relay

import (
	"context"
	"strconv"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// The types below are the control plane as the relay and the surfaces see it.
// cpclient converts them to and from the generated protocol types, which stay
// inside cpclient. The enumerations are numbered like their protocol
// counterparts (mindrouter.controlplane.v1), so that the conversion is a
// change of type; cpclient's tests check that every value agrees by name.

// Admitter is the control plane as the relay needs it (cpclient.Client).
type Admitter interface {
	// Admit blocks until a lease is granted or refused. A refusal's error
	// wraps its Reason (errors.As).
	Admit(ctx context.Context, req AdmitRequest) (Grant, error)
	// Release settles a lease; it must work on a context that is already done.
	Release(ctx context.Context, rel Release) error
}

// Engine is the kind of inference server a backend runs.
type Engine int32

// The engines.
const (
	EngineUnspecified Engine = 0
	EngineOllama      Engine = 1
	EngineVLLM        Engine = 2
	// EngineTTS is an OpenAI-compatible text-to-speech server.
	EngineTTS Engine = 3
	// EngineSTT is an OpenAI-compatible speech-to-text server.
	EngineSTT Engine = 4
)

var engineNames = []string{"unspecified", "ollama", "vllm", "tts", "stt"}

// String returns the engine's lower-case name.
func (e Engine) String() string { return enumName(engineNames, int32(e)) }

// Operation is what a request asks a model to do.
type Operation int32

// The operations.
const (
	OperationUnspecified Operation = 0
	OperationChat        Operation = 1
	// OperationCompletion is a legacy text completion, served as chat.
	OperationCompletion Operation = 2
	OperationEmbedding  Operation = 3
	OperationRerank     Operation = 4
	OperationScore      Operation = 5
	// OperationSpeech is text to speech, served by EngineTTS backends.
	OperationSpeech Operation = 6
	// OperationTranscription is speech to text, served by EngineSTT backends.
	OperationTranscription Operation = 7
	// OperationSearch is a web search: admitted and charged, but run on no backend.
	OperationSearch Operation = 8
)

var operationNames = []string{"unspecified", "chat", "completion", "embedding", "rerank", "score", "speech", "transcription", "search"}

// String returns the operation's lower-case name.
func (o Operation) String() string { return enumName(operationNames, int32(o)) }

// Capability is something a model can do beyond plain text chat.
type Capability int32

// The capabilities.
const (
	CapabilityUnspecified      Capability = 0
	CapabilityVision           Capability = 1
	CapabilityTools            Capability = 2
	CapabilityStructuredOutput Capability = 3
	CapabilityThinking         Capability = 4
	CapabilityEmbedding        Capability = 5
	CapabilityRerank           Capability = 6
	CapabilityCompletion       Capability = 7
	CapabilitySpeech           Capability = 8
	CapabilityTranscription    Capability = 9
)

var capabilityNames = []string{"unspecified", "vision", "tools", "structured_output", "thinking", "embedding", "rerank", "completion", "speech", "transcription"}

// String returns the capability's snake_case name.
func (c Capability) String() string { return enumName(capabilityNames, int32(c)) }

// Outcome is how a lease ended, as reported when it is released.
type Outcome int32

// The outcomes.
const (
	OutcomeUnspecified     Outcome = 0
	OutcomeSuccess         Outcome = 1
	OutcomeClientCancelled Outcome = 2
	OutcomeBackendError    Outcome = 3
	OutcomeRejected        Outcome = 4
)

var outcomeNames = []string{"unspecified", "success", "client_cancelled", "backend_error", "rejected"}

// String returns the outcome's snake_case name (the label of the attempts metric).
func (o Outcome) String() string { return enumName(outcomeNames, int32(o)) }

// Reason is why the control plane refused a request. It is an error so that
// an Admitter's failure can carry it: errors.As(err, &reason) finds it.
type Reason int32

// The reasons.
const (
	ReasonUnspecified           Reason = 0
	ReasonInvalidCredential     Reason = 1
	ReasonCredentialRevoked     Reason = 2
	ReasonCredentialExpired     Reason = 3
	ReasonUserInactive          Reason = 4
	ReasonPermissionDenied      Reason = 5
	ReasonModelNotFound         Reason = 6
	ReasonCapabilityUnsupported Reason = 7
	ReasonNoHealthyBackend      Reason = 8
	ReasonQueueFull             Reason = 9
	ReasonQueueTimeout          Reason = 10
	ReasonQuotaExhausted        Reason = 11
	ReasonRateLimited           Reason = 12
	ReasonInvalidRequest        Reason = 13
	ReasonLeaseNotFound         Reason = 14
	ReasonContextExceeded       Reason = 15
	ReasonDatabaseUnavailable   Reason = 16
	ReasonServiceOffline        Reason = 17
)

var reasonNames = []string{"unspecified", "invalid_credential", "credential_revoked", "credential_expired",
	"user_inactive", "permission_denied", "model_not_found", "capability_unsupported", "no_healthy_backend",
	"queue_full", "queue_timeout", "quota_exhausted", "rate_limited", "invalid_request", "lease_not_found",
	"context_exceeded", "database_unavailable", "service_offline"}

// String returns the reason's snake_case name.
func (r Reason) String() string { return enumName(reasonNames, int32(r)) }

// Error describes the refusal.
func (r Reason) Error() string { return "refused by the control plane: " + r.String() }

// NoBackend reports whether the refusal means that no backend is left for the
// model: none is healthy (or every one left already failed the request), or
// the model is gone.
func (r Reason) NoBackend() bool { return r == ReasonNoHealthyBackend || r == ReasonModelNotFound }

func enumName(names []string, v int32) string {
	if v >= 0 && int(v) < len(names) && names[v] != "" {
		return names[v]
	}
	return strconv.Itoa(int(v))
}

// AdmitRequest asks the control plane for a lease.
type AdmitRequest struct {
	// RequestID is unique per client request and the same across attempts.
	RequestID string
	// Credential is the client's API key as presented.
	Credential string
	Model      string
	Operation  Operation
	// Needs are the capabilities the request needs from its model.
	Needs                []Capability
	PromptTokensEstimate int64
	// MaxOutputTokens is the client's limit; 0 when it set none.
	MaxOutputTokens int64
	// Attempt is 1 for the first backend, 2 for the next, ….
	Attempt int32
	// ExcludedBackendIDs are the backends that already failed this request.
	ExcludedBackendIDs []int64
	// Endpoint is the client-facing path, e.g. /v1/chat/completions.
	Endpoint string
	Stream   bool
}

// Grant is a granted admission.
type Grant struct {
	Lease Lease
	// QueuePosition is the position in the model's queue when the request
	// was enqueued; 0 when it was dispatched at once.
	QueuePosition int32
	// Queued is the time spent waiting in the queue.
	Queued time.Duration
}

// Lease is the right to run one request on one backend until released.
type Lease struct {
	ID          string
	RequestID   string
	BackendID   int64
	BackendName string
	BackendURL  string
	Engine      Engine
	// Model is the name the backend knows the model by.
	Model           string
	ContextLength   int64
	MaxOutputTokens int64
	// UserID is the principal's user; Username, APIKeyID and Group the rest of
	// its identity (for the audit record).
	UserID   int64
	Username string
	APIKeyID int64
	Group    string
	// Simulated is true when the backend is the engine simulator.
	Simulated bool
}

// Release settles a lease with its outcome and usage.
type Release struct {
	LeaseID string
	Outcome Outcome
	// Usage is what the request is charged: zero when it produced nothing.
	Usage canonical.Usage
	// TTFT is the time from dispatch to the first chunk (the whole answer
	// when not streamed); Duration the time from dispatch to the end.
	TTFT, Duration time.Duration
	// Error is a short, non-secret description of a failure; empty on success.
	Error string
	// RequestID, BackendID, UserID and Model are the lease's identity, so
	// that a restarted control plane can settle it exactly once.
	RequestID string
	BackendID int64
	UserID    int64
	Model     string
}

// ModelInfo is a model of the catalog a credential may use.
type ModelInfo struct {
	Name          string
	Family        string
	ContextLength int64
	Capabilities  []Capability
	// Engines are the kinds of backend that serve the model.
	Engines         []Engine
	HealthyBackends int32
	// Loaded is true when a backend has the model in memory.
	Loaded bool
	// Simulated is true when every backend serving the model is the engine
	// simulator.
	Simulated bool
	// Created is when the gateway first saw the model, in Unix seconds.
	Created         int64
	ParameterSize   string
	Quantization    string
	EmbeddingLength int64
	// DisplayName and Description are an administrator's; empty when unset.
	DisplayName string
	Description string
	// IsAlias marks an alias, a public name standing for AliasTargets.
	IsAlias      bool
	AliasTargets []string
}
