package admission

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

func searchReq(id, key string) *controlplanev1.AdmitRequest {
	return &controlplanev1.AdmitRequest{
		RequestId: id, Credential: key, Model: "web_search", Endpoint: "/v1/search",
		Operation: controlplanev1.Operation_OPERATION_SEARCH, PromptTokensEstimate: 50, Attempt: 1,
	}
}

func TestAdmitSearchTakesNoBackendSlot(t *testing.T) {
	t.Parallel()
	acct := &accountant{}
	// One backend with one slot, held by a chat request: a search must not wait for it.
	h := newHarness(t, Options{Accountant: acct, LeaseTTL: 20 * time.Second}, backendCand(1, 1))
	chat, err := h.admit.Admit(t.Context(), h.admitReq("chat-1"))
	require.NoError(t, err)

	resp, err := h.admit.Admit(t.Context(), searchReq("s-1", userKey))
	require.NoError(t, err)
	l := resp.GetLease()
	require.Len(t, l.GetLeaseId(), 32)
	assert.Zero(t, l.GetBackendId(), "a search runs on no backend")
	assert.Empty(t, l.GetBackendUrl())
	assert.Equal(t, "web_search", l.GetModel())
	assert.Equal(t, int64(42), l.GetPrincipal().GetUserId())
	assert.Equal(t, "faculty", l.GetPrincipal().GetGroup())
	assert.Equal(t, 1, h.queue.InFlight(1), "only the chat holds the backend's slot")

	acct.mu.Lock()
	require.Len(t, acct.reserved, 2)
	assert.Equal(t, Reservation{RequestID: "s-1", Model: "web_search", Tokens: 50}, acct.reserved[1])
	acct.mu.Unlock()

	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{
		LeaseId: l.GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
		Usage: &controlplanev1.Usage{PromptTokens: 50},
	})
	require.NoError(t, err)
	acct.mu.Lock()
	require.Len(t, acct.settled, 1)
	st := acct.settled[0]
	acct.mu.Unlock()
	assert.Equal(t, "s-1", st.RequestID)
	assert.True(t, st.Granted)
	assert.Equal(t, int64(50), st.PromptTokens)
	assert.Equal(t, 1, h.queue.InFlight(1), "settling the search frees nothing on the backend")

	again, err := h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: l.GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS})
	require.NoError(t, err)
	assert.True(t, again.GetAlreadySettled())

	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: chat.GetLease().GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS})
	require.NoError(t, err)
	assert.Zero(t, h.queue.InFlight(1))
}

func TestAdmitSearchRefusals(t *testing.T) {
	t.Parallel()
	acct := &accountant{}
	h := newHarness(t, Options{Accountant: acct}) // no backend at all: a search needs none

	_, err := h.admit.Admit(t.Context(), searchReq("s-1", "mr2_wrong"))
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = h.admit.Admit(t.Context(), searchReq("s-2", readOnlyKey))
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "a key without the inference scope may not search")

	acct.mu.Lock()
	acct.refuse = &retryError{err: scheduler.ErrQueueFull, msg: "rate limited", after: time.Minute}
	acct.mu.Unlock()
	_, err = h.admit.Admit(t.Context(), searchReq("s-3", userKey))
	require.Error(t, err)
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "the accountant's refusal reaches the caller")
	assert.Equal(t, time.Minute, retryAfterOf(err))

	acct.mu.Lock()
	acct.refuse = nil
	acct.mu.Unlock()
	resp, err := h.admit.Admit(t.Context(), searchReq("s-4", userKey))
	require.NoError(t, err, "with no backend registered a search is still admitted")
	assert.NotEmpty(t, resp.GetLease().GetLeaseId())
}

func TestSearchLeaseExpiresAsLost(t *testing.T) {
	t.Parallel()
	acct := &accountant{}
	h := newHarness(t, Options{Accountant: acct, LeaseTTL: time.Second})
	_, err := h.admit.Admit(t.Context(), searchReq("s-1", userKey))
	require.NoError(t, err)
	h.clock.Advance(2 * time.Second)
	h.srv.sweep(h.clock.Now())
	acct.mu.Lock()
	defer acct.mu.Unlock()
	require.Len(t, acct.settled, 1)
	assert.True(t, acct.settled[0].Lost)
	assert.Equal(t, int64(50), acct.settled[0].Tokens)
}
