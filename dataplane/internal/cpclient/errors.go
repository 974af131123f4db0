package cpclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/proto/errinfo"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// unreachableRetryAfter is what clients are told to wait when the control plane
// cannot be reached and said nothing itself.
const unreachableRetryAfter = 2 * time.Second

// Error is a failed control-plane call.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Reason is the refusal reason from ErrorInfo; relay.ReasonUnspecified
	// when the control plane gave none (or could not be reached).
	Reason relay.Reason
	// Message is the control plane's message.
	Message string
	// Wait is the RetryInfo delay; 0 when none was given.
	Wait time.Duration
}

// Error describes the failure.
func (e *Error) Error() string {
	if e.Reason != relay.ReasonUnspecified {
		return fmt.Sprintf("control plane: %s (%s): %s", e.Code, e.Reason.String(), e.Message)
	}
	return fmt.Sprintf("control plane: %s: %s", e.Code, e.Message)
}

// Unwrap returns the refusal's reason, nil when none was given, so that
// errors.As finds it.
func (e *Error) Unwrap() error {
	if e.Reason == relay.ReasonUnspecified {
		return nil
	}
	return e.Reason
}

// RetryAfter returns how long a client should wait before retrying.
func (e *Error) RetryAfter() time.Duration { return e.Wait }

// Unreachable reports whether the control plane could not be reached (as
// opposed to refusing).
func (e *Error) Unreachable() bool {
	return e.Reason == relay.ReasonUnspecified &&
		(e.Code == codes.Unavailable || e.Code == codes.DeadlineExceeded)
}

// reasons maps each refusal reason to what a client sees.
var reasons = map[relay.Reason]struct {
	kind canonical.ErrorKind
	code string
}{
	relay.ReasonInvalidCredential:     {canonical.KindAuthentication, "invalid_api_key"},
	relay.ReasonCredentialRevoked:     {canonical.KindAuthentication, "api_key_revoked"},
	relay.ReasonCredentialExpired:     {canonical.KindAuthentication, "api_key_expired"},
	relay.ReasonUserInactive:          {canonical.KindAuthentication, "user_inactive"},
	relay.ReasonPermissionDenied:      {canonical.KindPermission, "permission_denied"},
	relay.ReasonModelNotFound:         {canonical.KindNotFound, "model_not_found"},
	relay.ReasonCapabilityUnsupported: {canonical.KindInvalidRequest, "capability_unsupported"},
	relay.ReasonNoHealthyBackend:      {canonical.KindUnavailable, "no_healthy_backend"},
	relay.ReasonQueueFull:             {canonical.KindUnavailable, "queue_full"},
	relay.ReasonQueueTimeout:          {canonical.KindUnavailable, "queue_timeout"},
	relay.ReasonQuotaExhausted:        {canonical.KindQuotaExhausted, "insufficient_quota"},
	relay.ReasonRateLimited:           {canonical.KindRateLimited, "rate_limit_exceeded"},
	relay.ReasonInvalidRequest:        {canonical.KindInvalidRequest, ""},
	relay.ReasonContextExceeded:       {canonical.KindInvalidRequest, "context_length_exceeded"},
	relay.ReasonDatabaseUnavailable:   {canonical.KindUnavailable, "database_unavailable"},
	relay.ReasonServiceOffline:        {canonical.KindUnavailable, "service_offline"},
}

// codeKinds classifies statuses that carry no reason.
var codeKinds = map[codes.Code]canonical.ErrorKind{
	codes.InvalidArgument:   canonical.KindInvalidRequest,
	codes.NotFound:          canonical.KindNotFound,
	codes.PermissionDenied:  canonical.KindPermission,
	codes.ResourceExhausted: canonical.KindRateLimited,
	codes.Canceled:          canonical.KindCancelled,
}

// Canonical shows the failure to a client. Reasons map by the table above; an
// unreachable control plane (or one that refuses this replica's cluster token)
// is a 503 with Retry-After; anything unexpected is an internal error whose
// detail stays in the logs.
func (e *Error) Canonical() *canonical.Error {
	if m, ok := reasons[e.Reason]; ok {
		return &canonical.Error{Kind: m.kind, Code: m.code, Message: e.Message, Wait: e.Wait, Err: e}
	}
	switch {
	case e.Unreachable():
		wait := e.Wait
		if wait <= 0 {
			wait = unreachableRetryAfter
		}
		return &canonical.Error{Kind: canonical.KindUnavailable, Code: "control_plane_unavailable",
			Message: "the gateway's control plane is unavailable; retry shortly", Wait: wait, Err: e}
	case e.Code == codes.Unauthenticated:
		// Credentials always come back with a reason; a bare Unauthenticated is the
		// control plane refusing this replica, which is no fault of the client.
		return &canonical.Error{Kind: canonical.KindUnavailable, Code: "control_plane_unavailable",
			Message: "the gateway is not authorized by its control plane", Wait: unreachableRetryAfter, Err: e}
	}
	if kind, ok := codeKinds[e.Code]; ok {
		return &canonical.Error{Kind: kind, Message: e.Message, Wait: e.Wait, Err: e}
	}
	return &canonical.Error{Kind: canonical.KindInternal, Message: "Internal server error", Err: e}
}

// fromStatus converts a gRPC error. When ctx (the caller's context) is done, the
// context's error is returned instead, so that a client that went away is
// recognised as such.
func fromStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(ctxErr, context.Canceled) {
		return fmt.Errorf("control plane call: %w", ctxErr)
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Code: codes.Unknown, Message: err.Error()}
	}
	e := &Error{Code: st.Code(), Message: canonical.Echo(st.Message())}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() == errinfo.Domain {
				if v, ok := controlplanev1.Reason_value[d.GetReason()]; ok {
					e.Reason = relay.Reason(v)
				}
			}
		case *errdetails.RetryInfo:
			if rd := d.GetRetryDelay(); rd != nil {
				e.Wait = rd.AsDuration()
			}
		}
	}
	return e
}
