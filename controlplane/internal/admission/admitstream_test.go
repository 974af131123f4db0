package admission

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// mapStreamErrors is mapErrors for streaming calls.
// streamQueue reports queue progress every 10 ms.
func streamQueue() harnessQueue {
	return harnessQueue{queue: scheduler.Options{UpdateInterval: 10 * time.Millisecond}}
}

func TestAdmitStreamSendsQueueUpdatesThenTheLease(t *testing.T) {
	t.Parallel()
	h := newHarnessQueue(t, Options{}, streamQueue(), backendCand(1, 1))
	busy, err := h.admit.Admit(t.Context(), h.admitReq("busy"))
	require.NoError(t, err)
	second := make(chan *controlplanev1.AdmitResponse, 1)
	go func() {
		resp, err := h.admit.Admit(t.Context(), h.admitReq("second"))
		assert.NoError(t, err)
		second <- resp
	}()
	h.waitDepth(t, 1)

	st, err := h.admit.AdmitStream(t.Context(), &controlplanev1.AdmitStreamRequest{Request: h.admitReq("third")})
	require.NoError(t, err)
	msg, err := st.Recv()
	require.NoError(t, err)
	require.NotNil(t, msg.GetQueued(), "the first message says where the request waits")
	assert.EqualValues(t, 2, msg.GetQueued().GetPosition())
	assert.Zero(t, msg.GetQueued().GetEstimatedWait().AsDuration(), "no slot was released yet: no estimate")

	// The busy slot was held 2 s; the next estimate follows it.
	h.clock.Advance(2 * time.Second)
	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: busy.GetLease().GetLeaseId()})
	require.NoError(t, err)
	msg, err = st.Recv()
	require.NoError(t, err)
	require.NotNil(t, msg.GetQueued())
	assert.EqualValues(t, 1, msg.GetQueued().GetPosition())
	assert.Equal(t, 2*time.Second, msg.GetQueued().GetEstimatedWait().AsDuration(), "one ahead, one slot held 2 s on average")

	sec := <-second
	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: sec.GetLease().GetLeaseId()})
	require.NoError(t, err)
	msg, err = st.Recv()
	require.NoError(t, err)
	adm := msg.GetAdmitted()
	require.NotNil(t, adm, "the grant ends the stream")
	assert.EqualValues(t, 2, adm.GetQueuePosition())
	assert.EqualValues(t, 1, adm.GetLease().GetBackendId())
	_, err = st.Recv()
	require.ErrorIs(t, err, io.EOF)
	assert.Equal(t, 1, h.queue.InFlight(1))
	assert.Equal(t, 3.0, h.metricValue(t, "mindrouter_admissions_total", map[string]string{"result": "granted"}))

	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: adm.GetLease().GetLeaseId()})
	require.NoError(t, err)
	assert.Zero(t, h.queue.InFlight(1))
}

func TestAdmitStreamCancelLeavesTheQueue(t *testing.T) {
	t.Parallel()
	h := newHarnessQueue(t, Options{}, streamQueue(), backendCand(1, 1))
	busy, err := h.admit.Admit(t.Context(), h.admitReq("busy"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	st, err := h.admit.AdmitStream(ctx, &controlplanev1.AdmitStreamRequest{Request: h.admitReq("gives-up")})
	require.NoError(t, err)
	msg, err := st.Recv()
	require.NoError(t, err)
	require.EqualValues(t, 1, msg.GetQueued().GetPosition())
	cancel()
	_, err = st.Recv()
	require.Equal(t, codes.Canceled, status.Code(err))
	h.waitDepth(t, 0)
	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: busy.GetLease().GetLeaseId()})
	require.NoError(t, err)
	require.Zero(t, h.queue.InFlight(1), "the freed slot is not owed to the cancelled request")
	require.Eventually(t, func() bool {
		return h.metricValue(t, "mindrouter_admissions_total", map[string]string{"result": "cancelled"}) == 1
	}, 5*time.Second, time.Millisecond)
}

func TestAdmitStreamRefusalsKeepAdmitsCodes(t *testing.T) {
	t.Parallel()
	h := newHarnessQueue(t, Options{}, streamQueue(), backendCand(1, 1))
	req := h.admitReq("denied")
	req.Credential = readOnlyKey
	st, err := h.admit.AdmitStream(t.Context(), &controlplanev1.AdmitStreamRequest{Request: req})
	require.NoError(t, err)
	_, err = st.Recv()
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	assert.Zero(t, h.queue.InFlight(1))
}
