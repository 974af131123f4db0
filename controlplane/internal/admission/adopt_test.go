package admission

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

func leaseRef(leaseID, requestID string, backendID int64) *controlplanev1.LeaseRef {
	return &controlplanev1.LeaseRef{LeaseId: leaseID, RequestId: requestID, BackendId: backendID, UserId: 42, Model: "llama3", ApiKeyId: 7}
}

// heartbeatRefs sends a heartbeat that describes its leases, and returns the ack.
func (r *replicaConn) heartbeatRefs(t *testing.T, refs ...*controlplanev1.LeaseRef) *controlplanev1.HeartbeatAck {
	t.Helper()
	ids := make([]string, len(refs))
	for i, ref := range refs {
		ids[i] = ref.GetLeaseId()
	}
	require.NoError(t, r.stream.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Heartbeat{
		Heartbeat: &controlplanev1.Heartbeat{LeaseIds: ids, Leases: refs},
	}}))
	for {
		if ack := r.next(t).GetHeartbeatAck(); ack != nil {
			return ack
		}
	}
}

// TestHeartbeatAdoptsLeasesAfterRestart: a replica's heartbeat to a control plane
// that never granted its leases (it restarted) brings them back: the slots count
// in flight again, even beyond the backend's limit, until each is released once.
func TestHeartbeatAdoptsLeasesAfterRestart(t *testing.T) {
	t.Parallel()
	acct := &accountant{}
	h := newHarness(t, Options{Accountant: acct, LeaseTTL: 20 * time.Second}, backendCand(1, 1))
	r := h.connect(t, "dp-1")
	l1, l2 := leaseRef("lease-1", "r1", 1), leaseRef("lease-2", "r2", 1)
	bad := &controlplanev1.LeaseRef{LeaseId: "lease-3", RequestId: "r3"} // says too little to adopt

	ack := r.heartbeatRefs(t, l1, l2, bad)
	require.Equal(t, []string{"lease-3"}, ack.GetUnknownLeaseIds())
	require.Equal(t, 2, h.queue.InFlight(1))
	require.Equal(t, 2, h.srv.leases.count())
	require.Equal(t, 2.0, h.metricValue(t, "mindrouter_leases_adopted_total", nil))
	require.Equal(t, 2.0, h.metricValue(t, "mindrouter_leases_in_flight", map[string]string{"backend": "gpu1"}))

	// Heartbeats renew adopted leases without adopting them twice.
	h.clock.Advance(15 * time.Second)
	require.Empty(t, r.heartbeatRefs(t, l1, l2).GetUnknownLeaseIds())
	require.Equal(t, 2, h.queue.InFlight(1))
	h.clock.Advance(15 * time.Second)
	h.srv.sweep(h.clock.Now())
	require.Equal(t, 2, h.srv.leases.count(), "renewed by the second heartbeat")

	// The backend is over its limit: a new request waits for both to end.
	type res struct {
		resp *controlplanev1.AdmitResponse
		err  error
	}
	out := make(chan res, 1)
	go func() {
		resp, err := h.admit.Admit(t.Context(), h.admitReq("new"))
		out <- res{resp, err}
	}()
	h.waitDepth(t, 1)
	first, err := h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{
		LeaseId: "lease-1", Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
		Usage: &controlplanev1.Usage{PromptTokens: 10, CompletionTokens: 20},
	})
	require.NoError(t, err)
	require.False(t, first.GetAlreadySettled())
	require.Equal(t, 1, h.queueDepth(), "still full")
	again, err := h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: "lease-1"})
	require.NoError(t, err)
	require.True(t, again.GetAlreadySettled())
	require.False(t, h.released(t, "lease-2"))
	got := <-out
	require.NoError(t, got.err)
	require.Equal(t, 1, h.queue.InFlight(1))

	acct.mu.Lock()
	defer acct.mu.Unlock()
	require.Len(t, acct.settled, 2, "each adopted lease is settled once")
	assert.Equal(t, Settlement{
		Reservation: Reservation{RequestID: "r1", Model: "llama3"}, Granted: true, Adopted: true,
		Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS, PromptTokens: 10, CompletionTokens: 20,
	}, acct.settled[0])
	assert.Equal(t, "r2", acct.settled[1].RequestID)
	assert.True(t, acct.settled[1].Adopted)
	require.Len(t, acct.reserved, 1, "only the new request reserved")
}

// TestAdoptedLeaseExpires like any other when its replica stops renewing it.
func TestAdoptedLeaseExpires(t *testing.T) {
	t.Parallel()
	acct := &accountant{}
	h := newHarness(t, Options{Accountant: acct, LeaseTTL: 20 * time.Second}, backendCand(1, 4))
	r := h.connect(t, "dp-1")
	require.Empty(t, r.heartbeatRefs(t, leaseRef("lease-1", "r1", 1)).GetUnknownLeaseIds())
	h.clock.Advance(21 * time.Second)
	h.srv.sweep(h.clock.Now())
	require.Zero(t, h.queue.InFlight(1))
	require.Equal(t, []string{"lease-1"}, r.heartbeatRefs(t, leaseRef("lease-1", "r1", 1)).GetUnknownLeaseIds(),
		"a settled lease is not adopted again")
	require.Zero(t, h.queue.InFlight(1))
	acct.mu.Lock()
	defer acct.mu.Unlock()
	require.Len(t, acct.settled, 1)
	require.True(t, acct.settled[0].Lost)
	require.True(t, acct.settled[0].Adopted)
}

// TestReleaseAfterRestartSettlesOnce: a Release for a lease this control plane
// never knew settles its usage from the identity it carries, exactly once.
func TestReleaseAfterRestartSettlesOnce(t *testing.T) {
	t.Parallel()
	acct := &accountant{}
	h := newHarness(t, Options{Accountant: acct}, backendCand(1, 2))
	rel := &controlplanev1.ReleaseRequest{
		LeaseId: "old-lease", Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
		Usage:     &controlplanev1.Usage{PromptTokens: 100, CompletionTokens: 50},
		RequestId: "r9", BackendId: 1, UserId: 42, Model: "llama3",
	}
	resp, err := h.admit.Release(t.Context(), rel)
	require.NoError(t, err)
	require.False(t, resp.GetAlreadySettled())
	resp, err = h.admit.Release(t.Context(), rel)
	require.NoError(t, err)
	require.True(t, resp.GetAlreadySettled())
	require.Zero(t, h.queue.InFlight(1))
	require.Zero(t, h.srv.leases.count())

	// A heartbeat still carrying it does not bring it back.
	r := h.connect(t, "dp-1")
	require.Equal(t, []string{"old-lease"}, r.heartbeatRefs(t, leaseRef("old-lease", "r9", 1)).GetUnknownLeaseIds())
	require.Zero(t, h.queue.InFlight(1))

	// Without its identity, an unknown lease is still not found.
	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: "other", RequestId: "r10"})
	require.Equal(t, codes.NotFound, status.Code(err))

	acct.mu.Lock()
	require.Equal(t, []Settlement{{
		Reservation: Reservation{RequestID: "r9", Model: "llama3"}, Granted: true, Adopted: true,
		Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS, PromptTokens: 100, CompletionTokens: 50,
	}}, acct.settled)
	acct.mu.Unlock()
	require.Equal(t, 1.0, h.metricValue(t, "mindrouter_releases_without_lease_total", nil))
	require.Equal(t, 100.0, h.metricValue(t, "mindrouter_tokens_total", map[string]string{"model": "llama3", "type": "prompt"}))
	h.reg.mu.Lock()
	require.Equal(t, []outcome{{1, false}}, h.reg.outcomes)
	h.reg.mu.Unlock()

	// The fair-share policy charged the usage to the user.
	q, err := h.sched.GetQueue(t.Context(), &adminv1.GetQueueRequest{})
	require.NoError(t, err)
	require.Len(t, q.GetUsers(), 1)
	require.Equal(t, int64(150), q.GetUsers()[0].GetRecentTokens())
	require.Zero(t, q.GetUsers()[0].GetInFlight())
}
