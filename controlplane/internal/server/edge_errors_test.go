package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/quota"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/system"
	"github.com/mindrouter/mindrouter/controlplane/internal/telemetry"
	"github.com/mindrouter/mindrouter/proto/errinfo"
)

// retryErr wraps a sentinel and suggests a delay, like the domain packages' errors.
type retryErr struct {
	kind  error
	after time.Duration
}

func (e retryErr) Error() string             { return "try later: " + e.kind.Error() }
func (e retryErr) Unwrap() error             { return e.kind }
func (e retryErr) RetryAfter() time.Duration { return e.after }

// details splits a status's details into its ErrorInfo and RetryInfo.
func details(t *testing.T, st *status.Status) (*errdetails.ErrorInfo, *errdetails.RetryInfo) {
	t.Helper()
	var info *errdetails.ErrorInfo
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			require.Nil(t, info, "one ErrorInfo at most")
			info = d
		case *errdetails.RetryInfo:
			require.Nil(t, retry, "one RetryInfo at most")
			retry = d
		default:
			t.Fatalf("unexpected detail %T", d)
		}
	}
	return info, retry
}

func TestToStatusMapsEveryDomainError(t *testing.T) {
	t.Parallel()
	cases := []struct {
		sentinel error
		code     codes.Code
		reason   string // "" when the status carries no ErrorInfo
		message  string // "" when the domain message is the status message
	}{
		{identity.ErrInvalidCredential, codes.Unauthenticated, "REASON_INVALID_CREDENTIAL", ""},
		{identity.ErrCredentialRevoked, codes.Unauthenticated, "REASON_CREDENTIAL_REVOKED", ""},
		{identity.ErrCredentialExpired, codes.Unauthenticated, "REASON_CREDENTIAL_EXPIRED", ""},
		{identity.ErrUserInactive, codes.Unauthenticated, "REASON_USER_INACTIVE", ""},
		{identity.ErrPermissionDenied, codes.PermissionDenied, "REASON_PERMISSION_DENIED", ""},
		{identity.ErrLoginFailed, codes.Unauthenticated, "REASON_INVALID_CREDENTIAL", ""},
		{identity.ErrSessionInvalid, codes.Unauthenticated, "REASON_INVALID_CREDENTIAL", ""},
		{identity.ErrLoginThrottled, codes.ResourceExhausted, "REASON_RATE_LIMITED", ""},
		{identity.ErrCSRF, codes.PermissionDenied, "REASON_PERMISSION_DENIED", ""},
		{identity.ErrSessionRequired, codes.PermissionDenied, "REASON_PERMISSION_DENIED", ""},
		{identity.ErrSSOFailed, codes.Unauthenticated, "REASON_INVALID_CREDENTIAL", ""},
		{identity.ErrSSOAccountConflict, codes.PermissionDenied, "REASON_PERMISSION_DENIED", ""},
		{identity.ErrUnknownProvider, codes.NotFound, "", ""},
		{identity.ErrInvalidArgument, codes.InvalidArgument, "", ""},
		{identity.ErrKeyLimit, codes.FailedPrecondition, "", ""},
		{identity.ErrSelfDelete, codes.FailedPrecondition, "", ""},
		{registry.ErrModelNotFound, codes.NotFound, "REASON_MODEL_NOT_FOUND", ""},
		{registry.ErrCapabilityUnsupported, codes.FailedPrecondition, "REASON_CAPABILITY_UNSUPPORTED", ""},
		{registry.ErrNoHealthyBackend, codes.Unavailable, "REASON_NO_HEALTHY_BACKEND", ""},
		{registry.ErrInvalidArgument, codes.InvalidArgument, "", ""},
		{telemetry.ErrRefused, codes.Unauthenticated, "", ""},
		{telemetry.ErrLookupUnavailable, codes.Unavailable, "", ""},
		{telemetry.ErrInvalidStream, codes.InvalidArgument, "", ""},
		{telemetry.ErrReplaced, codes.Aborted, "", ""},
		{quota.ErrQuotaExhausted, codes.ResourceExhausted, "REASON_QUOTA_EXHAUSTED", ""},
		{quota.ErrRateLimited, codes.ResourceExhausted, "REASON_RATE_LIMITED", ""},
		{quota.ErrConcurrencyLimited, codes.ResourceExhausted, "REASON_RATE_LIMITED", ""},
		{scheduler.ErrQueueFull, codes.ResourceExhausted, "REASON_QUEUE_FULL", ""},
		{scheduler.ErrQueueTimeout, codes.Unavailable, "REASON_QUEUE_TIMEOUT", ""},
		{admission.ErrContextExceeded, codes.InvalidArgument, "REASON_CONTEXT_EXCEEDED", ""},
		{admission.ErrLeaseNotFound, codes.NotFound, "REASON_LEASE_NOT_FOUND", ""},
		{admission.ErrInvalidRequest, codes.InvalidArgument, "REASON_INVALID_REQUEST", ""},
		{admission.ErrSessionEnded, codes.Aborted, "", ""},
		{admission.ErrShuttingDown, codes.Unavailable, "", ""},
		{admission.ErrServiceOffline, codes.Unavailable, "REASON_SERVICE_OFFLINE", ""},
		{system.ErrInvalid, codes.InvalidArgument, "REASON_INVALID_REQUEST", ""},
		{store.ErrUnavailable, codes.Unavailable, "REASON_DATABASE_UNAVAILABLE", "the gateway's database is unavailable; retry shortly"},
		{store.ErrSearchTooBroad, codes.FailedPrecondition, "REASON_INVALID_REQUEST", store.ErrSearchTooBroad.Error()},
		{store.ErrInvalid, codes.InvalidArgument, "REASON_INVALID_REQUEST", ""},
		{store.ErrNotFound, codes.NotFound, "", ""},
		{store.ErrConflict, codes.AlreadyExists, "", ""},
		{store.ErrInUse, codes.Aborted, "", ""},
	}
	// The table above must cover the server's table, row for row.
	require.Len(t, cases, len(mappings), "a mapping was added or removed: update this test")
	for _, m := range mappings {
		covered := false
		for _, tc := range cases {
			covered = covered || tc.sentinel == m.err //nolint:errorlint // the tables' own sentinels, compared by identity
		}
		require.True(t, covered, "mapping for %q is not tested", m.err)
	}

	log := slog.New(slog.DiscardHandler)
	for _, tc := range cases {
		t.Run(tc.sentinel.Error(), func(t *testing.T) {
			variants := map[string]error{
				"bare":    tc.sentinel,
				"wrapped": fmt.Errorf("op on %q: %w", "thing", tc.sentinel),
				"joined":  errors.Join(errors.New("first"), fmt.Errorf("second: %w", tc.sentinel)),
			}
			for name, err := range variants {
				st, ok := status.FromError(toStatus(context.Background(), log, "/m", err))
				require.True(t, ok, name)
				require.Equal(t, tc.code, st.Code(), name)
				if tc.message != "" {
					require.Equal(t, tc.message, st.Message(), "%s: a fixed message hides the detail", name)
				} else {
					require.Equal(t, err.Error(), st.Message(), "%s: the domain message is the status message", name)
				}
				info, retry := details(t, st)
				require.Nil(t, retry, "%s: no RetryInfo without RetryAfter", name)
				if tc.reason == "" {
					require.Nil(t, info, name)
					continue
				}
				require.NotNil(t, info, name)
				require.Equal(t, tc.reason, info.GetReason(), name)
				require.Equal(t, errinfo.Domain, info.GetDomain(), name)
				require.Equal(t, "mindrouter.dev", info.GetDomain())
			}
		})
	}
}

func TestToStatusRetryInfo(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	cases := []struct {
		name   string
		err    error
		code   codes.Code
		retry  time.Duration // 0: no RetryInfo
		reason string
	}{
		{"queue full with a delay", &scheduler.QueueError{Kind: scheduler.ErrQueueFull, Model: "m", Waiting: 3, After: 5 * time.Second},
			codes.ResourceExhausted, 5 * time.Second, "REASON_QUEUE_FULL"},
		{"queue timeout, wrapped", fmt.Errorf("admit: %w", &scheduler.QueueError{Kind: scheduler.ErrQueueTimeout, Model: "m", After: 1500 * time.Millisecond}),
			codes.Unavailable, 1500 * time.Millisecond, "REASON_QUEUE_TIMEOUT"},
		{"queue full without a delay", &scheduler.QueueError{Kind: scheduler.ErrQueueFull, Model: "m"},
			codes.ResourceExhausted, 0, "REASON_QUEUE_FULL"},
		{"no healthy backend", retryErr{registry.ErrNoHealthyBackend, 30 * time.Second},
			codes.Unavailable, 30 * time.Second, "REASON_NO_HEALTHY_BACKEND"},
		{"negative delay is ignored", retryErr{registry.ErrNoHealthyBackend, -time.Second},
			codes.Unavailable, 0, "REASON_NO_HEALTHY_BACKEND"},
		{"delay on an error without a reason", retryErr{store.ErrInUse, 2 * time.Second},
			codes.Aborted, 2 * time.Second, ""},
		{"all backends excluded", admission.ErrAllExcluded, codes.Unavailable, 0, "REASON_NO_HEALTHY_BACKEND"},
		{"database unreachable", fmt.Errorf("verify API key mr2_abc: %w", store.Unavailable(errors.New("dial tcp 10.0.0.7:3306: connection refused"))),
			codes.Unavailable, 5 * time.Second, "REASON_DATABASE_UNAVAILABLE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := status.Convert(toStatus(context.Background(), log, "/m", tc.err))
			require.Equal(t, tc.code, st.Code())
			info, retry := details(t, st)
			if tc.reason == "" {
				require.Nil(t, info)
			} else {
				require.Equal(t, tc.reason, info.GetReason())
			}
			if tc.retry == 0 {
				require.Nil(t, retry)
				return
			}
			require.NotNil(t, retry)
			require.Equal(t, tc.retry, retry.GetRetryDelay().AsDuration())
		})
	}
}

// TestSessionAdmitErrorsKeepTheUnaryStatus: an admission that rides a session
// is refused with exactly the status a unary Admit gets (StatusOf), carried in
// an AdmitError and rebuilt by the data plane: code, message, reason and delay.
func TestSessionAdmitErrorsKeepTheUnaryStatus(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	for _, err := range []error{
		&scheduler.QueueError{Kind: scheduler.ErrQueueFull, Model: "m", Waiting: 3, After: 5 * time.Second},
		retryErr{registry.ErrNoHealthyBackend, 30 * time.Second},
		identity.ErrPermissionDenied,
		admission.ErrAllExcluded,
		context.Canceled,
		errors.New("db exploded at 10.0.0.3"),
	} {
		unary := status.Convert(toStatus(context.Background(), log, "/m", err))
		onSession := errinfo.AdmitStatus(errinfo.AdmitError(status.Convert(StatusOf(log)(context.Background(), err))))
		require.Equal(t, unary.Code(), onSession.Code(), "%v", err)
		require.Equal(t, unary.Message(), onSession.Message(), "%v", err)
		ui, ur := details(t, unary)
		si, sr := details(t, onSession)
		require.Equal(t, ui.GetReason(), si.GetReason(), "%v", err)
		require.Equal(t, ur.GetRetryDelay().AsDuration(), sr.GetRetryDelay().AsDuration(), "%v", err)
	}
}

func TestToStatusPassThroughAndFallbacks(t *testing.T) {
	t.Parallel()
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	ctx := context.Background()

	require.NoError(t, toStatus(ctx, log, "/m", nil))

	// A handler's own status, details and all, is sent as it is.
	withInfo, err := status.New(codes.InvalidArgument, "name is required").
		WithDetails(&errdetails.ErrorInfo{Reason: "REASON_INVALID_REQUEST", Domain: errinfo.Domain})
	require.NoError(t, err)
	in := withInfo.Err()
	require.Equal(t, in, toStatus(ctx, log, "/m", in))
	// A plain status error passes too.
	notFound := status.Error(codes.NotFound, "no such backend")
	require.Equal(t, notFound, toStatus(ctx, log, "/m", notFound))

	for _, c := range []struct {
		err  error
		code codes.Code
	}{
		{context.Canceled, codes.Canceled},
		{fmt.Errorf("admit: wait: %w", context.Canceled), codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{fmt.Errorf("lookup: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
	} {
		st := status.Convert(toStatus(ctx, log, "/m", c.err))
		require.Equal(t, c.code, st.Code(), c.err.Error())
		require.Empty(t, st.Details())
	}
	// Cancellation wins over a domain error it is joined with: the caller is gone.
	require.Equal(t, codes.Canceled, status.Code(toStatus(ctx, log, "/m", errors.Join(store.ErrConflict, context.Canceled))))

	require.Empty(t, logged.String(), "mapped errors are not logged as unmapped")
	secret := errors.New("dial tcp 10.0.0.7:3306: Access denied for user 'mindrouter'@'%' (using password: YES)")
	st := status.Convert(toStatus(ctx, log, "/mindrouter.admin.v1.RegistryService/ListNodes", fmt.Errorf("list nodes: %w", secret)))
	require.Equal(t, codes.Internal, st.Code())
	require.Equal(t, "internal error", st.Message())
	require.Empty(t, st.Details(), "nothing of the cause is sent")
	require.Contains(t, logged.String(), "unmapped error", "the cause is logged instead")
	require.Contains(t, logged.String(), "ListNodes")
	require.Contains(t, logged.String(), "10.0.0.7:3306")
}

func TestRESTErrorsCarryRetryAfter(t *testing.T) {
	t.Parallel()
	mux := NewGatewayMux()
	for _, tc := range []struct {
		name       string
		err        error
		code       int
		retryAfter string
	}{
		{"database unavailable", store.Unavailable(errors.New("dial tcp: connection refused")), http.StatusServiceUnavailable, "5"},
		{"a delay rounds up to whole seconds", retryErr{registry.ErrNoHealthyBackend, 1500 * time.Millisecond}, http.StatusServiceUnavailable, "2"},
		{"no delay, no header", store.ErrNotFound, http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/api/admin/users", nil)
			err := toStatus(context.Background(), slog.New(slog.DiscardHandler), "/m", tc.err)
			restErrorHandler(context.Background(), mux, &runtime.JSONPb{}, rec, req, err)
			require.Equal(t, tc.code, rec.Code)
			require.Equal(t, tc.retryAfter, rec.Header().Get("Retry-After"))
			if tc.code == http.StatusServiceUnavailable && errors.Is(tc.err, store.ErrUnavailable) {
				require.Contains(t, rec.Body.String(), "REASON_DATABASE_UNAVAILABLE")
				require.NotContains(t, rec.Body.String(), "dial tcp", "the database's address stays in the logs")
			}
		})
	}
}
