package admission

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// replicaConn is a data-plane replica's side of a Session.
type replicaConn struct {
	stream  grpc.BidiStreamingClient[controlplanev1.SessionRequest, controlplanev1.SessionResponse]
	cancel  context.CancelFunc
	msgs    chan *controlplanev1.SessionResponse
	errc    chan error
	welcome *controlplanev1.Welcome
}

// open starts a stream and sends first, without waiting for an answer.
func (h *harness) open(t *testing.T, first *controlplanev1.SessionRequest) *replicaConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := h.session.Session(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(first))
	r := &replicaConn{stream: stream, cancel: cancel, msgs: make(chan *controlplanev1.SessionResponse, 16), errc: make(chan error, 1)}
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				r.errc <- err
				return
			}
			r.msgs <- m
		}
	}()
	return r
}

// connect opens a session for replica and waits for its Welcome.
func (h *harness) connect(t *testing.T, replica string) *replicaConn {
	t.Helper()
	r := h.open(t, &controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Hello{
		Hello: &controlplanev1.Hello{ReplicaId: replica, Version: "test"},
	}})
	r.welcome = r.next(t).GetWelcome()
	require.NotNil(t, r.welcome, "the first answer must be a Welcome")
	return r
}

func (r *replicaConn) next(t *testing.T) *controlplanev1.SessionResponse {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case err := <-r.errc:
		t.Fatalf("session ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no session message within 5s")
	}
	return nil
}

// ended waits for the stream's end and returns its error.
func (r *replicaConn) ended(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.errc:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end within 5s")
	}
	return nil
}

func (r *replicaConn) heartbeat(t *testing.T, ids ...string) *controlplanev1.HeartbeatAck {
	t.Helper()
	require.NoError(t, r.stream.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Heartbeat{
		Heartbeat: &controlplanev1.Heartbeat{LeaseIds: ids},
	}}))
	for {
		if ack := r.next(t).GetHeartbeatAck(); ack != nil {
			return ack
		}
	}
}

// admitAs admits one request for replica and returns its lease id.
func (h *harness) admitAs(t *testing.T, replica, requestID string) string {
	t.Helper()
	req := h.admitReq(requestID)
	req.ReplicaId = replica
	resp, err := h.admit.Admit(t.Context(), req)
	require.NoError(t, err)
	return resp.GetLease().GetLeaseId()
}

func (h *harness) waitSessions(t *testing.T, n float64) {
	t.Helper()
	require.Eventually(t, func() bool { return h.metricValue(t, "mindrouter_sessions", nil) == n },
		5*time.Second, time.Millisecond, "open sessions never reached %v", n)
}

func (h *harness) released(t *testing.T, leaseID string) bool {
	t.Helper()
	resp, err := h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: leaseID})
	require.NoError(t, err)
	return resp.GetAlreadySettled()
}

func TestSessionMustStartWithHello(t *testing.T) {
	t.Parallel()
	tests := map[string]*controlplanev1.SessionRequest{
		"heartbeat first": {Kind: &controlplanev1.SessionRequest_Heartbeat{Heartbeat: &controlplanev1.Heartbeat{}}},
		"no replica id":   {Kind: &controlplanev1.SessionRequest_Hello{Hello: &controlplanev1.Hello{}}},
		"empty message":   {},
	}
	for name, first := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{})
			r := h.open(t, first)
			require.Equal(t, codes.InvalidArgument, status.Code(r.ended(t)))
		})
	}
}

func TestSessionWelcome(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{HeartbeatInterval: 3 * time.Second, LeaseTTL: 9 * time.Second})
	r := h.connect(t, "dp-1")
	require.NotEmpty(t, r.welcome.GetSessionId())
	require.Equal(t, 3*time.Second, r.welcome.GetHeartbeatInterval().AsDuration())
	require.Equal(t, 9*time.Second, r.welcome.GetLeaseTtl().AsDuration())
	h.waitSessions(t, 1)
	r.cancel()
	h.waitSessions(t, 0)
}

func TestHeartbeatKeepsLeasesAlive(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{LeaseTTL: 30 * time.Second}, backendCand(1, 2))
	r := h.connect(t, "dp-1")
	kept := h.admitAs(t, "dp-1", "kept")
	dropped := h.admitAs(t, "dp-1", "dropped")

	h.clock.Advance(25 * time.Second)
	ack := r.heartbeat(t, kept, "never-issued")
	require.Equal(t, []string{"never-issued"}, ack.GetUnknownLeaseIds())
	require.Equal(t, []string{kept}, h.connect(t, "dp-2").heartbeat(t, kept).GetUnknownLeaseIds(),
		"a replica cannot renew another replica's lease")

	h.clock.Advance(10 * time.Second) // past the first expiry
	h.srv.sweep(h.clock.Now())
	require.Equal(t, 1, h.queue.InFlight(1), "the renewed lease lives, the other expired")
	require.Equal(t, 1.0, h.metricValue(t, "mindrouter_leases_expired_total", nil))
	require.True(t, h.released(t, dropped), "an expired lease is already settled")
	require.Equal(t, []string{dropped}, r.heartbeat(t, dropped).GetUnknownLeaseIds())

	h.clock.Advance(30 * time.Second) // no more heartbeats
	h.srv.sweep(h.clock.Now())
	require.Zero(t, h.queue.InFlight(1))
	require.True(t, h.released(t, kept))
}

func TestRunSweepsExpiredLeases(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{LeaseTTL: time.Second, SweepInterval: 5 * time.Millisecond}, backendCand(1, 1))
	h.admitAs(t, "", "r")
	h.clock.Advance(2 * time.Second)
	require.Eventually(t, func() bool { return h.queue.InFlight(1) == 0 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, 1.0, h.metricValue(t, "mindrouter_leases_expired_total", nil))
}

func TestBrokenSessionReclaimsLeasesAfterGrace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{SessionGrace: 15 * time.Second, LeaseTTL: time.Minute}, backendCand(1, 1))
	r := h.connect(t, "dp-1")
	held := h.admitAs(t, "dp-1", "held")

	type res struct {
		resp *controlplanev1.AdmitResponse
		err  error
	}
	waiter := make(chan res, 1)
	go func() {
		req := h.admitReq("waiting")
		req.ReplicaId = "dp-2"
		resp, err := h.admit.Admit(t.Context(), req)
		waiter <- res{resp, err}
	}()
	h.waitDepth(t, 1)

	r.cancel() // the replica dies
	h.waitSessions(t, 0)
	h.clock.Advance(14 * time.Second)
	h.srv.sweep(h.clock.Now())
	require.Equal(t, 1, h.queue.InFlight(1), "leases survive within the grace period")
	require.Equal(t, 1, h.queueDepth())

	h.clock.Advance(2 * time.Second)
	h.srv.sweep(h.clock.Now())
	w := <-waiter
	require.NoError(t, w.err, "the reclaimed slot goes to the waiter")
	require.Equal(t, "waiting", w.resp.GetLease().GetRequestId())
	require.Equal(t, 1.0, h.metricValue(t, "mindrouter_leases_reclaimed_total", nil))
	require.True(t, h.released(t, held))
	require.Equal(t, 1, h.queue.InFlight(1))
}

func TestReconnectWithinGraceKeepsLeases(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{SessionGrace: 15 * time.Second, LeaseTTL: time.Minute}, backendCand(1, 1))
	r := h.connect(t, "dp-1")
	held := h.admitAs(t, "dp-1", "held")
	r.cancel()
	h.waitSessions(t, 0)

	h.clock.Advance(10 * time.Second)
	again := h.connect(t, "dp-1")
	h.clock.Advance(10 * time.Second) // past the grace of the first session
	h.srv.sweep(h.clock.Now())
	require.Equal(t, 1, h.queue.InFlight(1))
	require.Empty(t, again.heartbeat(t, held).GetUnknownLeaseIds())
	require.Zero(t, h.metricValue(t, "mindrouter_leases_reclaimed_total", nil))
	require.False(t, h.released(t, held))
}

func TestNewerSessionReplacesOlder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{SessionGrace: time.Second}, backendCand(1, 1))
	old := h.connect(t, "dp-1")
	held := h.admitAs(t, "dp-1", "held")
	h.connect(t, "dp-1")
	require.Equal(t, codes.Aborted, status.Code(old.ended(t)))

	h.clock.Advance(20 * time.Second) // past the grace, within the lease TTL
	h.srv.sweep(h.clock.Now())
	require.False(t, h.released(t, held), "the replica is still connected: no grace ran")
}

func TestSessionPushes(t *testing.T) {
	t.Parallel()
	revocations := &fakeRevocations{ch: make(chan string)}
	h := newHarness(t, Options{Revocations: revocations}, backendCand(1, 1))
	r := h.connect(t, "dp-1")
	h.waitSessions(t, 1)

	h.reg.set("mistral", backendCand(2, 1))
	changed := r.next(t).GetCatalogChanged()
	require.NotNil(t, changed)
	require.Equal(t, h.reg.Version(), changed.GetVersion())

	revocations.ch <- "mr2_abcd1234"
	revoked := r.next(t).GetCredentialRevoked()
	require.NotNil(t, revoked)
	require.Equal(t, "mr2_abcd1234", revoked.GetKeyPrefix())
}

func TestLaggingSessionIsEnded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	sess := &session{replica: "dp-1", push: make(chan *controlplanev1.SessionResponse, 1), gone: make(chan struct{})}
	h.srv.sessions.open(sess)
	msg := &controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_CatalogChanged{
		CatalogChanged: &controlplanev1.CatalogChanged{Version: 1},
	}}
	h.srv.broadcast(msg) // fills the buffer
	select {
	case <-sess.gone:
		t.Fatal("ended with room to spare")
	default:
	}
	h.srv.broadcast(msg) // no room: the replica must resync
	<-sess.gone
	require.Contains(t, sess.reason, "behind")
}

// TestShutdownEndsSessions: when Run ends (the control plane is stopping), open
// sessions end with Unavailable and new ones are refused, so that the graceful
// gRPC stop does not wait out its whole deadline for streams that never end.
func TestShutdownEndsSessions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1))
	r := h.connect(t, "replica-a")
	h.stopRun()
	select {
	case err := <-r.errc:
		require.Equal(t, codes.Unavailable, status.Code(err))
	case <-time.After(10 * time.Second):
		t.Fatal("the session outlived the shutdown")
	}
	late := h.open(t, &controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Hello{
		Hello: &controlplanev1.Hello{ReplicaId: "replica-b", Version: "test"},
	}})
	select {
	case err := <-late.errc:
		require.Equal(t, codes.Unavailable, status.Code(err))
	case <-time.After(10 * time.Second):
		t.Fatal("a session opened after the shutdown")
	}
}

// TestReleasesOverTheSession: a replica may settle leases on its session instead
// of with unary Release calls; each is handled exactly as Release, and the ack
// says which were settled (or already were) and which were refused.
func TestReleasesOverTheSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 4))
	r := h.connect(t, "replica-a")
	a, b := h.admitAs(t, "replica-a", "ra"), h.admitAs(t, "replica-a", "rb")
	require.Equal(t, 2, h.queue.InFlight(1))
	send := func(reqs ...*controlplanev1.ReleaseRequest) *controlplanev1.ReleasesAck {
		t.Helper()
		require.NoError(t, r.stream.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Releases{
			Releases: &controlplanev1.Releases{Releases: reqs},
		}}))
		for {
			if ack := r.next(t).GetReleasesAck(); ack != nil {
				return ack
			}
		}
	}
	ack := send(
		&controlplanev1.ReleaseRequest{LeaseId: a, Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS, Usage: &controlplanev1.Usage{PromptTokens: 100, CompletionTokens: 20}},
		&controlplanev1.ReleaseRequest{LeaseId: b, Outcome: controlplanev1.Outcome_OUTCOME_BACKEND_ERROR},
		&controlplanev1.ReleaseRequest{LeaseId: "never-granted"},
	)
	require.Equal(t, []string{a, b}, ack.GetSettledLeaseIds())
	require.Equal(t, []string{"never-granted"}, ack.GetRefusedLeaseIds())
	require.Zero(t, h.queue.InFlight(1))
	require.Equal(t, 20.0, h.metricValue(t, "mindrouter_tokens_total", map[string]string{"model": "llama3", "type": "completion"}))
	h.reg.mu.Lock()
	require.Equal(t, []outcome{{1, false}, {1, true}}, h.reg.outcomes)
	h.reg.mu.Unlock()

	// Sent again after a broken session: already settled, counted once.
	ack = send(&controlplanev1.ReleaseRequest{LeaseId: a, Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS, Usage: &controlplanev1.Usage{CompletionTokens: 20}})
	require.Equal(t, []string{a}, ack.GetSettledLeaseIds())
	require.Equal(t, 20.0, h.metricValue(t, "mindrouter_tokens_total", map[string]string{"model": "llama3", "type": "completion"}))
	require.True(t, h.released(t, b), "the unary path sees it settled too")
}

// TestReclaimedLeaseIsChargedItsReportedProgress: a lease lost with its
// replica is charged what the replica's last heartbeat reported, or its whole
// reservation when no heartbeat carried progress for it.
func TestReclaimedLeaseIsChargedItsReportedProgress(t *testing.T) {
	t.Parallel()
	acct := &accountant{}
	h := newHarness(t, Options{Accountant: acct, SessionGrace: time.Second, LeaseTTL: time.Minute}, backendCand(1, 2))
	r := h.connect(t, "dp-1")
	progressed := h.admitAs(t, "dp-1", "progressed")
	silent := h.admitAs(t, "dp-1", "silent")
	require.NoError(t, r.stream.Send(&controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Heartbeat{
		Heartbeat: &controlplanev1.Heartbeat{Leases: []*controlplanev1.LeaseRef{
			{LeaseId: progressed, PromptTokens: 12, CompletionTokens: 30, ProgressReported: true},
			{LeaseId: silent},
		}},
	}}))
	for r.next(t).GetHeartbeatAck() == nil {
	}
	r.cancel() // the replica dies
	h.waitSessions(t, 0)
	h.clock.Advance(2 * time.Second)
	h.srv.sweep(h.clock.Now())
	require.True(t, h.released(t, progressed))
	require.True(t, h.released(t, silent))

	acct.mu.Lock()
	defer acct.mu.Unlock()
	require.Len(t, acct.settled, 2)
	byID := map[string]Settlement{}
	for _, s := range acct.settled {
		byID[s.RequestID] = s
	}
	p := byID["progressed"]
	require.False(t, p.Lost, "the progress is known")
	require.Equal(t, [2]int64{12, 30}, [2]int64{p.PromptTokens, p.CompletionTokens})
	require.True(t, byID["silent"].Lost, "no progress: the accountant charges the reservation")
}
