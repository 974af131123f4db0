package app

import (
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/health/healthtest"
	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// serve admits one request as a data plane would and releases it with usage.
func (r *running) serve(t *testing.T, token, credential, requestID string, prompt, completion int64) {
	t.Helper()
	c, ctx := r.asDataPlane(t, token)
	resp, err := c.Admit(ctx, &controlplanev1.AdmitRequest{
		RequestId: requestID, Credential: credential, Model: "llama3.2:3b", ReplicaId: "test",
		Operation: controlplanev1.Operation_OPERATION_CHAT, PromptTokensEstimate: prompt, Attempt: 1,
	})
	require.NoError(t, err)
	_, err = c.Release(ctx, &controlplanev1.ReleaseRequest{
		LeaseId: resp.GetLease().GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
		Usage: &controlplanev1.Usage{PromptTokens: prompt, CompletionTokens: completion},
	})
	require.NoError(t, err)
}

// storedUsage reads the quotas table of a stopped control plane.
func storedUsage(t *testing.T, dir string) []store.QuotaUsage {
	t.Helper()
	st, err := store.Open(t.Context(), store.Config{Driver: "sqlite", DSN: store.SQLiteDSN(filepath.Join(dir, "mindrouter.db"))}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer st.Close()
	rows, err := st.ListQuotaUsage(t.Context())
	require.NoError(t, err)
	return rows
}

// TestQuotaUsageSurvivesARestart checks that token usage charged at Release is
// written to the quotas table (at the latest when the control plane stops) and
// restored at the next start, so a restart does not hand out a fresh budget.
func TestQuotaUsageSurvivesARestart(t *testing.T) {
	t.Parallel()
	ollama := healthtest.NewOllama(t, "0.9.0", healthtest.Model{Name: "llama3.2:3b", ContextLength: 8192, Capabilities: []string{"completion"}, Loaded: true})
	seed, err := identity.NewKey()
	require.NoError(t, err)
	dir := t.TempDir()
	args := baseArgs(dir, "-seed-backends", "local=ollama:"+ollama.URL())
	vars := map[string]string{"MINDROUTER_CP_ADMIN_API_KEY": seed}

	r := start(t, args, vars)
	token := readToken(t, filepath.Join(dir, "cluster-token"))
	require.Eventually(t, func() bool {
		code, body := r.get(t, "/api/admin/backends", seed)
		return code == http.StatusOK && len(body) > 2
	}, 30*time.Second, 20*time.Millisecond)
	r.serve(t, token, seed, "first", 100, 20)
	require.NoError(t, r.stop(t))

	rows := storedUsage(t, dir)
	require.Len(t, rows, 1)
	require.EqualValues(t, 120, rows[0].TokensUsed)
	require.EqualValues(t, 120, rows[0].LifetimeTokensUsed)
	started := rows[0].PeriodStart

	again := start(t, args, vars)
	again.serve(t, token, seed, "second", 7, 3)
	require.NoError(t, again.stop(t))
	rows = storedUsage(t, dir)
	require.Len(t, rows, 1)
	require.EqualValues(t, 130, rows[0].TokensUsed, "the restored usage plus the new")
	require.EqualValues(t, 130, rows[0].LifetimeTokensUsed)
	require.True(t, rows[0].PeriodStart.Equal(started), "the period goes on")
}
