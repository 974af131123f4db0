package sim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare/sim"
)

func report(t *testing.T, seed uint64, d time.Duration) string {
	t.Helper()
	cmps, err := sim.Compare(sim.DefaultCluster(), sim.Scenarios(d), seed)
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, sim.WriteMarkdown(&b, sim.DefaultCluster(), seed, cmps))
	return b.String()
}

func TestSameSeedSameReport(t *testing.T) {
	t.Parallel()
	first := report(t, 7, 20*time.Minute)
	require.Equal(t, first, report(t, 7, 20*time.Minute))
	require.NotEqual(t, first, report(t, 8, 20*time.Minute), "the seed matters")
	require.Contains(t, first, "| paper | WDRR |")
	require.Contains(t, first, "| weights | FIFO |")
}

func scenario(t *testing.T, name string, d time.Duration) sim.Scenario {
	t.Helper()
	for _, s := range sim.Scenarios(d) {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no scenario %q", name)
	return sim.Scenario{}
}

func TestPaperScenarioInteractiveUsersDoNotWaitBehindBatch(t *testing.T) {
	t.Parallel()
	s := scenario(t, "paper", 30*time.Minute)
	wdrr, err := sim.Run(sim.DefaultCluster(), s, sim.WDRR, 1)
	require.NoError(t, err)
	fifo, err := sim.Run(sim.DefaultCluster(), s, sim.FIFO, 1)
	require.NoError(t, err)
	require.Greater(t, wdrr.Utilisation, 0.99, "work-conserving")
	require.Greater(t, fifo.Utilisation, 0.99)
	oracle, err := sim.Run(sim.DefaultCluster(), s, sim.InteractiveFirst, 1)
	require.NoError(t, err)
	require.Less(t, wdrr.Interactive.P95, fifo.Interactive.P50/2)
	require.LessOrEqual(t, wdrr.Interactive.P95, oracle.Interactive.P95*13/10,
		"close to the best any non-preemptive scheduler can do")
	require.Greater(t, wdrr.BatchTokensPerSecond, 0.85*fifo.BatchTokensPerSecond, "the batch user is slowed, not stopped")
}

func TestWeightsScenarioSharesFollowWeights(t *testing.T) {
	t.Parallel()
	s := scenario(t, "weights", time.Hour)
	res, err := sim.Run(sim.DefaultCluster(), s, sim.WDRR, 1)
	require.NoError(t, err)
	var sum int
	for _, u := range res.Users {
		sum += u.Weight
	}
	for _, u := range res.Users {
		want := float64(u.Weight) / float64(sum)
		require.InDelta(t, 1, u.Share/want, 0.05, "%s: share %.4f, want %.4f", u.Name, u.Share, want)
	}
	require.Equal(t, res.Windows, res.JainWindows, "every window is contended")
	require.Greater(t, res.Jain, 0.95)
	require.Greater(t, res.Utilisation, 0.99)
}

func TestLoneUserUsesEverySlot(t *testing.T) {
	t.Parallel()
	res, err := sim.Run(sim.DefaultCluster(), scenario(t, "lone", time.Hour), sim.WDRR, 3)
	require.NoError(t, err)
	require.Greater(t, res.Utilisation, 0.999)
	require.Equal(t, 1.0, res.Users[0].Share)
}

func TestUnknownPolicy(t *testing.T) {
	t.Parallel()
	_, err := sim.Run(sim.DefaultCluster(), scenario(t, "lone", time.Minute), sim.Policy("LIFO"), 1)
	require.ErrorContains(t, err, "unknown policy")
}
