package admission_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/alert"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

type sessionStream = grpc.BidiStreamingClient[controlplanev1.SessionRequest, controlplanev1.SessionResponse]

// joinAs opens a session for replica and waits for its Welcome.
func joinAs(t *testing.T, c controlplanev1.SessionServiceClient, replica string) sessionStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := c.Session(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Hello{
		Hello: &controlplanev1.Hello{ReplicaId: replica, Version: "test"}}}))
	m, err := s.Recv()
	require.NoError(t, err)
	require.NotNil(t, m.GetWelcome(), "the first answer must be a Welcome")
	return s
}

// beat sends a heartbeat reporting the audit spool's fill and waits for its ack.
func beat(t *testing.T, s sessionStream, bytes, maxBytes int64) {
	t.Helper()
	require.NoError(t, s.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Heartbeat{
		Heartbeat: &controlplanev1.Heartbeat{AuditSpoolBytes: bytes, AuditSpoolMaxBytes: maxBytes}}}))
	for {
		m, err := s.Recv()
		require.NoError(t, err)
		if m.GetHeartbeatAck() != nil {
			return
		}
	}
}

// TestHeartbeatSpoolFillRaisesAndClearsAlert drives real sessions over gRPC:
// a data plane whose heartbeat reports its audit spool 90 % full gets an
// audit_spool_filling alert from the evaluator (reading the admission server
// as the control plane does); when a later heartbeat reports it drained, the
// alert is cleared. Replicas below the threshold or with an unbounded spool
// raise nothing.
func TestHeartbeatSpoolFillRaisesAndClearsAlert(t *testing.T) {
	t.Parallel()
	srv, sessions := admission.StartForTest(t)
	st := storetest.SQLite(t)
	ev := alert.NewEvaluator(st, func(context.Context) (alert.Snapshot, error) {
		return alert.Snapshot{Spools: srv.SpoolFills()}, nil
	}, alert.Options{Thresholds: alert.Thresholds{SpoolFillRatio: 0.8}})
	active := func() map[string]store.Alert {
		t.Helper()
		require.NoError(t, ev.Evaluate(t.Context()))
		as, err := st.ActiveAlerts(t.Context())
		require.NoError(t, err)
		out := map[string]store.Alert{}
		for _, a := range as {
			out[a.Kind+" "+a.Subject] = a
		}
		return out
	}

	filling, calm, unbounded := joinAs(t, sessions, "dp-full"), joinAs(t, sessions, "dp-calm"), joinAs(t, sessions, "dp-nocap")
	beat(t, calm, 100<<20, 1<<30)
	beat(t, unbounded, 5<<30, 0)
	beat(t, filling, 900<<20, 1000<<20)
	got := active()
	require.Len(t, got, 1, "only the replica past 80 %% of its bounded spool: %v", got)
	a, ok := got[alert.KindAuditSpoolFilling+" replica/dp-full"]
	require.True(t, ok, "%v", got)
	assert.Equal(t, alert.Critical, a.Severity)
	assert.Contains(t, a.Message, "dp-full")
	assert.Contains(t, a.Message, "90 %")

	// Still filling: the same alert, refreshed, not a second one.
	beat(t, filling, 950<<20, 1000<<20)
	got = active()
	require.Len(t, got, 1)
	assert.Equal(t, a.ID, got[alert.KindAuditSpoolFilling+" replica/dp-full"].ID)
	assert.Contains(t, got[alert.KindAuditSpoolFilling+" replica/dp-full"].Message, "95 %")

	// Drained: the next round clears it.
	beat(t, filling, 0, 1000<<20)
	assert.Empty(t, active())
	hist, err := st.ListAlerts(t.Context(), store.AlertFilter{})
	require.NoError(t, err)
	require.Len(t, hist, 1)
	require.NotNil(t, hist[0].ClearedAt, "the alert is kept, cleared")
}
