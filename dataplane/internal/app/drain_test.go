package app_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/config"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// TestDrainDelayKeepsServingWhileUnready: told to stop, a data plane with a
// drain delay answers /readyz 503 at once and still serves new requests until
// the delay has passed, so that its load balancer can stop sending first.
func TestDrainDelayKeepsServingWhileUnready(t *testing.T) {
	t.Parallel()
	fake := cpclienttest.Start(t)
	fake.SetBackends(simBackend(t, enginesim.Config{CompletionTokens: 3}))
	const delay = 2 * time.Second
	dp := start(t, fake.Addr(), func(c *config.Config) { c.DrainDelay = delay })
	require.Eventually(t, func() bool { return status(t, dp.url+"/readyz") == http.StatusOK }, 10*time.Second, 5*time.Millisecond)

	stopped := time.Now()
	dp.stop()
	require.Eventually(t, func() bool { return status(t, dp.url+"/readyz") == http.StatusServiceUnavailable }, delay, time.Millisecond)
	resp := chat(t, dp.url, false) // the load balancer has not noticed yet
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "still serving while draining")
	select {
	case err := <-dp.done:
		require.NoError(t, err)
		dp.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	require.GreaterOrEqual(t, time.Since(stopped), delay, "Serve waits out the drain delay")
}
