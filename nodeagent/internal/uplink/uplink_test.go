package uplink_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/mindrouter/mindrouter/nodeagent/internal/uplink"
)

const (
	testSecret = "s3cr3t-node-token"
	waitFor    = 5 * time.Second
	tick       = 2 * time.Millisecond
)

func baseConfig() uplink.Config {
	return uplink.Config{
		NodeName:     "gpu-01",
		Secret:       testSecret,
		AgentVersion: "1.2.3",
		Hostname:     "gpu-01.lab",
		Interval:     time.Hour, // only a Welcome's interval makes samples flow fast
		MinInterval:  time.Millisecond,
		BackoffBase:  5 * time.Millisecond,
		BackoffMax:   20 * time.Millisecond,
	}
}

// start runs u until the test ends or the returned stop is called; stop asserts that
// Run returned nil promptly.
func start(t *testing.T, u *uplink.Uplink) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(waitFor):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func newUplink(t *testing.T, conn grpc.ClientConnInterface, src uplink.Source, cfg uplink.Config) *uplink.Uplink {
	t.Helper()
	u, err := uplink.New(conn, src, cfg)
	require.NoError(t, err)
	return u
}

func TestStreamsHelloAndSamplesWithMetadata(t *testing.T) {
	t.Parallel()
	cp := &fakeCP{interval: 10 * time.Millisecond}
	addr, _ := serve(t, "127.0.0.1:0", cp)
	reg := prometheus.NewRegistry()
	cfg := baseConfig()
	cfg.Registerer = reg
	u := newUplink(t, dial(t, addr), &seqSource{}, cfg)
	stop := start(t, u)

	require.Eventually(t, func() bool { return cp.sampleCount() >= 3 }, waitFor, tick)
	require.Eventually(t, func() bool { return u.Stats().Acked >= 3 }, waitFor, tick)
	stop()

	mds, hellos, samples := cp.snapshot()
	require.Len(t, hellos, 1)
	assert.Equal(t, "gpu-01", hellos[0].GetNodeName())
	assert.Equal(t, "1.2.3", hellos[0].GetAgentVersion())
	assert.Equal(t, "gpu-01.lab", hellos[0].GetHostname())
	assert.Equal(t, []string{"gpu-01"}, mds[0].Get(uplink.NodeHeader))
	assert.Equal(t, []string{"Bearer " + testSecret}, mds[0].Get(uplink.AuthHeader))
	for i := 1; i < len(samples); i++ {
		assert.Greater(t, seqOf(t, samples[i]), seqOf(t, samples[i-1]), "samples arrive in order")
	}

	st := u.Stats()
	assert.Equal(t, 10*time.Millisecond, st.Interval, "the Welcome's interval replaces the local one")
	assert.Equal(t, uint64(1), st.Connects)
	assert.False(t, st.Connected)
	assert.GreaterOrEqual(t, st.Sent, uint64(len(samples)))

	families, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	assert.True(t, names["mindrouter_agent_samples_sent_total"])
	assert.True(t, names["mindrouter_agent_connected"])
}

func TestWelcomeInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		welcome time.Duration
		local   time.Duration
		floor   time.Duration
		want    time.Duration
	}{
		{name: "welcome overrides", welcome: 20 * time.Millisecond, local: time.Hour, floor: time.Millisecond, want: 20 * time.Millisecond},
		{name: "unset keeps local", welcome: 0, local: 3 * time.Minute, floor: time.Millisecond, want: 3 * time.Minute},
		{name: "floored", welcome: time.Millisecond, local: time.Hour, floor: 50 * time.Millisecond, want: 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cp := &fakeCP{interval: tt.welcome}
			addr, _ := serve(t, "127.0.0.1:0", cp)
			cfg := baseConfig()
			cfg.Interval, cfg.MinInterval = tt.local, tt.floor
			u := newUplink(t, dial(t, addr), &seqSource{}, cfg)
			start(t, u)
			require.Eventually(t, func() bool { return u.Stats().Connected }, waitFor, tick)
			assert.Equal(t, tt.want, u.Stats().Interval)
			// A fresh stream is sent a sample at once, whatever the interval.
			require.Eventually(t, func() bool { return cp.sampleCount() >= 1 }, waitFor, tick)
		})
	}
}

func TestReconnectsAfterServerRestart(t *testing.T) {
	t.Parallel()
	first := &fakeCP{interval: 5 * time.Millisecond}
	addr, stopFirst := serve(t, "127.0.0.1:0", first)
	u := newUplink(t, dial(t, addr), &seqSource{}, baseConfig())
	start(t, u)
	require.Eventually(t, func() bool { return first.sampleCount() >= 2 }, waitFor, tick)

	stopFirst()
	require.Eventually(t, func() bool { return !u.Stats().Connected && u.Stats().Failures >= 1 }, waitFor, tick)

	second := &fakeCP{interval: 5 * time.Millisecond}
	serve(t, addr, second)
	require.Eventually(t, func() bool { return second.sampleCount() >= 2 }, waitFor, tick)

	_, hellos, samples := second.snapshot()
	require.Len(t, hellos, 1, "the new server gets a fresh hello")
	_, _, old := first.snapshot()
	assert.Greater(t, seqOf(t, samples[0]), seqOf(t, old[len(old)-1]), "sampling went on across the outage")
	assert.Equal(t, uint64(2), u.Stats().Connects)
}

func TestUnauthenticatedKeepsRetryingWithoutLoggingSecret(t *testing.T) {
	t.Parallel()
	cp := &fakeCP{reject: true}
	addr, _ := serve(t, "127.0.0.1:0", cp)
	logs := &syncBuffer{}
	cfg := baseConfig()
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	u := newUplink(t, dial(t, addr), &seqSource{}, cfg)
	began := time.Now()
	stop := start(t, u)

	require.Eventually(t, func() bool { return cp.streams.Load() >= 4 }, waitFor, tick)
	stop()
	// Three backoffs of at least base/2, 2·base/2, 4·base/2 separate four attempts.
	assert.GreaterOrEqual(t, time.Since(began), 3*cfg.BackoffBase)

	st := u.Stats()
	assert.Zero(t, st.Connects)
	assert.Zero(t, st.Sent)
	out := logs.String()
	assert.Contains(t, out, "Unauthenticated")
	assert.Contains(t, out, "invalid node credentials")
	assert.NotContains(t, out, testSecret)
	assert.GreaterOrEqual(t, strings.Count(out, "telemetry stream down"), 3, "each refusal is logged")
}

func TestShortLivedStreamsKeepBackingOff(t *testing.T) {
	t.Parallel()
	cp := &fakeCP{interval: time.Hour, dropAfterWelcome: true}
	addr, _ := serve(t, "127.0.0.1:0", cp)
	cfg := baseConfig()
	cfg.BackoffBase, cfg.BackoffMax = 4*time.Millisecond, time.Second
	u := newUplink(t, dial(t, addr), &seqSource{}, cfg)
	began := time.Now()
	stop := start(t, u)
	require.Eventually(t, func() bool { return cp.streams.Load() >= 5 }, waitFor, tick)
	stop()
	// Escalating: at least 2+4+8+16 ms between five welcomed-then-dropped streams (a
	// reset after every Welcome would allow 4×2 ms).
	assert.GreaterOrEqual(t, time.Since(began), 30*time.Millisecond)
	assert.GreaterOrEqual(t, u.Stats().Connects, uint64(4), "each stream was welcomed")
}

func TestKeepsOnlyLatestSampleWhileAway(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	cfg := baseConfig()
	cfg.Interval = 2 * time.Millisecond
	src := &seqSource{}
	u := newUplink(t, dial(t, addr), src, cfg)
	start(t, u)

	require.Eventually(t, func() bool { return u.Stats().Collected >= 10 }, waitFor, tick)
	st := u.Stats()
	assert.Zero(t, st.Sent)
	assert.GreaterOrEqual(t, st.Dropped, st.Collected-1, "all but the newest unsent sample are dropped")

	cp := &fakeCP{interval: time.Hour}
	serve(t, addr, cp)
	require.Eventually(t, func() bool { return cp.sampleCount() >= 1 }, waitFor, tick)
	_, _, samples := cp.snapshot()
	assert.GreaterOrEqual(t, seqOf(t, samples[0]), int64(st.Collected), "the first sample sent is the newest")
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	cp := &fakeCP{interval: time.Hour}
	addr, _ := serve(t, "127.0.0.1:0", cp)
	u := newUplink(t, dial(t, addr), &seqSource{}, baseConfig())
	start(t, u)
	require.Eventually(t, func() bool { return u.Stats().Connected }, waitFor, tick)
	require.Error(t, u.Run(t.Context()))
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	conn := dial(t, freeAddr(t))
	_, err := uplink.New(conn, &seqSource{}, uplink.Config{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "node name is required")
	assert.Contains(t, err.Error(), "node secret is required")
	_, err = uplink.New(nil, nil, baseConfig())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connection is required")
	assert.Contains(t, err.Error(), "sample source is required")
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, ceiling := 500*time.Millisecond, 30*time.Second
	tests := []struct {
		n        int
		low, top time.Duration
	}{
		{0, 250 * time.Millisecond, 500 * time.Millisecond},
		{1, 500 * time.Millisecond, time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{6, 15 * time.Second, 30 * time.Second},
		{7, 15 * time.Second, 30 * time.Second},
		{40, 15 * time.Second, 30 * time.Second},
		{1000, 15 * time.Second, 30 * time.Second},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.low, uplink.Backoff(tt.n, base, ceiling, func() float64 { return 0 }), "n=%d low", tt.n)
		assert.Equal(t, tt.top, uplink.Backoff(tt.n, base, ceiling, func() float64 { return 1 }), "n=%d top", tt.n)
		mid := uplink.Backoff(tt.n, base, ceiling, func() float64 { return 0.5 })
		assert.True(t, mid > tt.low && mid < tt.top, "n=%d jittered %v", tt.n, mid)
	}
}
