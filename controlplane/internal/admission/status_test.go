package admission

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// TestClusterStatus counts the fleet, the queue, the leases in flight and the
// tokens settled, and carries the catalog.
func TestClusterStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1))
	fleet := Fleet{BackendsTotal: 3, BackendsHealthy: 1, BackendsDraining: 1, CircuitsOpen: 1, NodesTotal: 2, NodesOnline: 1}
	st := NewStatusService(h.srv, func(context.Context) (Fleet, error) { return fleet, nil })

	held, err := h.admit.Admit(t.Context(), h.admitReq("a"))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := h.admit.Admit(t.Context(), h.admitReq("b"))
		done <- err
	}()
	h.waitDepth(t, 1)

	got, err := st.GetClusterStatus(t.Context(), &controlplanev1.GetClusterStatusRequest{})
	require.NoError(t, err)
	assert.Equal(t, int32(3), got.GetBackendsTotal())
	assert.Equal(t, int32(1), got.GetBackendsHealthy())
	assert.Equal(t, int32(1), got.GetBackendsDraining())
	assert.Equal(t, int32(1), got.GetCircuitsOpen())
	assert.Equal(t, int32(1), got.GetNodesOnline())
	assert.Equal(t, int32(1), got.GetQueued())
	assert.Equal(t, int32(1), got.GetInFlight())
	assert.Zero(t, got.GetTokensToday())
	assert.Len(t, got.GetModels(), len(h.reg.Catalog()))

	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{
		LeaseId: held.GetLease().GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
		Usage: &controlplanev1.Usage{PromptTokens: 40, CompletionTokens: 120},
	})
	require.NoError(t, err)
	require.NoError(t, <-done)
	got, err = st.GetClusterStatus(t.Context(), &controlplanev1.GetClusterStatusRequest{})
	require.NoError(t, err)
	assert.Equal(t, int64(160), got.GetTokensToday())
	assert.Equal(t, 2.0, got.GetTokensPerSecond(), "120 completion tokens over a minute")
	assert.Zero(t, got.GetQueued())

	failing := NewStatusService(h.srv, func(context.Context) (Fleet, error) { return Fleet{}, errors.New("store down") })
	_, err = failing.GetClusterStatus(t.Context(), &controlplanev1.GetClusterStatusRequest{})
	require.Error(t, err)
}

// TestServedTokens rolls the day over at midnight UTC and forgets seconds older
// than the window.
func TestServedTokens(t *testing.T) {
	t.Parallel()
	var s servedTokens
	t0 := time.Date(2026, 3, 1, 23, 59, 30, 0, time.UTC)
	s.add(t0, 10, 60)
	s.add(t0.Add(time.Second), 0, 60)
	today, rate := s.read(t0.Add(2 * time.Second))
	assert.Equal(t, int64(130), today)
	assert.Equal(t, 2.0, rate)

	t1 := t0.Add(40 * time.Second) // the next day
	s.add(t1, 5, 6)
	today, rate = s.read(t1)
	assert.Equal(t, int64(11), today, "a new day starts from zero")
	assert.Equal(t, 126.0/60, rate, "the last minute spans midnight")
	_, rate = s.read(t1.Add(2 * time.Minute))
	assert.Zero(t, rate)
}

// TestTokensTotalIsCached: the all-time total is read once per TotalTTL,
// not per call; a failed read keeps the last value and is retried after the
// TTL; without WithTotal the field is 0 and nothing is read.
func TestTokensTotalIsCached(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := &cachedTotal{ttl: TotalTTL, now: func() time.Time { return now }}
	reads, value := 0, int64(1000)
	var fail error
	c.read = func(context.Context) (int64, error) { reads++; return value, fail }
	assert.Equal(t, int64(1000), c.get(t.Context()))
	value = 2000
	now = now.Add(TotalTTL - time.Second)
	for range 100 {
		assert.Equal(t, int64(1000), c.get(t.Context()), "within the TTL: the cached value")
	}
	assert.Equal(t, 1, reads)
	now = now.Add(time.Second)
	assert.Equal(t, int64(2000), c.get(t.Context()), "after the TTL: read again")
	fail, value = errors.New("store down"), 0
	now = now.Add(TotalTTL)
	assert.Equal(t, int64(2000), c.get(t.Context()), "a failed read keeps the last value")
	fail, value = nil, 3000
	assert.Equal(t, int64(2000), c.get(t.Context()), "and waits a TTL before the next try")
	now = now.Add(TotalTTL)
	assert.Equal(t, int64(3000), c.get(t.Context()))
	assert.Equal(t, 4, reads)

	h := newHarness(t, Options{}, backendCand(1, 1))
	got, err := NewStatusService(h.srv, nil).GetClusterStatus(t.Context(), &controlplanev1.GetClusterStatusRequest{})
	require.NoError(t, err)
	assert.Zero(t, got.GetTokensTotal())
	got, err = NewStatusService(h.srv, nil).WithTotal(func(context.Context) (int64, error) { return 123456, nil }).
		GetClusterStatus(t.Context(), &controlplanev1.GetClusterStatusRequest{})
	require.NoError(t, err)
	assert.Equal(t, int64(123456), got.GetTokensTotal())
}
