package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// haLoad drives the HA topology through HAProxy with the official OpenAI SDK:
// streamed and non-streamed chat completions from several workers, each
// request checked to its end (a stream must reach its finish reason and its
// usage). It counts successes and keeps every failure.
type haLoad struct {
	client openai.Client
	model  string
	ok     atomic.Int64
	mu     sync.Mutex
	errs   []string
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

func startHALoad(t *testing.T, h *cluster.HA, model string, streamers, callers int) *haLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &haLoad{
		// No SDK retries: every failure the load balancer lets through counts.
		client: openai.NewClient(option.WithBaseURL(h.LBURL+"/v1/"), option.WithAPIKey(h.AdminKey), option.WithMaxRetries(0)),
		model:  model, stop: cancel,
	}
	for i := range streamers + callers {
		l.wg.Go(func() {
			for ctx.Err() == nil {
				err := l.one(i < streamers)
				if err == nil {
					l.ok.Add(1)
					continue
				}
				l.mu.Lock()
				l.errs = append(l.errs, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
				l.mu.Unlock()
			}
		})
	}
	t.Cleanup(l.finish)
	return l
}

// one runs one request to its end on a context of its own: stopping the load
// lets requests in flight finish.
func (l *haLoad) one(stream bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	params := openai.ChatCompletionNewParams{Model: l.model, MaxTokens: openai.Int(12),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("tell me a story")}}
	if !stream {
		resp, err := l.client.Chat.Completions.New(ctx, params)
		if err != nil {
			return err
		}
		if len(resp.Choices) == 0 || resp.Choices[0].Message.Content == "" || resp.Usage.CompletionTokens == 0 {
			return fmt.Errorf("incomplete answer: %+v", resp)
		}
		return nil
	}
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	s := l.client.Chat.Completions.NewStreaming(ctx, params)
	var finished, usage bool
	for s.Next() {
		c := s.Current()
		if len(c.Choices) > 0 && c.Choices[0].FinishReason != "" {
			finished = true
		}
		if c.Usage.CompletionTokens > 0 {
			usage = true
		}
	}
	if err := s.Err(); err != nil {
		return err
	}
	if !finished || !usage {
		return fmt.Errorf("stream ended early (finish %v, usage %v)", finished, usage)
	}
	return nil
}

func (l *haLoad) finish() { l.stop(); l.wg.Wait() }

// waitOK waits until n more requests have succeeded.
func (l *haLoad) waitOK(t *testing.T, n int64, h *cluster.HA) {
	t.Helper()
	target := l.ok.Load() + n
	require.Eventually(t, func() bool { return l.ok.Load() >= target }, 90*time.Second, 10*time.Millisecond,
		"load stalled at %d successes (want %d); errors %v\n%s", l.ok.Load(), target, l.failures(), h.Logs())
}

func (l *haLoad) failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

func haSim(t *testing.T) []cluster.Backend {
	model := []enginesim.ModelSpec{{Name: "sim-ha", ContextLength: 4096}}
	_, url := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, Models: model, CompletionTokens: 12, InterTokenDelay: 15 * time.Millisecond})
	return []cluster.Backend{{Name: "sim", Engine: "vllm", URL: url}}
}

// TestLeaderKilledUnderLoadFailsOverWithoutErrors runs the compose topology as
// processes (two control planes with leader election on MariaDB, two data
// planes behind HAProxy with deploy/compose/haproxy.cfg) under a streamed and
// non-streamed load through the official SDK, and kills the leader with
// SIGKILL: the standby leads within 10 s, the data planes find it by
// themselves (they list both), admissions in flight at the kill and those
// arriving before the takeover wait for the new leader, and no client sees an
// error. The streams in flight keep their leases: the new leader adopts them
// from the data planes' heartbeats.
func TestLeaderKilledUnderLoadFailsOverWithoutErrors(t *testing.T) {
	t.Parallel()
	h := cluster.StartHA(t, cluster.HAOptions{
		Backends: haSim(t), DBDSN: mariaDB(t), LeaderLeaseTTL: 2 * time.Second,
		ControlPlaneArgs: []string{"-heartbeat-interval", "250ms", "-session-grace", "10s"},
	})
	load := startHALoad(t, h, "sim-ha", 4, 4)
	load.waitOK(t, 20, h)

	before := load.ok.Load()
	h.KillControlPlane(0)
	killed := time.Now()
	h.WaitLeader(1, 10*time.Second)
	took := time.Since(killed)
	t.Logf("standby leads %v after the leader's SIGKILL (lease TTL 1s); %d requests had succeeded", took.Round(time.Millisecond), before)
	assert.Less(t, took, 10*time.Second)

	// The load goes on through the new leader.
	load.waitOK(t, 40, h)
	load.finish()
	require.Empty(t, load.failures(), "client-visible errors across the failover\n%s", h.Logs())
	t.Logf("%d requests, none failed", load.ok.Load())

	// The old leader comes back as the standby.
	h.StartControlPlane(0)
	require.Eventually(t, func() bool { return cluster.Ready(h.CP[0]) == http.StatusServiceUnavailable }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, http.StatusOK, cluster.Ready(h.CP[1]))
}

// TestRollingRestartOfDataPlanesLosesNoRequest restarts both data planes one
// after the other (SIGTERM, wait for the exit, start again, wait until HAProxy
// sends to it) under a streamed and non-streamed load through HAProxy: each
// data plane goes unready, HAProxy stops sending to it within its drain delay,
// its streams finish, and no client sees an error.
func TestRollingRestartOfDataPlanesLosesNoRequest(t *testing.T) {
	t.Parallel()
	h := cluster.StartHA(t, cluster.HAOptions{Backends: haSim(t), DBDSN: mariaDB(t), DrainDelay: 2 * time.Second})
	load := startHALoad(t, h, "sim-ha", 6, 2)
	load.waitOK(t, 20, h)
	for i := range h.DP {
		stopped := time.Now()
		h.StopDataPlane(i)
		t.Logf("dp%d drained and exited in %v", i+1, time.Since(stopped).Round(time.Millisecond))
		load.waitOK(t, 10, h) // served by the other one meanwhile
		h.StartDataPlane(i)
		h.WaitBalanced(30 * time.Second)
		load.waitOK(t, 10, h)
	}
	load.finish()
	require.Empty(t, load.failures(), "client-visible errors across the rolling restart\n%s", h.Logs())
	t.Logf("%d requests, none failed", load.ok.Load())
}
