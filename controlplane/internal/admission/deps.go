package admission

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/refusal"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Principal is the identity a credential resolved to, as admission needs it.
type Principal struct {
	UserID    int64
	Username  string
	APIKeyID  int64
	KeyPrefix string
	GroupID   int64
	Group     string
	// Inference is true when the credential may run inference (the "inference" scope).
	Inference bool
	Weight    int
	// RPMLimit is the user's requests per minute (user override, else group), 0
	// for unlimited; KeyRPMLimit is the key's own limit, counted in a window of its
	// own besides the user's, 0 when the key has none.
	RPMLimit    int
	KeyRPMLimit int
	// TokenBudget is tokens per budget period (user override, else group), 0 for
	// unlimited.
	TokenBudget int64
}

// Identity verifies end-user credentials; app adapts identity.Service to it.
type Identity interface {
	// Verify resolves a credential to its principal. Its errors (invalid, revoked,
	// expired, inactive) are returned to the caller unchanged.
	Verify(ctx context.Context, credential string) (Principal, error)
}

// Candidate is one backend that passes the hard filters for a request, with the
// model as that backend serves it.
type Candidate struct {
	BackendID     int64
	BackendName   string
	URL           string
	Engine        controlplanev1.Engine
	MaxConcurrent int
	Priority      int
	Simulated     bool
	// Model is the name the backend knows.
	Model string
	// ContextLength is the model's maximum on this backend; 0 when unknown.
	ContextLength int64
	// Loaded is true when the model is resident on the backend.
	Loaded bool
}

// Registry is the live view of backends and models; app adapts
// registry.Registry.
type Registry interface {
	// Candidates returns the healthy backends that can serve the request. Its errors
	// (model not found, no healthy backend, capability unsupported) are returned to
	// the caller unchanged. The returned slice is only read.
	Candidates(model string, op controlplanev1.Operation, needs []controlplanev1.Capability) ([]Candidate, error)
	// Catalog is the merged model list clients see.
	Catalog() []*controlplanev1.CatalogModel
	// Subscribe returns a channel signalled on every registry change and a function
	// that ends the subscription.
	Subscribe() (<-chan struct{}, func())
	// Version increases on every change.
	Version() int64
	// Observe records how a request on a backend ended: it feeds the backend's
	// circuit breaker and its latency and throughput averages.
	Observe(backendID int64, o registry.Observation)
	// AcquireCircuit asks the chosen backend's circuit breaker to let one request
	// through now; trial is true when the request is a half-open circuit's one trial.
	AcquireCircuit(backendID int64) (ok, trial bool)
	// AbandonTrial gives a half-open trial back when its request ended without
	// saying anything about the backend.
	AbandonTrial(backendID int64)
	// MarkLoaded records that a backend has just served model.
	MarkLoaded(backendID int64, model string)
	// ContextCap is the configured cap on context windows; 0 for none.
	ContextCap() int64
}

// Screener is optionally implemented by a Registry that can also say which
// backends its hard filters removed and why; admission then uses Screen instead of
// Candidates, and the decision log lists those backends as not eligible.
type Screener interface {
	Screen(model string, op controlplanev1.Operation, needs []controlplanev1.Capability) ([]Candidate, []Exclusion, error)
}

// Exclusion is a backend serving the model that a registry hard filter removed.
type Exclusion struct {
	BackendID   int64
	BackendName string
	// Reason says which filter, in a few words (e.g. "circuit open").
	Reason string
}

// Revocations is an optional source of revoked key prefixes, pushed to every
// replica as CredentialRevoked.
type Revocations interface {
	// Revocations returns a channel of revoked key prefixes and a function that ends
	// the subscription.
	Revocations() (<-chan string, func())
}

// Scheduler grants backend slots; *scheduler.Queue implements it (ordered by fair
// share or FIFO).
type Scheduler interface {
	Acquire(ctx context.Context, t scheduler.Ticket, pick scheduler.Picker) (scheduler.Grant, error)
	Release(g scheduler.Grant, cost int64)
	// Adopt counts a slot granted before a control-plane restart, which a replica
	// still holds; it is released like any other grant.
	Adopt(t scheduler.Ticket, backendID int64) scheduler.Grant
	Kick()
}

// QueueSnapshotter is implemented by schedulers that can show their queues
// (*scheduler.Queue); the admin queue view uses it when present.
type QueueSnapshotter interface {
	Snapshot() scheduler.Snapshot
}

// Reservation is the quota a request holds while it is admitted.
type Reservation struct {
	RequestID string
	Model     string
	// Tokens is the prompt estimate plus the output allowance.
	Tokens int64
}

// Settlement ends a reservation.
type Settlement struct {
	Reservation
	// Granted is false when the request never got a slot (the whole reservation
	// goes back).
	Granted bool
	Outcome controlplanev1.Outcome
	// PromptTokens and CompletionTokens are the reported usage.
	PromptTokens     int64
	CompletionTokens int64
	// Lost is true when the lease expired or its replica vanished: the usage is
	// unknown and the accountant decides what to charge.
	Lost bool
	// Adopted is true when this process never reserved anything for the request:
	// its lease was adopted from a replica's heartbeat after a control-plane
	// restart, or its Release arrived for a lease this process never knew (with the
	// lease's identity). Reservation.Tokens is then 0 and nothing is held to give
	// back; the usage is charged once, and Reservation.RequestID identifies it.
	Adopted bool
}

// Accountant reserves quota at admission and settles it when the lease ends
// (app adapts quota.Manager to it); the default, NoQuota, admits everything.
type Accountant interface {
	// Reserve holds quota before the request queues. An error refuses the request
	// and is returned unchanged (e.g. quota exhausted or rate limited, with
	// RetryAfter).
	Reserve(ctx context.Context, p Principal, r Reservation) error
	// Settle is called exactly once for every successful Reserve, and once for
	// every adopted lease (Settlement.Adopted, with no Reserve before it).
	Settle(p Principal, s Settlement)
}

// NoQuota is the Accountant that reserves nothing.
type NoQuota struct{}

// Reserve admits everything.
func (NoQuota) Reserve(context.Context, Principal, Reservation) error { return nil }

// Settle does nothing.
func (NoQuota) Settle(Principal, Settlement) {}

var (
	// ErrContextExceeded refuses a prompt that does not fit the context window of any
	// backend that could serve it.
	ErrContextExceeded = errors.New("context window exceeded")
	// ErrInvalidRequest refuses a malformed call (a required field missing, a
	// negative count); the refusal's own message says which.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrLeaseNotFound answers a Release for a lease that never existed (or was
	// settled so long ago that it is forgotten).
	ErrLeaseNotFound = errors.New("lease not found")
	// ErrPermissionDenied refuses a credential without the inference scope. It is
	// identity's own error, so it maps like every other permission refusal.
	ErrPermissionDenied = identity.ErrPermissionDenied
	// ErrAllExcluded refuses a retry when every backend serving the model already
	// failed the request, or when the registry offers no candidate at all. It wraps
	// registry.ErrNoHealthyBackend (so it maps like it) and carries a Retry-After.
	ErrAllExcluded = fmt.Errorf("%w: every backend left already failed this request", registry.ErrNoHealthyBackend)
	// ErrServiceOffline refuses every request while an administrator has taken
	// the service offline; the refusal's message is theirs.
	ErrServiceOffline = errors.New("service offline")
)

// offlineRetryAfter is the Retry-After of ErrServiceOffline: maintenance takes
// minutes, and clients that retry sooner only add load to a refusing gateway.
const offlineRetryAfter = 60 * time.Second

// Gate is the service's on/off switch (*system.Switch); admission refuses
// every request while Offline says so.
type Gate interface {
	// Offline reports whether the service is offline and what clients are told.
	Offline() (message string, offline bool)
}

// invalidError is a malformed call: it maps like ErrInvalidRequest and reads as
// its own message.
func invalidError(msg string) error { return refusal.New(ErrInvalidRequest, msg) }

// retryError adds a Retry-After hint to a sentinel error.
type retryError struct {
	err   error
	msg   string
	after time.Duration
}

func (e *retryError) Error() string             { return e.msg }
func (e *retryError) Unwrap() error             { return e.err }
func (e *retryError) RetryAfter() time.Duration { return e.after }

// Settled is a request that ran on a backend, as the telemetry history keeps it.
type Settled struct {
	RequestID string
	BackendID int64
	Model     string
	Principal Principal
	Outcome   controlplanev1.Outcome
	// Admitted is when the slot was granted, FirstToken when the backend's first
	// byte came (Admitted when no TTFT was reported), Ended when it was released.
	Admitted, FirstToken, Ended time.Time
	QueueWait                   time.Duration
	PromptTokens                int64
	CompletionTokens            int64
}

// UsageSink receives settled requests; Settled must not block.
type UsageSink interface {
	Settled(Settled)
}
