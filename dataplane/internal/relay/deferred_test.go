package relay_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

// TestDeferredRelease: with Call.Deferred set the lease that served the request is
// settled only by Send, once, with the exact usage; a failed attempt before it
// is settled at once, as its backend slot is needed.
func TestDeferredRelease(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "whole", true: "stream"}[stream], func(t *testing.T) {
			t.Parallel()
			good, sim := simBackend(t, 2, enginesim.EngineVLLM, nil)
			h := newHarness(t, failingBackend(t, 1, http.StatusServiceUnavailable), good)
			deferred := &relay.Deferred{}
			c := call(stream)
			c.Deferred = deferred
			var res *relay.Result
			var err error
			if stream {
				res, err = h.relay.ChatStream(context.Background(), c, &sink{})
			} else {
				res, err = h.relay.Chat(context.Background(), c)
			}
			require.NoError(t, err)
			rel := h.fake.WaitReleases(t, 1)
			require.Equal(t, relay.OutcomeBackendError, rel[0].Outcome, "the failed attempt is not deferred")
			require.True(t, deferred.Pending())
			require.Len(t, h.fake.Unreleased(), 1, "the serving lease waits for Send")

			deferred.Send()
			require.False(t, deferred.Pending())
			rel = h.fake.WaitReleases(t, 2)
			require.Equal(t, relay.OutcomeSuccess, rel[1].Outcome)
			require.Equal(t, sim.Stats().CompletionTokens, rel[1].Usage.Completion)
			require.Equal(t, res.Usage.Completion, rel[1].Usage.Completion)
			deferred.Send() // a second Send sends nothing again
			h.assertOneReleasePerAdmit(t)
			require.Len(t, h.fake.Releases(), 2)
		})
	}
}

// TestDeferredReleaseNotForFailures: a request that fails releases at once
// even with Call.Deferred set.
func TestDeferredReleaseNotForFailures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, failingBackend(t, 1, http.StatusBadRequest))
	deferred := &relay.Deferred{}
	c := call(false)
	c.Deferred = deferred
	_, err := h.relay.Chat(context.Background(), c)
	require.Error(t, err)
	require.False(t, deferred.Pending())
	require.Equal(t, relay.OutcomeRejected, h.fake.WaitReleases(t, 1)[0].Outcome)
	h.assertOneReleasePerAdmit(t)
}
