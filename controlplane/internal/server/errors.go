package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/quota"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/system"
	"github.com/mindrouter/mindrouter/controlplane/internal/telemetry"
	"github.com/mindrouter/mindrouter/proto/errinfo"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// mapping ties a domain error to its gRPC code and wire reason. message, when
// set, replaces the error's own text on the wire (whose detail is then logged).
type mapping struct {
	err     error
	code    codes.Code
	reason  controlplanev1.Reason
	message string
}

// mappings is the one table from domain errors to the wire. Order matters only where
// one error wraps another; the first match wins.
var mappings = []mapping{
	{identity.ErrInvalidCredential, codes.Unauthenticated, controlplanev1.Reason_REASON_INVALID_CREDENTIAL, ""},
	{identity.ErrCredentialRevoked, codes.Unauthenticated, controlplanev1.Reason_REASON_CREDENTIAL_REVOKED, ""},
	{identity.ErrCredentialExpired, codes.Unauthenticated, controlplanev1.Reason_REASON_CREDENTIAL_EXPIRED, ""},
	{identity.ErrUserInactive, codes.Unauthenticated, controlplanev1.Reason_REASON_USER_INACTIVE, ""},
	{identity.ErrPermissionDenied, codes.PermissionDenied, controlplanev1.Reason_REASON_PERMISSION_DENIED, ""},
	{identity.ErrLoginFailed, codes.Unauthenticated, controlplanev1.Reason_REASON_INVALID_CREDENTIAL, ""},
	{identity.ErrSessionInvalid, codes.Unauthenticated, controlplanev1.Reason_REASON_INVALID_CREDENTIAL, ""},
	{identity.ErrLoginThrottled, codes.ResourceExhausted, controlplanev1.Reason_REASON_RATE_LIMITED, ""},
	{identity.ErrCSRF, codes.PermissionDenied, controlplanev1.Reason_REASON_PERMISSION_DENIED, ""},
	{identity.ErrSessionRequired, codes.PermissionDenied, controlplanev1.Reason_REASON_PERMISSION_DENIED, ""},
	{identity.ErrSSOFailed, codes.Unauthenticated, controlplanev1.Reason_REASON_INVALID_CREDENTIAL, ""},
	{identity.ErrSSOAccountConflict, codes.PermissionDenied, controlplanev1.Reason_REASON_PERMISSION_DENIED, ""},
	{identity.ErrUnknownProvider, codes.NotFound, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	{identity.ErrInvalidArgument, codes.InvalidArgument, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	{identity.ErrKeyLimit, codes.FailedPrecondition, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	{identity.ErrSelfDelete, codes.FailedPrecondition, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	{registry.ErrModelNotFound, codes.NotFound, controlplanev1.Reason_REASON_MODEL_NOT_FOUND, ""},
	{registry.ErrCapabilityUnsupported, codes.FailedPrecondition, controlplanev1.Reason_REASON_CAPABILITY_UNSUPPORTED, ""},
	{registry.ErrNoHealthyBackend, codes.Unavailable, controlplanev1.Reason_REASON_NO_HEALTHY_BACKEND, ""},
	{registry.ErrInvalidArgument, codes.InvalidArgument, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	{telemetry.ErrRefused, codes.Unauthenticated, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	{telemetry.ErrLookupUnavailable, codes.Unavailable, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	{telemetry.ErrInvalidStream, codes.InvalidArgument, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	{telemetry.ErrReplaced, codes.Aborted, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	{quota.ErrQuotaExhausted, codes.ResourceExhausted, controlplanev1.Reason_REASON_QUOTA_EXHAUSTED, ""},
	{quota.ErrRateLimited, codes.ResourceExhausted, controlplanev1.Reason_REASON_RATE_LIMITED, ""},
	{quota.ErrConcurrencyLimited, codes.ResourceExhausted, controlplanev1.Reason_REASON_RATE_LIMITED, ""},
	{scheduler.ErrQueueFull, codes.ResourceExhausted, controlplanev1.Reason_REASON_QUEUE_FULL, ""},
	{scheduler.ErrQueueTimeout, codes.Unavailable, controlplanev1.Reason_REASON_QUEUE_TIMEOUT, ""},
	{admission.ErrContextExceeded, codes.InvalidArgument, controlplanev1.Reason_REASON_CONTEXT_EXCEEDED, ""},
	{admission.ErrLeaseNotFound, codes.NotFound, controlplanev1.Reason_REASON_LEASE_NOT_FOUND, ""},
	{admission.ErrInvalidRequest, codes.InvalidArgument, controlplanev1.Reason_REASON_INVALID_REQUEST, ""},
	{admission.ErrSessionEnded, codes.Aborted, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	{admission.ErrShuttingDown, codes.Unavailable, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	{admission.ErrServiceOffline, codes.Unavailable, controlplanev1.Reason_REASON_SERVICE_OFFLINE, ""},
	{system.ErrInvalid, codes.InvalidArgument, controlplanev1.Reason_REASON_INVALID_REQUEST, ""},
	// Before the store's other errors: its detail names hosts and drivers.
	{store.ErrUnavailable, codes.Unavailable, controlplanev1.Reason_REASON_DATABASE_UNAVAILABLE,
		"the gateway's database is unavailable; retry shortly"},
	// A text search the database cannot rank in time: the client narrows it
	// (REST 400 with this message), not a database outage (503).
	{store.ErrSearchTooBroad, codes.FailedPrecondition, controlplanev1.Reason_REASON_INVALID_REQUEST, store.ErrSearchTooBroad.Error()},
	{store.ErrInvalid, codes.InvalidArgument, controlplanev1.Reason_REASON_INVALID_REQUEST, ""},
	{store.ErrNotFound, codes.NotFound, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	{store.ErrConflict, codes.AlreadyExists, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
	// Aborted so that REST answers 409, as the original does for a group with
	// members or a node with backends.
	{store.ErrInUse, codes.Aborted, controlplanev1.Reason_REASON_UNSPECIFIED, ""},
}

// retryAfter is implemented by errors after which waiting helps.
type retryAfter interface{ RetryAfter() time.Duration }

// toStatus converts an error from a service into a gRPC status error. Status errors
// pass through (handlers validate input themselves), context errors keep their
// meaning, and anything unknown becomes a generic Internal error whose detail is
// logged, never sent.
func toStatus(ctx context.Context, log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if st, ok := errinfo.KnownStatus(err); ok {
		return st.Err()
	}
	for _, m := range mappings {
		if !errors.Is(err, m.err) {
			continue
		}
		msg := err.Error()
		if m.message != "" {
			log.WarnContext(ctx, "call failed", slog.String("method", method), slog.Any("error", err))
			msg = m.message
		}
		st := status.New(m.code, msg)
		var details []protoadapt.MessageV1
		if m.reason != controlplanev1.Reason_REASON_UNSPECIFIED {
			details = append(details, &errdetails.ErrorInfo{Reason: m.reason.String(), Domain: errinfo.Domain})
		}
		var ra retryAfter
		if errors.As(err, &ra) && ra.RetryAfter() > 0 {
			details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(ra.RetryAfter())})
		}
		if withDetails, derr := st.WithDetails(details...); derr == nil {
			return withDetails.Err()
		}
		return st.Err()
	}
	log.ErrorContext(ctx, "unmapped error", slog.String("method", method), slog.Any("error", err))
	return status.Error(codes.Internal, "internal error")
}

// restErrorHandler writes a gRPC error as the REST gateway does (the status's
// HTTP equivalent and a google.rpc.Status body), adding the Retry-After header
// that a RetryInfo detail asks for, in whole seconds rounded up.
func restErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if st, ok := status.FromError(err); ok {
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
				secs := math.Ceil(ri.GetRetryDelay().AsDuration().Seconds())
				w.Header().Set("Retry-After", strconv.Itoa(int(secs)))
			}
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// StatusOf returns the error table as a function, for calls that pass no
// interceptor: admissions that ride a replica's session stream get exactly the
// status a unary Admit would.
func StatusOf(log *slog.Logger) func(context.Context, error) error {
	return func(ctx context.Context, err error) error {
		return toStatus(ctx, log, "/mindrouter.controlplane.v1.SessionService/Session:Admit", err)
	}
}
