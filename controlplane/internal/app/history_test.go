package app

import (
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/health/healthtest"
	"github.com/mindrouter/mindrouter/controlplane/internal/history"
	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// TestSettledRequestReachesTheHistory runs a request through a real control plane
// and finds it, and its backend's request series, in the database after the stop.
func TestSettledRequestReachesTheHistory(t *testing.T) {
	t.Parallel()
	ollama := healthtest.NewOllama(t, "0.9.0", healthtest.Model{Name: "llama3.2:3b", ContextLength: 8192, Capabilities: []string{"completion"}, Loaded: true})
	seed, err := identity.NewKey()
	require.NoError(t, err)
	dir := t.TempDir()
	r := start(t, baseArgs(dir, "-seed-backends", "local=ollama:"+ollama.URL()), map[string]string{"MINDROUTER_CP_ADMIN_API_KEY": seed})
	token := readToken(t, filepath.Join(dir, "cluster-token"))
	require.Eventually(t, func() bool {
		code, body := r.get(t, "/api/admin/backends", seed)
		return code == http.StatusOK && len(body) > 2
	}, 30*time.Second, 20*time.Millisecond)
	before := time.Now().Add(-time.Minute)
	r.serve(t, token, seed, "hist-1", 100, 20)
	require.NoError(t, r.stop(t))

	st, err := store.Open(t.Context(), store.Config{Driver: "sqlite", DSN: store.SQLiteDSN(filepath.Join(dir, "mindrouter.db"))}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer st.Close()
	after := time.Now().Add(time.Minute)
	got, err := st.RequestUsagesEnded(t.Context(), before, after)
	require.NoError(t, err)
	require.Len(t, got, 1, "stderr:\n%s", r.stderr.String())
	require.Equal(t, "hist-1", got[0].RequestID)
	require.Equal(t, "llama3.2:3b", got[0].Model)
	require.Equal(t, "success", got[0].Outcome)
	require.EqualValues(t, 100, got[0].PromptTokens)
	require.EqualValues(t, 20, got[0].CompletionTokens)
	require.NotEmpty(t, got[0].Username)
	pts, err := st.MetricPoints(t.Context(), store.PointQuery{SeriesKey: store.SeriesKey{Scope: store.ScopeBackend, BackendID: got[0].BackendID, Metric: history.BackendCompletionTokens}, From: before, To: after})
	require.NoError(t, err)
	require.Len(t, pts, 1)
	require.InDelta(t, 20, pts[0].Sum, 0)
}
