package cpclient_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

// TestListedControlPlanesFindTheOneThatAnswers: with a list of control planes
// where the first does not listen (a standby keeps its gRPC port closed), the
// client reaches the one that does, for admissions and the session.
func TestListedControlPlanesFindTheOneThatAnswers(t *testing.T) {
	t.Parallel()
	standby := cpclienttest.Start(t)
	standby.Stop()
	leader := cpclienttest.Start(t)
	leader.Token = token
	leader.SetBackends(cpclienttest.Backend{ID: 1, Name: "gpu1", URL: "http://gpu1:11434", Engine: relay.EngineOllama})
	conn, err := cpclient.Dial(standby.Addr() + "," + leader.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	client, err := cpclient.New(conn, cpclient.Config{ClusterToken: token, ReplicaID: "dp-test", FailoverWait: 10 * time.Second,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	grant, err := client.Admit(ctx, admitReq())
	require.NoError(t, err)
	require.Equal(t, "http://gpu1:11434", grant.Lease.BackendURL)
}

// TestAdmitWaitsForTheNextLeader: an admission made while no control plane
// answers waits (Config.FailoverWait) and succeeds once one is back, and the
// replica counts as available meanwhile; a refusal is never retried.
func TestAdmitWaitsForTheNextLeader(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *cpclient.Config) { c.FailoverWait = 20 * time.Second })
	h.run(t)
	require.Eventually(t, h.client.Connected, 10*time.Second, 5*time.Millisecond)
	h.fake.Stop()
	require.Eventually(t, func() bool { return !h.client.Connected() }, 10*time.Second, 5*time.Millisecond)
	require.True(t, h.client.Available(20*time.Second), "still available within the failover wait")
	require.False(t, h.client.Available(0))

	done := make(chan error, 1)
	go func() {
		_, err := h.client.Admit(context.Background(), admitReq())
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("admission ended while no control plane answered: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	h.fake.Restart(t)
	select {
	case err := <-done:
		require.NoError(t, err, "the admission went through to the control plane that came back")
	case <-time.After(20 * time.Second):
		t.Fatal("the admission did not go through after the control plane came back")
	}

	h.fake.FailAdmits(cpclienttest.Refusal(codes.Unavailable, relay.ReasonNoHealthyBackend, "none", time.Second))
	start := time.Now()
	_, err := h.client.Admit(context.Background(), admitReq())
	require.ErrorIs(t, err, relay.ReasonNoHealthyBackend)
	require.Less(t, time.Since(start), 5*time.Second, "a refusal is not retried")
}
