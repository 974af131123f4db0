package alert_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/alert"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// fakeClock is advanced by the test.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func ptr[T any](v T) *T                      { return &v }
func gpu(node string, idx, temp uint32) *adminv1.GPU {
	return &adminv1.GPU{NodeName: node, Sample: &nodeagentv1.GPUSample{Index: idx, TemperatureC: temp}}
}

// recorder is a Notifier that keeps the events.
type recorder struct {
	mu     sync.Mutex
	events []alert.Event
}

func (r *recorder) Notify(ev alert.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func TestConditions(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	th := alert.Thresholds{NodeSilentAfter: 3 * time.Minute, GPUTemperatureC: 85, SpoolFillRatio: 0.8}
	tests := []struct {
		name string
		snap alert.Snapshot
		want []string // kind subject
	}{
		{"healthy fleet", alert.Snapshot{
			Backends: []registry.Backend{{Name: "a", Status: registry.StatusHealthy, Circuit: registry.CircuitClosed}},
			Nodes:    []store.Node{{Name: "n1", Status: store.NodeOnline, LastSeen: ptr(now.Add(-time.Minute))}},
			GPUs:     []*adminv1.GPU{gpu("n1", 0, 84)},
			Spools:   []admission.SpoolFill{{Replica: "dp1", Bytes: 79, MaxBytes: 100}, {Replica: "dp2", Bytes: 1 << 30}},
		}, nil},
		{"unhealthy backend with its circuit open", alert.Snapshot{
			Backends: []registry.Backend{{Name: "a", Status: registry.StatusUnhealthy, Circuit: registry.CircuitOpen}},
		}, []string{"backend_unhealthy backend/a", "circuit_open backend/a"}},
		{"a disabled backend's open circuit is not news", alert.Snapshot{
			Backends: []registry.Backend{{Name: "a", Status: registry.StatusDisabled, Circuit: registry.CircuitOpen}},
		}, nil},
		{"offline and silent nodes; a node without agent is neither", alert.Snapshot{
			Nodes: []store.Node{
				{Name: "off", Status: store.NodeOffline, LastSeen: ptr(now.Add(-time.Hour))},
				{Name: "quiet", Status: store.NodeOnline, LastSeen: ptr(now.Add(-3 * time.Minute))},
				{Name: "noagent", Status: store.NodeUnknown},
			},
		}, []string{"node_offline node/off", "node_silent node/quiet"}},
		{"hot GPU at the threshold, full spool", alert.Snapshot{
			GPUs:   []*adminv1.GPU{gpu("n1", 1, 85), gpu("n1", 0, 40)},
			Spools: []admission.SpoolFill{{Replica: "dp1", Bytes: 80, MaxBytes: 100}},
		}, []string{"audit_spool_filling replica/dp1", "gpu_temperature gpu/n1/1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range alert.Conditions(tt.snap, now, th) {
				got = append(got, c.Kind+" "+c.Subject)
				assert.NotEmpty(t, c.Message)
				assert.Contains(t, []string{alert.Warning, alert.Critical}, c.Severity)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestEvaluatorRaisesKeepsAndClears drives the evaluator with a fake clock over a
// real SQLite store: one raise, refreshed last_seen without a second message, one
// clear, a recurrence as a new alert, and a new evaluator (a new leader) taking
// over the active alerts without raising them again.
func TestEvaluatorRaisesKeepsAndClears(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	clock := &fakeClock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	snap := alert.Snapshot{}
	set := func(s alert.Snapshot) { mu.Lock(); snap = s; mu.Unlock() }
	source := func(context.Context) (alert.Snapshot, error) { mu.Lock(); defer mu.Unlock(); return snap, nil }
	rec := &recorder{}
	reg := prometheus.NewPedanticRegistry()
	ev := alert.NewEvaluator(st, source, alert.Options{Now: clock.now, Notifier: rec, Registerer: reg})

	require.NoError(t, ev.Evaluate(ctx))
	require.Empty(t, rec.events)

	down := alert.Snapshot{Backends: []registry.Backend{{Name: "gpu-1", URL: "http://x", Status: registry.StatusUnhealthy, ConsecutiveFailures: 3}}}
	set(down)
	require.NoError(t, ev.Evaluate(ctx))
	raisedAt := clock.t
	for range 3 {
		clock.advance(15 * time.Second)
		require.NoError(t, ev.Evaluate(ctx))
	}
	require.Len(t, rec.events, 1, "one message while the condition persists")
	assert.False(t, rec.events[0].Cleared)
	assert.Equal(t, alert.KindBackendUnhealthy, rec.events[0].Alert.Kind)
	assert.InDelta(t, 1, metricValue(t, reg, "mindrouter_alerts_active", alert.KindBackendUnhealthy), 0)

	active, err := st.ListAlerts(ctx, store.AlertFilter{ActiveOnly: true})
	require.NoError(t, err)
	require.Len(t, active, 1)
	assert.Equal(t, "backend/gpu-1", active[0].Subject)
	assert.True(t, active[0].FirstSeen.Equal(raisedAt))
	assert.True(t, active[0].LastSeen.Equal(clock.t), "last_seen follows the evaluations")

	// A new leader's evaluator adopts the active alert: no second raise.
	rec2 := &recorder{}
	ev2 := alert.NewEvaluator(st, source, alert.Options{Now: clock.now, Notifier: rec2})
	clock.advance(15 * time.Second)
	require.NoError(t, ev2.Evaluate(ctx))
	require.Empty(t, rec2.events)

	set(alert.Snapshot{})
	clock.advance(15 * time.Second)
	require.NoError(t, ev2.Evaluate(ctx))
	require.Len(t, rec2.events, 1)
	assert.True(t, rec2.events[0].Cleared)
	require.NotNil(t, rec2.events[0].Alert.ClearedAt)
	assert.True(t, rec2.events[0].Alert.ClearedAt.Equal(clock.t))
	clock.advance(15 * time.Second)
	require.NoError(t, ev2.Evaluate(ctx))
	require.Len(t, rec2.events, 1, "no repeat once cleared")

	// A recurrence is a new alert.
	set(down)
	require.NoError(t, ev2.Evaluate(ctx))
	all, err := st.ListAlerts(ctx, store.AlertFilter{})
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Nil(t, all[0].ClearedAt)
	assert.NotNil(t, all[1].ClearedAt)
}

// metricValue reads one labelled series of a gathered gauge or counter.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == label {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%q}", name, label)
	return 0
}
