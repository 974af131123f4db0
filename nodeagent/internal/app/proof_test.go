package app_test

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/nodeagent/internal/app"
	"github.com/mindrouter/mindrouter/nodeagent/internal/nvmltest"
)

// scriptedWatts is the power trace GPU i plays, s seconds after the script starts:
// 200 W + 20·i W with a ±100 W swing of period 16 s (slow enough that 1 s trapezoids
// stay well inside 1 %: their error is at most h²/12·|f′(b) − f′(a)| ≈ 6.5 J).
func scriptedWatts(i int, s float64) float64 {
	return 200 + 20*float64(i) + 100*math.Sin(2*math.Pi*s/16)
}

// scriptedEnergy is ∫ₐᵇ scriptedWatts(i, s) ds.
func scriptedEnergy(i int, a, b float64) float64 {
	k := 16 / (2 * math.Pi)
	return (200+20*float64(i))*(b-a) - 100*k*(math.Cos(b/k)-math.Cos(a/k))
}

// TestAgentReportsTheScriptedPowerTrace is the agent's half of the energy proof
// (docs/energy.md): a go-nvml fake DGX H100 plays a scripted power trace, the real
// agent samples it at the 1 s interval the control plane asks for, and the
// trapezoid integral of what arrives equals the trace's integral within 1 %.
func TestAgentReportsTheScriptedPowerTrace(t *testing.T) {
	t.Parallel()
	ts, addr := serve(t)
	start := time.Now()
	srv := nvmltest.Instrument(dgxh100.New(), nvmltest.DefaultReadings)
	for i, d := range srv.Devices {
		dev := d.(*server.Device)
		dev.GetPowerUsageFunc = func() (uint32, nvml.Return) {
			return uint32(math.Round(scriptedWatts(i, time.Since(start).Seconds()) * 1000)), nvml.SUCCESS
		}
	}
	rapl := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(rapl, "intel-rapl:0"), 0o755))
	for name, v := range map[string]string{"name": "package-0", "energy_uj": "1000", "max_energy_range_uj": "262143328850"} {
		require.NoError(t, os.WriteFile(filepath.Join(rapl, "intel-rapl:0", name), []byte(v+"\n"), 0o644))
	}
	stop := runAgent(t, []string{"-control-plane", addr, "-node-name", "dgx-01", "-secret-file", secretFile(t), "-powercap-root", rapl},
		io.Discard, app.WithNVML(srv), app.WithGetenv(noEnv))
	require.Eventually(t, func() bool {
		_, samples := ts.received()
		return len(samples) >= 7
	}, 60*time.Second, 20*time.Millisecond)
	stop()

	_, samples := ts.received()
	first := samples[0].GetSampledAt().AsTime().Sub(start).Seconds()
	last := samples[len(samples)-1].GetSampledAt().AsTime().Sub(start).Seconds()
	require.Greater(t, last-first, 5.0, "at least five seconds of trace")
	for i := range 8 {
		var measured float64
		for k := 1; k < len(samples); k++ {
			a, b := samples[k-1], samples[k]
			dt := b.GetSampledAt().AsTime().Sub(a.GetSampledAt().AsTime()).Seconds()
			measured += float64(a.GetGpus()[i].GetPowerDrawMilliwatts()+b.GetGpus()[i].GetPowerDrawMilliwatts()) / 2000 * dt
		}
		want := scriptedEnergy(i, first, last)
		assert.InEpsilon(t, want, measured, 0.01, "GPU %d: trace %.1f J, agent's samples %.1f J", i, want, measured)
		t.Logf("GPU %d over %.2f s: trace %.2f J, agent's samples %.2f J (%+.3f %%)", i, last-first, want, measured, 100*(measured-want)/want)
	}
	// The RAPL counter did not move: from the second sample on the host reports
	// its package at 0 W, a separate series from the GPUs'.
	hp := samples[len(samples)-1].GetHostPower()
	require.NotNil(t, hp)
	assert.Equal(t, "rapl", hp.GetSource())
	require.Len(t, hp.GetDomains(), 1)
	assert.Equal(t, "package-0", hp.GetDomains()[0].GetName())
}
