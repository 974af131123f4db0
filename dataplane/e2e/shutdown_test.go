package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// TestDataPlaneShutdownWithoutControlPlane stops a data plane (SIGTERM) whose
// control plane was killed (SIGKILL) while two streams ran: the stream that
// ends within -shutdown-timeout finishes, the one that would not is cut, the
// process exits 0 within its shutdown and release-drain timeouts instead of
// waiting for a control plane that never answers, and the releases it could
// not hand over are logged as unsettled (the control plane expires them).
func TestDataPlaneShutdownWithoutControlPlane(t *testing.T) {
	t.Parallel()
	const (
		shutdownTimeout = 3 * time.Second
		drainTimeout    = time.Second
	)
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama, CompletionTokens: 5000, InterTokenDelay: 20 * time.Millisecond})
	c := cluster.Start(t, cluster.Options{
		Backends:      []cluster.Backend{{Name: "sim", Engine: "ollama", URL: simURL}},
		DataPlaneArgs: []string{"-shutdown-timeout", shutdownTimeout.String(), "-release-drain-timeout", drainTimeout.String()},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	type result struct {
		done bool
		err  error
	}
	// 60 tokens take about 1.2 s, well within the shutdown timeout; 5000 take
	// 100 s, far beyond it.
	stream := func(maxTokens int) (<-chan result, <-chan struct{}) {
		res, started := make(chan result, 1), make(chan struct{})
		go func() {
			body := `{"model":"sim-llama","stream":true,"max_tokens":` + strconv.Itoa(maxTokens) + `,"messages":[{"role":"user","content":"go on"}]}`
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.DataPlaneURL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+c.AdminKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				close(started)
				res <- result{err: err}
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Scan() // the first event: the stream runs
			close(started)
			for sc.Scan() {
				if sc.Text() == "data: [DONE]" {
					res <- result{done: true}
					return
				}
			}
			res <- result{err: sc.Err()}
		}()
		return res, started
	}
	short, shortStarted := stream(60)
	long, longStarted := stream(5000)
	<-shortStarted
	<-longStarted

	c.KillControlPlane()
	stopping := time.Now()
	code := c.StopDataPlane()
	took := time.Since(stopping)
	t.Logf("data plane stopped %v after SIGTERM (exit %d)", took.Round(time.Millisecond), code)
	require.Zero(t, code, "a clean exit\n%s", c.Logs())
	// Streams get the shutdown timeout, releases the drain timeout; the rest
	// (the audit spool, the connection) takes moments. Far from the 15 s after
	// which the harness would have killed it.
	require.Less(t, took, shutdownTimeout+drainTimeout+5*time.Second, "stops within its timeouts\n%s", c.Logs())

	r := <-short
	require.NoError(t, r.err)
	require.True(t, r.done, "the stream that fits the shutdown timeout finishes")
	r = <-long
	require.False(t, r.done, "the stream that does not is cut")

	unsettled, stopped := 0, false
	for line := range strings.Lines(c.Logs()) {
		var rec struct {
			Msg      string `json:"msg"`
			Releases int    `json:"releases"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		switch rec.Msg {
		case "shutting down with releases not settled; the control plane will expire their leases":
			unsettled += rec.Releases
		case "data plane stopped":
			stopped = true
		}
	}
	require.Equal(t, 2, unsettled, "both streams' releases are logged as unsettled\n%s", c.Logs())
	require.True(t, stopped, "the data plane reached the end of its shutdown")
}
