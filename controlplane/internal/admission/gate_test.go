package admission

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// gate is a switch the test moves.
type gate struct{ off atomic.Bool }

func (g *gate) Offline() (string, bool) { return "back at noon", g.off.Load() }

// TestOfflineGateRefusesEveryRequest: while the switch is off every Admit is
// refused (even with a bad credential: nothing is looked up) with the
// administrators' message and a Retry-After, holds nothing, and the status
// service says so; switched back on, requests are admitted again.
func TestOfflineGateRefusesEveryRequest(t *testing.T) {
	t.Parallel()
	g := &gate{}
	h := newHarness(t, Options{Gate: g}, backendCand(1, 1))
	g.off.Store(true)
	for _, cred := range []string{"", "mr2_nope"} {
		req := h.admitReq("r")
		if cred != "" {
			req.Credential = cred
		}
		_, err := h.admit.Admit(t.Context(), req)
		require.Equal(t, codes.Unavailable, status.Code(err), "error: %v", err)
		require.Contains(t, status.Convert(err).Message(), "offline for maintenance: back at noon")
		require.Equal(t, offlineRetryAfter, retryAfterOf(err))
	}
	_, err := h.srv.Admit(t.Context(), h.admitReq("r"))
	require.ErrorIs(t, err, ErrServiceOffline)
	require.Zero(t, h.queue.InFlight(1))
	require.Zero(t, h.srv.leases.count())
	st, err := NewStatusService(h.srv, nil).GetClusterStatus(t.Context(), nil)
	require.NoError(t, err)
	require.True(t, st.GetOffline())
	require.Equal(t, "back at noon", st.GetOfflineMessage())

	g.off.Store(false)
	_, err = h.admit.Admit(t.Context(), h.admitReq("r2"))
	require.NoError(t, err)
	st, err = NewStatusService(h.srv, nil).GetClusterStatus(t.Context(), nil)
	require.NoError(t, err)
	require.False(t, st.GetOffline())
}
