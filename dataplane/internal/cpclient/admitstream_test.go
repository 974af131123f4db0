package cpclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

func TestAdmitWatchDeliversUpdatesThenTheLease(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.fake.SetQueueUpdates(
		relay.QueueUpdate{Position: 2, EstimatedWait: 700 * time.Millisecond},
		relay.QueueUpdate{Position: 1},
	)
	var got []relay.QueueUpdate
	resp, err := h.client.AdmitWatch(context.Background(), admitReq(), func(u relay.QueueUpdate) { got = append(got, u) })
	require.NoError(t, err)
	assert.Equal(t, []relay.QueueUpdate{{Position: 2, EstimatedWait: 700 * time.Millisecond}, {Position: 1}}, got)
	assert.NotEmpty(t, resp.Lease.ID)
	assert.Equal(t, []string{resp.Lease.ID}, h.client.InFlight(), "the lease is renewed like Admit's")
	assert.Equal(t, 1, h.fake.AdmitStreams())
}

func TestAdmitWatchKeepsAdmitsCancellationAndTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *cpclient.Config) { c.AdmitTimeout = 100 * time.Millisecond })
	h.fake.SetQueueUpdates(relay.QueueUpdate{Position: 1})
	release := h.fake.HoldAdmits()
	defer release()
	_, err := h.client.AdmitWatch(context.Background(), admitReq(), nil)
	var ce *cpclient.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, relay.ReasonQueueTimeout, ce.Reason)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := h.client.AdmitWatch(ctx, admitReq(), func(relay.QueueUpdate) { cancel() })
		errc <- err
	}()
	require.ErrorIs(t, <-errc, context.Canceled)
	h.fake.WaitFor(t, 0, "dequeue", func() bool { return h.fake.CancelledAdmits() == 2 })
	assert.Empty(t, h.client.InFlight())
}

func TestAdmitWatchFallsBackToAdmit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.fake.DisableAdmitStream()
	for range 2 {
		resp, err := h.client.AdmitWatch(context.Background(), admitReq(), func(relay.QueueUpdate) { t.Error("no updates from Admit") })
		require.NoError(t, err)
		assert.NotEmpty(t, resp.Lease.ID)
	}
	assert.Len(t, h.fake.Admits(), 2)
	assert.Zero(t, h.fake.AdmitStreams())
}
