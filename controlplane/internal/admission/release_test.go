package admission

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

func TestReleaseIsIdempotent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1))
	resp, err := h.admit.Admit(t.Context(), h.admitReq("r"))
	require.NoError(t, err)
	id := resp.GetLease().GetLeaseId()
	rel := &controlplanev1.ReleaseRequest{
		LeaseId: id, Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
		Usage: &controlplanev1.Usage{PromptTokens: 120, CompletionTokens: 30},
	}
	first, err := h.admit.Release(t.Context(), rel)
	require.NoError(t, err)
	require.False(t, first.GetAlreadySettled())
	second, err := h.admit.Release(t.Context(), rel)
	require.NoError(t, err)
	require.True(t, second.GetAlreadySettled())
	require.Zero(t, h.queue.InFlight(1))

	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: "feedface"})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	require.Equal(t, 120.0, h.metricValue(t, "mindrouter_tokens_total", map[string]string{"model": "llama3", "type": "prompt"}))
	require.Equal(t, 30.0, h.metricValue(t, "mindrouter_tokens_total", map[string]string{"model": "llama3", "type": "completion"}))
	h.reg.mu.Lock()
	require.Equal(t, []outcome{{1, false}}, h.reg.outcomes, "counted once")
	require.Equal(t, []string{"1/llama3"}, h.reg.loaded)
	h.reg.mu.Unlock()

	// The slot is whole again: exactly one more lease fits.
	_, err = h.admit.Admit(t.Context(), h.admitReq("next"))
	require.NoError(t, err)
	require.Equal(t, 1, h.queue.InFlight(1))
}

func TestReleaseOutcomesFeedTheRegistry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		outcome controlplanev1.Outcome
		want    []outcome
	}{
		{controlplanev1.Outcome_OUTCOME_BACKEND_ERROR, []outcome{{1, true}}},
		{controlplanev1.Outcome_OUTCOME_REJECTED, []outcome{{1, false}}},
		{controlplanev1.Outcome_OUTCOME_CLIENT_CANCELLED, nil},
	}
	for _, tt := range tests {
		t.Run(tt.outcome.String(), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{}, backendCand(1, 1))
			resp, err := h.admit.Admit(t.Context(), h.admitReq("r"))
			require.NoError(t, err)
			_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: resp.GetLease().GetLeaseId(), Outcome: tt.outcome})
			require.NoError(t, err)
			h.reg.mu.Lock()
			defer h.reg.mu.Unlock()
			require.Equal(t, tt.want, h.reg.outcomes)
			require.Empty(t, h.reg.loaded)
		})
	}
}

func TestListModels(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1))
	resp, err := h.admit.ListModels(t.Context(), &controlplanev1.ListModelsRequest{Credential: userKey})
	require.NoError(t, err)
	require.Len(t, resp.GetModels(), 1)
	require.Equal(t, "llama3", resp.GetModels()[0].GetName())
	_, err = h.admit.ListModels(t.Context(), &controlplanev1.ListModelsRequest{Credential: "bad"})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

// accountant records reservations and settlements.
type accountant struct {
	mu       sync.Mutex
	refuse   error
	reserved []Reservation
	settled  []Settlement
}

func (a *accountant) Reserve(_ context.Context, _ Principal, r Reservation) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refuse != nil {
		return a.refuse
	}
	a.reserved = append(a.reserved, r)
	return nil
}

func (a *accountant) Settle(_ Principal, s Settlement) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settled = append(a.settled, s)
}

func TestAccountantReservesAndSettles(t *testing.T) {
	t.Parallel()
	acct := &accountant{}
	h := newHarnessQueue(t, Options{Accountant: acct}, harnessQueue{queue: scheduler.Options{QueueTimeout: 20 * time.Millisecond}}, backendCand(1, 1))
	req := h.admitReq("r1")
	req.MaxOutputTokens = 50
	resp, err := h.admit.Admit(t.Context(), req)
	require.NoError(t, err)
	_, err = h.admit.Admit(t.Context(), h.admitReq("r2")) // times out in the queue
	require.Equal(t, codes.Unavailable, status.Code(err))
	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{
		LeaseId: resp.GetLease().GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
		Usage: &controlplanev1.Usage{PromptTokens: 90, CompletionTokens: 40},
	})
	require.NoError(t, err)

	acct.mu.Lock()
	defer acct.mu.Unlock()
	require.Equal(t, []Reservation{
		{RequestID: "r1", Model: "llama3", Tokens: 150},
		{RequestID: "r2", Model: "llama3", Tokens: 100 + DefaultMaxTokens},
	}, acct.reserved)
	require.Equal(t, []Settlement{
		{Reservation: acct.reserved[1]},
		{Reservation: acct.reserved[0], Granted: true, Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS, PromptTokens: 90, CompletionTokens: 40},
	}, acct.settled)
}

// usageLog records settled requests.
type usageLog struct {
	mu  sync.Mutex
	got []Settled
}

func (u *usageLog) Settled(s Settled) { u.mu.Lock(); u.got = append(u.got, s); u.mu.Unlock() }

func TestReleaseReportsTheSettledRequest(t *testing.T) {
	t.Parallel()
	usage := &usageLog{}
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := start
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	h := newHarness(t, Options{Usage: usage, Now: now}, backendCand(1, 1))
	resp, err := h.admit.Admit(t.Context(), h.admitReq("r"))
	require.NoError(t, err)
	mu.Lock()
	clock = start.Add(5 * time.Second)
	mu.Unlock()
	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{
		LeaseId: resp.GetLease().GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
		Usage: &controlplanev1.Usage{PromptTokens: 120, CompletionTokens: 30},
		Ttft:  durationpb.New(time.Second),
	})
	require.NoError(t, err)
	// A repeat settles nothing and reports nothing.
	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: resp.GetLease().GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS})
	require.NoError(t, err)
	usage.mu.Lock()
	defer usage.mu.Unlock()
	require.Len(t, usage.got, 1)
	got := usage.got[0]
	require.Equal(t, "r", got.RequestID)
	require.Equal(t, int64(1), got.BackendID)
	require.Equal(t, "llama3", got.Model)
	require.Equal(t, start, got.Admitted)
	require.Equal(t, start.Add(time.Second), got.FirstToken)
	require.Equal(t, start.Add(5*time.Second), got.Ended)
	require.Equal(t, int64(120), got.PromptTokens)
	require.Equal(t, int64(30), got.CompletionTokens)
	require.Equal(t, controlplanev1.Outcome_OUTCOME_SUCCESS, got.Outcome)
}

// TestSessionReleaseJoinsTheRequestTrace: a release that rides a session is
// settled inside a Release server span whose parent is the request's span (its
// traceparent); one without a traceparent records none.
func TestSessionReleaseJoinsTheRequestTrace(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	h := newHarness(t, Options{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))}, backendCand(1, 2))
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	var leases []string
	for _, id := range []string{"traced", "untraced"} {
		resp, err := h.admit.Admit(t.Context(), h.admitReq(id))
		require.NoError(t, err)
		leases = append(leases, resp.GetLease().GetLeaseId())
	}
	ack := h.srv.releaseBatch(t.Context(), []*controlplanev1.ReleaseRequest{
		{LeaseId: leases[0], Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS, Traceparent: "00-" + traceID + "-" + parentID + "-01"},
		{LeaseId: leases[1], Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS},
	})
	require.ElementsMatch(t, leases, ack.GetSettledLeaseIds())
	ended := spans.Ended()
	require.Len(t, ended, 1, "only the traced release records a span")
	s := ended[0]
	require.Equal(t, "mindrouter.controlplane.v1.AdmissionService/Release", s.Name())
	require.Equal(t, trace.SpanKindServer, s.SpanKind())
	require.Equal(t, traceID, s.SpanContext().TraceID().String())
	require.Equal(t, parentID, s.Parent().SpanID().String())
	require.True(t, s.Parent().IsRemote())
}
