package e2e

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// TestSystemOfflineAnswersEachDialect takes the whole service offline through
// the admin API: every client dialect, streaming or not, is refused with 503
// (Anthropic: 529, its status for every unavailability), Retry-After and the administrators' message in its own error envelope; the
// public status page shows the message; the control plane restarts still
// offline (the switch is stored); brought back online, every dialect is served
// again.
func TestSystemOfflineAnswersEachDialect(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, CompletionTokens: 5,
		Models: []enginesim.ModelSpec{{Name: "maint", ContextLength: 4096}}})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "maint", Engine: "vllm", URL: simURL}}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	served := func(t *testing.T) {
		t.Helper()
		for _, d := range dialects {
			for _, stream := range []bool{false, true} {
				require.EventuallyWithT(t, func(ct *assert.CollectT) {
					resp, err := d.request(ctx, c, "maint", stream)
					require.NoError(ct, err)
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					assert.Equal(ct, http.StatusOK, resp.StatusCode, "%s stream=%v: %s", d.name, stream, raw)
				}, 30*time.Second, 200*time.Millisecond)
			}
		}
	}
	switchTo := func(t *testing.T, body map[string]any) {
		t.Helper()
		code, err := c.AdminJSON(ctx, c.RESTURL, http.MethodPost, "/api/admin/system", body, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
	}
	const message = "Driver upgrade until 14:00 UTC"
	refused := func(t *testing.T) {
		t.Helper()
		for _, d := range dialects {
			for _, stream := range []bool{false, true} {
				resp, err := d.request(ctx, c, "maint", stream)
				require.NoError(t, err)
				raw, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				// Anthropic's dialect answers every unavailability with 529 overloaded_error.
				want := map[string]int{"anthropic": 529}[d.name]
				if want == 0 {
					want = http.StatusServiceUnavailable
				}
				assert.Equal(t, want, resp.StatusCode, "%s stream=%v: %s", d.name, stream, raw)
				assert.Equal(t, "60", resp.Header.Get("Retry-After"), d.name)
				assert.True(t, d.errorBody(raw), "a %s error envelope: %s", d.name, raw)
				assert.Contains(t, string(raw), message, d.name)
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.DataPlaneURL+"/", nil)
		require.NoError(t, err)
		req.Header.Set("Accept", "text/html")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Contains(t, string(page), "The service is offline for maintenance: "+message)
	}

	served(t)
	switchTo(t, map[string]any{"online": false, "message": message})
	refused(t)

	c.StopControlPlane()
	c.StartControlPlane()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		resp, err := dialects[0].request(ctx, c, "maint", false)
		require.NoError(ct, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Contains(ct, string(raw), message, "still offline after a restart")
	}, 30*time.Second, 200*time.Millisecond)
	refused(t)

	switchTo(t, map[string]any{"online": true})
	served(t)
}
