package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/app"
	"github.com/mindrouter/mindrouter/dataplane/internal/config"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient/cpclienttest"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
)

type running struct {
	url  string
	stop context.CancelFunc
	done chan error
}

func start(t *testing.T, cpAddr string, mutate func(*config.Config)) *running {
	t.Helper()
	cfg := config.NewDefault()
	cfg.ControlPlaneAddr = cpAddr
	cfg.ClusterToken = "tok"
	cfg.ReplicaID = "dp-test"
	cfg.Listen = "127.0.0.1:0"
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	a, err := app.New(cfg, slog.New(slog.DiscardHandler), false)
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	ln, err := net.Listen("tcp", cfg.Listen)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{url: "http://" + ln.Addr().String(), stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Logf("serve: %v", err)
		}
	})
	return r
}

func (r *running) shutdown(t *testing.T) {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		require.NoError(t, err)
		r.done <- nil // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func chat(t *testing.T, url string, stream bool) *http.Response {
	t.Helper()
	body := `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]`
	if stream {
		body += `,"stream":true`
	}
	req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body+"}"))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer mr2_key")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

func simBackend(t *testing.T, cfg enginesim.Config) cpclienttest.Backend {
	t.Helper()
	cfg.Engine = enginesim.EngineVLLM
	hs := httptest.NewServer(enginesim.New(cfg).Handler())
	t.Cleanup(hs.Close)
	return cpclienttest.Backend{ID: 1, Name: "sim", URL: hs.URL, Engine: relay.EngineVLLM, Model: "sim-llama", Simulated: true}
}

func TestServeRoundTrip(t *testing.T) {
	t.Parallel()
	fake := cpclienttest.Start(t)
	fake.Token = "tok"
	fake.SetBackends(simBackend(t, enginesim.Config{CompletionTokens: 4}))
	dp := start(t, fake.Addr(), nil)
	require.Eventually(t, func() bool { return status(t, dp.url+"/readyz") == http.StatusOK }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "dp-test", fake.Hellos()[0].GetReplicaId())

	resp := chat(t, dp.url, false)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.Equal(t, "true", resp.Header.Get("X-Mindrouter-Simulated"))
	require.Equal(t, relay.OutcomeSuccess, fake.WaitReleases(t, 1)[0].Outcome)
	require.Contains(t, metrics(t, dp.url), `mindrouter_dp_attempts_total{outcome="success"} 1`)
	dp.shutdown(t)
}

func metrics(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestShutdownLetsStreamsFinish: a stream in flight at shutdown completes and
// is released before Serve returns.
func TestShutdownLetsStreamsFinish(t *testing.T) {
	t.Parallel()
	fake := cpclienttest.Start(t)
	fake.SetBackends(simBackend(t, enginesim.Config{CompletionTokens: 20, InterTokenDelay: 20 * time.Millisecond}))
	dp := start(t, fake.Addr(), nil)
	resp := chat(t, dp.url, true)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	buf := make([]byte, 1)
	_, err := resp.Body.Read(buf) // the stream has started
	require.NoError(t, err)
	go dp.stop()
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(rest), "data: [DONE]\n\n"))
	require.NoError(t, <-dp.done)
	dp.done <- nil
	rel := fake.Releases()
	require.Len(t, rel, 1, "released before Serve returned")
	require.Equal(t, relay.OutcomeSuccess, rel[0].Outcome)
}

// TestShutdownDeadlineCutsStreams: streams still running at the deadline are
// cut and released as cancelled, before Serve returns.
func TestShutdownDeadlineCutsStreams(t *testing.T) {
	t.Parallel()
	fake := cpclienttest.Start(t)
	fake.SetBackends(simBackend(t, enginesim.Config{CompletionTokens: 10000, InterTokenDelay: 10 * time.Millisecond}))
	dp := start(t, fake.Addr(), func(c *config.Config) { c.ShutdownTimeout = 200 * time.Millisecond })
	resp := chat(t, dp.url, true)
	defer resp.Body.Close()
	buf := make([]byte, 1)
	_, err := resp.Body.Read(buf)
	require.NoError(t, err)
	dp.shutdown(t)
	rel := fake.Releases()
	require.Len(t, rel, 1)
	require.Equal(t, relay.OutcomeClientCancelled, rel[0].Outcome)
}

// TestControlPlaneDownAndBack: the data plane starts without its control
// plane, answers 503 meanwhile, and serves once the control plane is back.
func TestControlPlaneDownAndBack(t *testing.T) {
	t.Parallel()
	fake := cpclienttest.Start(t)
	fake.SetBackends(simBackend(t, enginesim.Config{CompletionTokens: 2}))
	fake.Stop()
	dp := start(t, fake.Addr(), nil)
	require.Equal(t, http.StatusOK, status(t, dp.url+"/healthz"))
	require.Equal(t, http.StatusServiceUnavailable, status(t, dp.url+"/readyz"))
	resp := chat(t, dp.url, false)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))

	fake.Restart(t)
	require.Eventually(t, func() bool { return status(t, dp.url+"/readyz") == http.StatusOK }, 20*time.Second, 50*time.Millisecond)
	resp = chat(t, dp.url, false)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestRun(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	require.NoError(t, app.Run(context.Background(), []string{"-h"}, &out, io.Discard))
	require.Contains(t, out.String(), "-controlplane-addr")
	err := app.Run(context.Background(), []string{"-listen", "bad", "-cluster-token", "t"}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "--listen")
}

// TestReplyDoesNotWaitForRelease: with the control plane's Release stuck, whole
// and streamed answers still reach the client complete; each lease is then
// released exactly once, with its usage, when the control plane answers.
func TestReplyDoesNotWaitForRelease(t *testing.T) {
	t.Parallel()
	fake := cpclienttest.Start(t)
	fake.SetBackends(simBackend(t, enginesim.Config{CompletionTokens: 4}))
	dp := start(t, fake.Addr(), nil)
	require.Eventually(t, func() bool { return status(t, dp.url+"/readyz") == http.StatusOK }, 10*time.Second, 20*time.Millisecond)
	unblock := fake.HoldReleases()
	defer unblock()

	for _, stream := range []bool{false, true} {
		resp := chat(t, dp.url, stream)
		b, err := io.ReadAll(resp.Body) // to the end of the body: the reply is complete
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		if stream {
			require.True(t, strings.HasSuffix(string(b), "data: [DONE]\n\n"), string(b))
		} else {
			require.Contains(t, string(b), `"completion_tokens":4`)
		}
		// The first release is held at the control plane; the second queues behind
		// it on the session stream. Either way the reply above was already complete.
		fake.WaitFor(t, 0, "a release waiting at the control plane", func() bool { return fake.HeldReleases() == 1 })
	}
	require.Empty(t, fake.Releases())

	unblock()
	rel := fake.WaitReleases(t, 2)
	for _, r := range rel {
		require.Equal(t, relay.OutcomeSuccess, r.Outcome)
		require.Equal(t, int64(4), r.Usage.Completion)
	}
	fake.WaitFor(t, 0, "every lease released", func() bool { return len(fake.Unreleased()) == 0 })
	dp.shutdown(t)
	require.Len(t, fake.Releases(), 2, "one release per admit")
}

// TestAuditOff: a data plane with -audit=off answers requests and records
// nothing: no audit spool is created and no audit metric exists, where the
// default data plane has both.
func TestAuditOff(t *testing.T) {
	t.Parallel()
	fake := cpclienttest.Start(t)
	fake.Token = "tok"
	fake.SetBackends(simBackend(t, enginesim.Config{CompletionTokens: 4}))
	for _, on := range []bool{true, false} {
		spoolDir := filepath.Join(t.TempDir(), "spool")
		dp := start(t, fake.Addr(), func(c *config.Config) { c.Audit, c.AuditSpoolDir = on, spoolDir })
		require.Eventually(t, func() bool { return status(t, dp.url+"/readyz") == http.StatusOK }, 10*time.Second, 20*time.Millisecond)
		resp := chat(t, dp.url, false)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		_, err := os.Stat(spoolDir)
		require.Equal(t, on, err == nil, "audit=%t: spool directory", on)
		require.Equal(t, on, strings.Contains(metrics(t, dp.url), "mindrouter_dp_audit_records_"), "audit=%t: audit metrics", on)
		dp.shutdown(t)
	}
}
