package admission

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

func (r *replicaConn) admit(t *testing.T, m *controlplanev1.SessionAdmit) {
	t.Helper()
	require.NoError(t, r.stream.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Admit{Admit: m}}))
}

// admitResult waits for the next AdmitResult, skipping other messages.
func (r *replicaConn) admitResult(t *testing.T) *controlplanev1.AdmitResult {
	t.Helper()
	for {
		if res := r.next(t).GetAdmitResult(); res != nil {
			return res
		}
	}
}

// TestSessionAdmitGrantsLikeAdmit: an admission on the session is Admit's:
// the same lease, the same metrics, the same settlement.
func TestSessionAdmitGrantsLikeAdmit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 2))
	r := h.connect(t, "dp-1")
	require.True(t, r.welcome.GetSessionAdmit(), "the Welcome offers session admissions")
	req := h.admitReq("on-session")
	req.ReplicaId = "dp-1"
	r.admit(t, &controlplanev1.SessionAdmit{Seq: 7, Request: req})
	res := r.admitResult(t)
	require.EqualValues(t, 7, res.GetSeq())
	lease := res.GetAdmitted().GetLease()
	require.NotNil(t, lease, "granted: %v", res)
	require.EqualValues(t, 1, lease.GetBackendId())
	require.Equal(t, "on-session", lease.GetRequestId())
	require.Equal(t, 1, h.queue.InFlight(1))
	require.Equal(t, 1.0, h.metricValue(t, "mindrouter_admissions_total", map[string]string{"result": "granted"}))

	// Renewed by the replica's heartbeats like any lease it holds.
	require.Empty(t, r.heartbeat(t, lease.GetLeaseId()).GetUnknownLeaseIds())
	require.False(t, h.released(t, lease.GetLeaseId()))
	require.Zero(t, h.queue.InFlight(1))
}

// TestSessionAdmitRefusalsKeepAdmitsCodes: a refusal on the session carries
// the code and reason a unary Admit's status does.
func TestSessionAdmitRefusalsKeepAdmitsCodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1))
	r := h.connect(t, "dp-1")
	for i, tc := range []struct {
		credential string
		model      string
	}{{readOnlyKey, "llama3"}, {"nonsense", "llama3"}, {userKey, "no-such-model"}} {
		req := h.admitReq("refused")
		req.Credential, req.Model = tc.credential, tc.model
		_, unaryErr := h.admit.Admit(t.Context(), req)
		require.Error(t, unaryErr)
		r.admit(t, &controlplanev1.SessionAdmit{Seq: uint64(i + 1), Request: req})
		res := r.admitResult(t)
		require.EqualValues(t, i+1, res.GetSeq())
		require.NotNil(t, res.GetError(), "refused: %v", res)
		require.Equal(t, status.Code(unaryErr), codes.Code(res.GetError().GetCode()), "credential %q model %q", tc.credential, tc.model)
		require.Equal(t, status.Convert(unaryErr).Message(), res.GetError().GetMessage())
	}
	require.Zero(t, h.queue.InFlight(1))
	h.waitSessions(t, 1) // a refusal does not end the session
}

// TestSessionCancelLeavesTheQueue: a SessionCancel takes a queued admission
// off the queue (it is never granted), and the session goes on.
func TestSessionCancelLeavesTheQueue(t *testing.T) {
	t.Parallel()
	h := newHarnessQueue(t, Options{}, streamQueue(), backendCand(1, 1))
	busy, err := h.admit.Admit(t.Context(), h.admitReq("busy"))
	require.NoError(t, err)
	r := h.connect(t, "dp-1")
	r.admit(t, &controlplanev1.SessionAdmit{Seq: 1, Request: h.admitReq("gives-up"), Watch: true})
	res := r.admitResult(t)
	require.EqualValues(t, 1, res.GetQueued().GetPosition(), "a watched admission hears its place: %v", res)
	h.waitDepth(t, 1)
	require.NoError(t, r.stream.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Cancel{Cancel: &controlplanev1.SessionCancel{Seq: 1}}}))
	h.waitDepth(t, 0)
	require.Eventually(t, func() bool {
		return h.metricValue(t, "mindrouter_admissions_total", map[string]string{"result": "cancelled"}) == 1
	}, 5*time.Second, time.Millisecond)
	require.False(t, h.released(t, busy.GetLease().GetLeaseId()))
	require.Zero(t, h.queue.InFlight(1), "the freed slot is not owed to the cancelled admission")
	// The session still admits.
	r.admit(t, &controlplanev1.SessionAdmit{Seq: 2, Request: h.admitReq("next")})
	for {
		res := r.admitResult(t)
		if res.GetSeq() == 2 && res.GetQueued() == nil {
			require.NotNil(t, res.GetAdmitted(), "%v", res)
			break
		}
	}
}

// TestSessionAdmitDeadline: the replica's deadline (timeout) ends a queued
// admission on the control plane too.
func TestSessionAdmitDeadline(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1))
	_, err := h.admit.Admit(t.Context(), h.admitReq("busy"))
	require.NoError(t, err)
	r := h.connect(t, "dp-1")
	r.admit(t, &controlplanev1.SessionAdmit{Seq: 1, Request: h.admitReq("late"), Timeout: durationpb.New(50 * time.Millisecond)})
	res := r.admitResult(t)
	require.NotNil(t, res.GetError(), "%v", res)
	h.waitDepth(t, 0)
	require.Equal(t, 1, h.queue.InFlight(1))
}

// TestSessionEndWithdrawsItsAdmissions: a session that breaks takes its
// queued admissions off the queue; nothing is granted to a replica that
// cannot hear it.
func TestSessionEndWithdrawsItsAdmissions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1))
	busy, err := h.admit.Admit(t.Context(), h.admitReq("busy"))
	require.NoError(t, err)
	r := h.connect(t, "dp-1")
	r.admit(t, &controlplanev1.SessionAdmit{Seq: 1, Request: h.admitReq("orphan")})
	h.waitDepth(t, 1)
	r.cancel()
	h.waitDepth(t, 0)
	require.False(t, h.released(t, busy.GetLease().GetLeaseId()))
	require.Zero(t, h.queue.InFlight(1))
}

// TestSessionAdmitRefusedWhenNotLeading: a control plane that stopped leading
// refuses as the gRPC server refuses a unary Admit (UNAVAILABLE, no reason).
func TestSessionAdmitRefusedWhenNotLeading(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{Leading: func() bool { return false }}, backendCand(1, 1))
	r := h.connect(t, "dp-1")
	r.admit(t, &controlplanev1.SessionAdmit{Seq: 1, Request: h.admitReq("r")})
	res := r.admitResult(t)
	require.Equal(t, int32(codes.Unavailable), res.GetError().GetCode())
	require.Equal(t, controlplanev1.Reason_REASON_UNSPECIFIED, res.GetError().GetReason())
	require.Zero(t, h.queue.InFlight(1))
}

// TestSessionAdmitJoinsTheRequestTrace: the Admit server span of a session
// admission is the child of the replica's span (its traceparent).
func TestSessionAdmitJoinsTheRequestTrace(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	h := newHarness(t, Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))}, backendCand(1, 2))
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	r := h.connect(t, "dp-1")
	r.admit(t, &controlplanev1.SessionAdmit{Seq: 1, Request: h.admitReq("traced"), Traceparent: "00-" + traceID + "-" + parentID + "-01"})
	require.NotNil(t, r.admitResult(t).GetAdmitted())
	require.Eventually(t, func() bool { return len(spans.Ended()) == 1 }, 5*time.Second, time.Millisecond)
	s := spans.Ended()[0]
	require.Equal(t, "mindrouter.controlplane.v1.AdmissionService/Admit", s.Name())
	require.Equal(t, trace.SpanKindServer, s.SpanKind())
	require.Equal(t, traceID, s.SpanContext().TraceID().String())
	require.Equal(t, parentID, s.Parent().SpanID().String())
}
