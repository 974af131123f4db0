package energy_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/energy"
	"github.com/mindrouter/mindrouter/controlplane/internal/history"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// The scripted power traces of the proof (docs/energy.md, "Proof"): GPU 0 ramps
// linearly, GPU 1 oscillates around 250 W with a 20 s period. Both are sampled
// every second for 100 s, as a node agent at a 1 s interval would.
func gpu0Watts(s float64) float64 { return 100 + 2*s }
func gpu1Watts(s float64) float64 { return 250 + 50*math.Sin(2*math.Pi*s/20) }

// gpu0Energy is ∫ₐᵇ (100 + 2s) ds.
func gpu0Energy(a, b float64) float64 { return 100*(b-a) + b*b - a*a }

func TestProofScriptedTraceAndLoad(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := t.Context()
		node, _, err := st.RegisterNode(ctx, store.NodeSpec{Name: "gpu-node"}, false)
		require.NoError(t, err)
		b0, _, err := st.RegisterBackend(ctx, store.BackendSpec{Name: "vllm-0", URL: "http://10.0.0.1:8000", Engine: "vllm", NodeID: node.ID, GPUIndices: []int{0}}, false)
		require.NoError(t, err)
		b1, _, err := st.RegisterBackend(ctx, store.BackendSpec{Name: "vllm-1", URL: "http://10.0.0.1:8001", Engine: "vllm", NodeID: node.ID, GPUIndices: []int{1}}, false)
		require.NoError(t, err)
		offNode, _, err := st.RegisterBackend(ctx, store.BackendSpec{Name: "remote", URL: "http://10.9.9.9:8000", Engine: "ollama"}, false)
		require.NoError(t, err)

		w, err := history.NewWriter(st, history.WriterOptions{})
		require.NoError(t, err)
		for s := 0; s <= 100; s++ {
			sample := &nodeagentv1.NodeSample{Gpus: []*nodeagentv1.GPUSample{
				{Index: 0, PowerDrawMilliwatts: uint32(math.Round(gpu0Watts(float64(s)) * 1000))},
				{Index: 1, PowerDrawMilliwatts: uint32(math.Round(gpu1Watts(float64(s)) * 1000))},
			}}
			require.True(t, w.OfferPoints(history.NodePoints(node.ID, at(float64(s)), sample)))
		}
		load := []store.RequestUsage{
			// GPU 0: r1 alone over [10, 30]; r2 and r3 together over [40, 60], r3
			// with three times r2's tokens of each kind.
			{RequestID: "r1", BackendID: b0.ID, Username: "alice", Group: "staff", Model: "m0", StartedAt: at(10), FirstTokenAt: at(10), EndedAt: at(30), PromptTokens: 40, CompletionTokens: 200},
			{RequestID: "r2", BackendID: b0.ID, Username: "bob", Group: "students", Model: "m0", StartedAt: at(40), FirstTokenAt: at(40), EndedAt: at(60), PromptTokens: 25, CompletionTokens: 100},
			{RequestID: "r3", BackendID: b0.ID, Username: "alice", Group: "staff", Model: "m0", StartedAt: at(40), FirstTokenAt: at(40), EndedAt: at(60), PromptTokens: 75, CompletionTokens: 300},
			// GPU 1: r4 prefills for 5 s and decodes to the end, alone.
			{RequestID: "r4", BackendID: b1.ID, Username: "bob", Group: "students", Model: "m1", StartedAt: at(0), FirstTokenAt: at(5), EndedAt: at(100), PromptTokens: 500, CompletionTokens: 950},
			// A backend on no node has no measured power.
			{RequestID: "r5", BackendID: offNode.ID, Username: "carol", Group: "staff", Model: "m2", StartedAt: at(0), FirstTokenAt: at(1), EndedAt: at(2), PromptTokens: 5, CompletionTokens: 5},
		}
		for _, u := range load {
			require.True(t, w.OfferRequest(u))
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(runCtx) }()
		cancel()
		require.NoError(t, <-done)

		reg := prometheus.NewRegistry()
		a, err := energy.NewAttributor(st, energy.AttributorOptions{Now: func() time.Time { return at(100).Add(time.Hour) }, Registerer: reg})
		require.NoError(t, err)
		n, err := a.Once(ctx)
		require.NoError(t, err)
		require.Equal(t, len(load), n)
		n, err = a.Once(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "each request is attributed once")

		got, err := st.RequestUsagesEnded(ctx, t0, at(200))
		require.NoError(t, err)
		joules := map[string]float64{}
		var attributed float64
		for _, u := range got {
			require.NotNil(t, u.EnergyJoules, u.RequestID)
			joules[u.RequestID] = *u.EnergyJoules
			attributed += *u.EnergyJoules
		}
		// Hand-computed shares (docs/energy.md): exact on the linear GPU 0.
		assert.InDelta(t, gpu0Energy(10, 30), joules["r1"], 1e-6)
		assert.InDelta(t, gpu0Energy(40, 60)/4, joules["r2"], 1e-6)
		assert.InDelta(t, gpu0Energy(40, 60)*3/4, joules["r3"], 1e-6)
		// r4 holds all of GPU 1's energy: 250 W × 100 s, the sine's whole periods
		// cancelling; the sampled trapezoid must be within 1 %.
		assert.InEpsilon(t, 25000, joules["r4"], 0.01)
		assert.Zero(t, joules["r5"])
		idle := gpu0Energy(0, 10) + gpu0Energy(30, 40) + gpu0Energy(60, 100)
		total := gpu0Energy(0, 100) + 25000
		assert.InEpsilon(t, total, attributed+idle, 0.01, "attributed + idle = the traces' integral")

		// The daily report per user, with 0.30 per kWh and a commercial price of
		// 1 per million prompt and 4 per million generated tokens.
		rows := energy.Report(got, energy.ByUser, energy.Prices{PerKWh: 0.30, PromptPerMillion: 1, CompletionPerMillion: 4})
		require.Len(t, rows, 3)
		alice := rows[0]
		assert.Equal(t, "alice", alice.Key)
		assert.Equal(t, int64(2), alice.Requests)
		aliceJ := gpu0Energy(10, 30) + gpu0Energy(40, 60)*3/4
		assert.InDelta(t, aliceJ, alice.Joules, 1e-6)
		assert.InDelta(t, aliceJ/energy.JoulesPerKWh*0.30, alice.Cost, 1e-12)
		assert.InDelta(t, aliceJ/float64(40+200+75+300), alice.JoulesPerToken, 1e-9)
		assert.InDelta(t, (40+75)/1e6*1+(200+300)/1e6*4, alice.CommercialCost, 1e-12)
	})
}

// TestAttributorRunStops runs the attribution loop until it has attributed a request
// on a backend with no node (0 J), then cancels it.
func TestAttributorRunStops(t *testing.T) {
	t.Parallel()
	st := storetest.SQLite(t)
	b, _, err := st.RegisterBackend(t.Context(), store.BackendSpec{Name: "b", URL: "http://10.1.1.1:1", Engine: "ollama"}, false)
	require.NoError(t, err)
	end := time.Now().Add(-time.Hour)
	require.NoError(t, st.InsertRequestUsages(t.Context(), []store.RequestUsage{{RequestID: "x", BackendID: b.ID, StartedAt: end, FirstTokenAt: end, EndedAt: end, CompletionTokens: 1}}))
	a, err := energy.NewAttributor(st, energy.AttributorOptions{Interval: 10 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	require.Eventually(t, func() bool {
		got, err := st.RequestUsagesEnded(t.Context(), end.Add(-time.Minute), end.Add(time.Minute))
		return err == nil && len(got) == 1 && got[0].EnergyJoules != nil
	}, 30*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("attributor did not stop")
	}
}
