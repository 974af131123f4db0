package cpclient_test

import (
	"context"

	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

const token = "cluster-secret"

type harness struct {
	fake   *cpclienttest.Server
	conn   *grpc.ClientConn
	client *cpclient.Client
}

func newHarness(t *testing.T, mutate func(*cpclient.Config)) *harness {
	t.Helper()
	fake := cpclienttest.Start(t)
	fake.Token = token
	fake.SetBackends(cpclienttest.Backend{ID: 1, Name: "gpu1", URL: "http://gpu1:11434", Engine: relay.EngineOllama})
	conn, err := cpclient.Dial(fake.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	cfg := cpclient.Config{ClusterToken: token, ReplicaID: "dp-test", Version: "test",
		BackoffBase: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond, DrainTimeout: time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	client, err := cpclient.New(conn, cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	return &harness{fake: fake, conn: conn, client: client}
}

// run starts the client's session and release loop until the test ends.
func (h *harness) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.client.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func admitReq() relay.AdmitRequest {
	return relay.AdmitRequest{RequestID: "r1", Credential: "key", Model: "llama3.2", Attempt: 1,
		Operation: relay.OperationChat}
}

func TestAdmitAndRelease(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	resp, err := h.client.Admit(context.Background(), admitReq())
	require.NoError(t, err)
	lease := resp.Lease
	require.Equal(t, "http://gpu1:11434", lease.BackendURL)
	require.Equal(t, []string{lease.ID}, h.client.InFlight())
	require.Equal(t, "dp-test", h.fake.AdmitMessages()[0].GetReplicaId(), "the replica id is filled in")

	require.NoError(t, h.client.Release(context.Background(), relay.Release{
		LeaseID: lease.ID, Outcome: relay.OutcomeSuccess,
		Usage: canonical.Usage{Prompt: 10, Completion: 5},
	}))
	require.Empty(t, h.client.InFlight())
	rel := h.fake.Releases()
	require.Len(t, rel, 1)
	require.Equal(t, int64(5), rel[0].Usage.Completion)
}

func TestReleaseOnCancelledContext(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	resp, err := h.client.Admit(context.Background(), admitReq())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, h.client.Release(ctx, relay.Release{LeaseID: resp.Lease.ID,
		Outcome: relay.OutcomeClientCancelled}))
	require.Len(t, h.fake.Releases(), 1, "a client that went away is still accounted for")
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		kind     canonical.ErrorKind
		code     string
		wait     time.Duration
		inReason relay.Reason
	}{
		{"invalid key", cpclienttest.Refusal(codes.Unauthenticated, relay.ReasonInvalidCredential, "Invalid API key", 0),
			canonical.KindAuthentication, "invalid_api_key", 0, relay.ReasonInvalidCredential},
		{"revoked", cpclienttest.Refusal(codes.Unauthenticated, relay.ReasonCredentialRevoked, "API key is revoked", 0),
			canonical.KindAuthentication, "api_key_revoked", 0, relay.ReasonCredentialRevoked},
		{"expired", cpclienttest.Refusal(codes.Unauthenticated, relay.ReasonCredentialExpired, "API key has expired", 0),
			canonical.KindAuthentication, "api_key_expired", 0, relay.ReasonCredentialExpired},
		{"inactive", cpclienttest.Refusal(codes.Unauthenticated, relay.ReasonUserInactive, "User account is inactive", 0),
			canonical.KindAuthentication, "user_inactive", 0, relay.ReasonUserInactive},
		{"forbidden", cpclienttest.Refusal(codes.PermissionDenied, relay.ReasonPermissionDenied, "not permitted", 0),
			canonical.KindPermission, "permission_denied", 0, relay.ReasonPermissionDenied},
		{"model", cpclienttest.Refusal(codes.NotFound, relay.ReasonModelNotFound, "model 'x' not found", 0),
			canonical.KindNotFound, "model_not_found", 0, relay.ReasonModelNotFound},
		{"capability", cpclienttest.Refusal(codes.FailedPrecondition, relay.ReasonCapabilityUnsupported, "no vision", 0),
			canonical.KindInvalidRequest, "capability_unsupported", 0, relay.ReasonCapabilityUnsupported},
		{"no backend", cpclienttest.Refusal(codes.Unavailable, relay.ReasonNoHealthyBackend, "none healthy", 5*time.Second),
			canonical.KindUnavailable, "no_healthy_backend", 5 * time.Second, relay.ReasonNoHealthyBackend},
		{"queue full", cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonQueueFull, "queue full", 3*time.Second),
			canonical.KindUnavailable, "queue_full", 3 * time.Second, relay.ReasonQueueFull},
		{"queue timeout", cpclienttest.Refusal(codes.Unavailable, relay.ReasonQueueTimeout, "waited too long", time.Second),
			canonical.KindUnavailable, "queue_timeout", time.Second, relay.ReasonQueueTimeout},
		{"quota", cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonQuotaExhausted, "Token quota exceeded", time.Hour),
			canonical.KindQuotaExhausted, "insufficient_quota", time.Hour, relay.ReasonQuotaExhausted},
		{"rpm", cpclienttest.Refusal(codes.ResourceExhausted, relay.ReasonRateLimited, "Rate limit exceeded", 30*time.Second),
			canonical.KindRateLimited, "rate_limit_exceeded", 30 * time.Second, relay.ReasonRateLimited},
		{"invalid", cpclienttest.Refusal(codes.InvalidArgument, relay.ReasonInvalidRequest, "bad", 0),
			canonical.KindInvalidRequest, "", 0, relay.ReasonInvalidRequest},
		{"context", cpclienttest.Refusal(codes.InvalidArgument, relay.ReasonContextExceeded, "too long", 0),
			canonical.KindInvalidRequest, "context_length_exceeded", 0, relay.ReasonContextExceeded},
		{"database", cpclienttest.Refusal(codes.Unavailable, relay.ReasonDatabaseUnavailable, "the gateway's database is unavailable; retry shortly", 5*time.Second),
			canonical.KindUnavailable, "database_unavailable", 5 * time.Second, relay.ReasonDatabaseUnavailable},
		{"bare internal", status.Error(codes.Internal, "db exploded at 10.0.0.3"),
			canonical.KindInternal, "", 0, relay.ReasonUnspecified},
		{"bare unavailable", status.Error(codes.Unavailable, "shutting down"),
			canonical.KindUnavailable, "control_plane_unavailable", 2 * time.Second, relay.ReasonUnspecified},
		{"bare unauthenticated is the replica's problem", status.Error(codes.Unauthenticated, "bad cluster token"),
			canonical.KindUnavailable, "control_plane_unavailable", 2 * time.Second, relay.ReasonUnspecified},
	}
	// The same refusals whether the admission is a unary call or rides the session.
	for _, transport := range []string{"unary", "session"} {
		h := newHarness(t, nil)
		if transport == "session" {
			h = sessionHarness(t)
		}
		for _, tc := range tests {
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				before := h.fake.SessionAdmits()
				h.fake.FailAdmits(tc.err)
				_, err := h.client.Admit(context.Background(), admitReq())
				if transport == "session" {
					require.Equal(t, before+1, h.fake.SessionAdmits(), "the admission rode the session")
				} else {
					require.Zero(t, h.fake.SessionAdmits())
				}
				var ce *cpclient.Error
				require.ErrorAs(t, err, &ce)
				require.Equal(t, tc.inReason, ce.Reason)
				got := canonical.AsError(err)
				require.Equal(t, tc.kind, got.Kind)
				require.Equal(t, tc.code, got.Code)
				require.Equal(t, tc.wait, got.RetryAfter())
				if tc.kind == canonical.KindInternal {
					require.NotContains(t, got.Message, "10.0.0.3", "internal details stay in logs")
				}
			})
		}
	}
}

func TestWrongClusterToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *cpclient.Config) { c.ClusterToken = "wrong" })
	_, err := h.client.Admit(context.Background(), admitReq())
	require.Equal(t, canonical.KindUnavailable, canonical.AsError(err).Kind, "clients are not blamed for the replica's token")
}

func TestControlPlaneDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.fake.Stop()
	_, err := h.client.Admit(context.Background(), admitReq())
	var ce *cpclient.Error
	require.ErrorAs(t, err, &ce)
	require.True(t, ce.Unreachable())
	got := canonical.AsError(err)
	require.Equal(t, canonical.KindUnavailable, got.Kind)
	require.Equal(t, 2*time.Second, got.RetryAfter())
}

func TestAdmitCancelledWhileQueued(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	release := h.fake.HoldAdmits()
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := h.client.Admit(ctx, admitReq())
		errc <- err
	}()
	h.fake.WaitFor(t, 0, "admit", func() bool { return len(h.fake.Admits()) == 1 })
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	h.fake.WaitFor(t, 0, "dequeue", func() bool { return h.fake.CancelledAdmits() == 1 })
	require.Empty(t, h.client.InFlight())
}

func TestAdmitTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *cpclient.Config) { c.AdmitTimeout = 50 * time.Millisecond })
	release := h.fake.HoldAdmits()
	defer release()
	_, err := h.client.Admit(context.Background(), admitReq())
	var ce *cpclient.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, relay.ReasonQueueTimeout, ce.Reason)
	require.Equal(t, canonical.KindUnavailable, canonical.AsError(err).Kind)
}

// TestReleaseSurvivesBlips: a release the control plane cannot take is
// retried in the background, and its lease stays in the heartbeats meanwhile.
func TestReleaseSurvivesBlips(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run(t)
	resp, err := h.client.Admit(context.Background(), admitReq())
	require.NoError(t, err)
	id := resp.Lease.ID
	blip := status.Error(codes.Unavailable, "restarting")
	h.fake.FailReleases(blip, blip, blip)
	require.NoError(t, h.client.Release(context.Background(), relay.Release{LeaseID: id,
		Outcome: relay.OutcomeSuccess, Usage: canonical.Usage{Completion: 9}}))
	require.Contains(t, h.client.InFlight(), id)
	rel := h.fake.WaitReleases(t, 1)
	require.Equal(t, int64(9), rel[0].Usage.Completion)
	require.Eventually(t, func() bool { return len(h.client.InFlight()) == 0 }, 5*time.Second, 10*time.Millisecond)
}

func TestReleaseAcrossRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run(t)
	resp, err := h.client.Admit(context.Background(), admitReq())
	require.NoError(t, err)
	h.fake.Stop()
	require.NoError(t, h.client.Release(context.Background(), relay.Release{LeaseID: resp.Lease.ID,
		Outcome: relay.OutcomeSuccess}))
	require.Empty(t, h.fake.Releases())
	h.fake.Restart(t)
	h.fake.WaitReleases(t, 1)
}

func TestReleaseRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	err := h.client.Release(context.Background(), relay.Release{LeaseID: "never-granted"})
	var ce *cpclient.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, relay.ReasonLeaseNotFound, ce.Reason)
}

func TestSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run(t)
	h.fake.WaitFor(t, 0, "hello", func() bool { return len(h.fake.Hellos()) == 1 })
	require.Equal(t, "dp-test", h.fake.Hellos()[0].GetReplicaId())
	require.Equal(t, "test", h.fake.Hellos()[0].GetVersion())
	require.Eventually(t, h.client.Connected, 5*time.Second, 10*time.Millisecond)

	resp, err := h.client.Admit(context.Background(), admitReq())
	require.NoError(t, err)
	id := resp.Lease.ID
	h.fake.WaitFor(t, 0, "heartbeat with the lease", func() bool {
		beats := h.fake.Heartbeats()
		return len(beats) > 0 && slices.Contains(beats[len(beats)-1], id)
	})
	// Each heartbeat also names the lease's identity, so a restarted control plane
	// can adopt it instead of forgetting it.
	refs := h.fake.HeartbeatLeases()
	last := refs[len(refs)-1]
	require.Len(t, last, 1)
	require.Equal(t, id, last[0].GetLeaseId())
	require.Equal(t, "r1", last[0].GetRequestId())
	require.Equal(t, resp.Lease.BackendID, last[0].GetBackendId())
	require.EqualValues(t, 1, last[0].GetUserId())
	require.Equal(t, resp.Lease.Model, last[0].GetModel())

	// A restart breaks the stream; the client reconnects and says Hello again.
	h.fake.Restart(t)
	h.fake.WaitFor(t, 0, "second hello", func() bool { return len(h.fake.Hellos()) == 2 })
	require.Eventually(t, h.client.Connected, 5*time.Second, 10*time.Millisecond)
	n := len(h.fake.Heartbeats())
	h.fake.WaitFor(t, 0, "heartbeat after reconnect", func() bool {
		beats := h.fake.Heartbeats()
		return len(beats) > n && slices.Contains(beats[len(beats)-1], id)
	})
}

// TestHeartbeatCarriesAuditSpoolFill: every heartbeat reports the audit
// spool's fill as it is when sent, so that the control plane can alert on a
// spool filling and clear the alert once it drains.
func TestHeartbeatCarriesAuditSpoolFill(t *testing.T) {
	t.Parallel()
	var spooled atomic.Int64
	spooled.Store(900)
	h := newHarness(t, func(c *cpclient.Config) {
		c.AuditSpool = func() (int64, int64) { return spooled.Load(), 1000 }
	})
	h.run(t)
	lastFill := func() cpclienttest.SpoolFill {
		fills := h.fake.HeartbeatSpools()
		if len(fills) == 0 {
			return cpclienttest.SpoolFill{}
		}
		return fills[len(fills)-1]
	}
	h.fake.WaitFor(t, 0, "a heartbeat with the filling spool", func() bool { return lastFill() == cpclienttest.SpoolFill{Bytes: 900, MaxBytes: 1000} })
	spooled.Store(0)
	h.fake.WaitFor(t, 0, "a heartbeat with the drained spool", func() bool { return lastFill() == cpclienttest.SpoolFill{Bytes: 0, MaxBytes: 1000} })
}

// TestHeartbeatAckDropsUnknownLeases: leases the control plane no longer knows
// are no longer renewed.
func TestHeartbeatAckDropsUnknownLeases(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run(t)
	resp, err := h.client.Admit(context.Background(), admitReq())
	require.NoError(t, err)
	// Settle the lease behind the client's back (as an expiry would).
	other, err := cpclient.New(h.conn, cpclient.Config{ClusterToken: token}, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	require.NoError(t, other.Release(context.Background(), relay.Release{LeaseID: resp.Lease.ID}))
	require.Eventually(t, func() bool { return len(h.client.InFlight()) == 0 }, 5*time.Second, 10*time.Millisecond)
}

func TestCatalogCache(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.run(t)
	// The session invalidates the cache when it starts; let it start first.
	require.Eventually(t, h.client.Connected, 5*time.Second, 10*time.Millisecond)
	h.fake.SetModels(relay.ModelInfo{Name: "llama3.2"})
	for range 3 {
		models, err := h.client.ListModels(context.Background(), "key")
		require.NoError(t, err)
		require.Equal(t, "llama3.2", models[0].Name)
	}
	require.Equal(t, 1, h.fake.ListModelsCalls())
	_, err := h.client.ListModels(context.Background(), "other-key")
	require.NoError(t, err)
	require.Equal(t, 2, h.fake.ListModelsCalls(), "catalogs are per credential")

	h.fake.WaitFor(t, 0, "session", func() bool { return h.fake.OpenSessions() == 1 })
	h.fake.SetModels(relay.ModelInfo{Name: "qwen3"})
	h.fake.Push(&controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_CatalogChanged{
		CatalogChanged: &controlplanev1.CatalogChanged{Version: 2}}})
	require.Eventually(t, func() bool {
		models, err := h.client.ListModels(context.Background(), "key")
		return err == nil && models[0].Name == "qwen3"
	}, 5*time.Second, 10*time.Millisecond)

	_, err = h.client.ListModels(context.Background(), "")
	require.Equal(t, canonical.KindAuthentication, canonical.AsError(err).Kind)
}

func TestRunStopsAndDrains(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.client.Run(ctx) }()
	resp, err := h.client.Admit(context.Background(), admitReq())
	require.NoError(t, err)
	h.fake.FailReleases(status.Error(codes.Unavailable, "blip"))
	require.NoError(t, h.client.Release(context.Background(), relay.Release{LeaseID: resp.Lease.ID}))
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	require.Len(t, h.fake.Releases(), 1, "pending releases are retried before Run returns")
}

// sessionHarness is a running client that sends releases over its session.
func sessionHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, func(c *cpclient.Config) { c.SessionReleases = true })
	h.run(t)
	require.Eventually(t, h.client.Connected, 5*time.Second, 5*time.Millisecond)
	return h
}

func (h *harness) admitN(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		req := admitReq()
		req.RequestID = "r" + string(rune('a'+i))
		resp, err := h.client.Admit(context.Background(), req)
		require.NoError(t, err)
		ids = append(ids, resp.Lease.ID)
	}
	return ids
}

func TestSessionReleases(t *testing.T) {
	t.Parallel()
	h := sessionHarness(t)
	ids := h.admitN(t, 3)
	for i, id := range ids {
		require.NoError(t, h.client.Release(context.Background(), relay.Release{LeaseID: id,
			Outcome: relay.OutcomeSuccess, Usage: canonical.Usage{Completion: int64(i + 1)}}))
	}
	rel := h.fake.WaitReleases(t, 3)
	require.Equal(t, 3, h.fake.SessionReleases(), "over the session, not as unary calls")
	var tokens int64
	for _, r := range rel {
		tokens += r.Usage.Completion
	}
	require.EqualValues(t, 6, tokens)
	require.Eventually(t, func() bool { return len(h.client.InFlight()) == 0 }, 5*time.Second, 5*time.Millisecond,
		"acknowledged leases are no longer renewed")

	// A release the control plane refuses for good is acknowledged as refused.
	require.NoError(t, h.client.Release(context.Background(), relay.Release{LeaseID: "never-granted"}))
	require.Eventually(t, func() bool { return h.fake.SessionReleases() == 4 }, 5*time.Second, 5*time.Millisecond)
	require.Len(t, h.fake.Releases(), 3)
}

// TestSessionReleasesResentAfterBreak: a release sent on a session that broke
// before it was acknowledged is sent again on the next session, and counted once.
func TestSessionReleasesResentAfterBreak(t *testing.T) {
	t.Parallel()
	h := sessionHarness(t)
	id := h.admitN(t, 1)[0]
	h.fake.FailReleases(status.Error(codes.Unavailable, "restarting")) // not acknowledged
	require.NoError(t, h.client.Release(context.Background(), relay.Release{LeaseID: id,
		Outcome: relay.OutcomeSuccess, Usage: canonical.Usage{Completion: 7}}))
	require.Eventually(t, func() bool { return h.fake.SessionReleases() == 1 }, 5*time.Second, 5*time.Millisecond)
	require.Empty(t, h.fake.Releases())
	require.Contains(t, h.client.InFlight(), id, "still renewed until acknowledged")

	h.fake.Restart(t)
	rel := h.fake.WaitReleases(t, 1)
	require.EqualValues(t, 7, rel[0].Usage.Completion)
	require.Eventually(t, func() bool { return len(h.client.InFlight()) == 0 }, 5*time.Second, 5*time.Millisecond)
	require.Len(t, h.fake.Releases(), 1)
}

// TestSessionReleasesDrainedAtStop: releases the session still holds when Run
// ends go to the unary retry path before Run returns.
func TestSessionReleasesDrainedAtStop(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *cpclient.Config) { c.SessionReleases = true })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.client.Run(ctx) }()
	require.Eventually(t, h.client.Connected, 5*time.Second, 5*time.Millisecond)
	id := h.admitN(t, 1)[0]
	h.fake.FailReleases(status.Error(codes.Unavailable, "blip"))
	require.NoError(t, h.client.Release(context.Background(), relay.Release{LeaseID: id}))
	require.Eventually(t, func() bool { return h.fake.SessionReleases() == 1 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	require.Len(t, h.fake.Releases(), 1, "the unacknowledged release was settled before Run returned")
}

// TestSessionReleasesFlushedAtStop: many releases handed to the session just
// before Run stops are all settled before it returns, without waiting a retry
// backoff for each.
func TestSessionReleasesFlushedAtStop(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *cpclient.Config) { c.SessionReleases = true })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.client.Run(ctx) }()
	require.Eventually(t, h.client.Connected, 5*time.Second, 5*time.Millisecond)
	const n = 200
	var ids []string
	for i := range n {
		req := admitReq()
		req.RequestID = "flush-" + strconv.Itoa(i)
		resp, err := h.client.Admit(context.Background(), req)
		require.NoError(t, err)
		ids = append(ids, resp.Lease.ID)
	}
	for _, id := range ids {
		require.NoError(t, h.client.Release(context.Background(), relay.Release{LeaseID: id}))
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(8 * time.Second):
		t.Fatal("Run did not return")
	}
	require.Len(t, h.fake.Releases(), n, "every release settled before Run returned")
	require.Empty(t, h.client.InFlight())
	// After Run, a release takes the unary path.
	resp, err := h.client.Admit(context.Background(), admitReq())
	require.NoError(t, err)
	require.NoError(t, h.client.Release(context.Background(), relay.Release{LeaseID: resp.Lease.ID}))
	require.Len(t, h.fake.Releases(), n+1)
}
