package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// The power trace the simulated DGX H100 plays (docs/energy.md, "Proof"): GPU i
// draws traceBase + traceStep·i + traceAmp·sin(2π(t − epoch)/tracePeriod) W.
const (
	traceBase   = 300.0
	traceStep   = 25.0
	traceAmp    = 150.0
	tracePeriod = 8 * time.Second
	traceGPUs   = 8
)

// traceJoules is GPU i's energy from a to b seconds after the epoch: ∫ₐᵇ traceBase +
// traceStep·i + traceAmp·sin(2πs/tracePeriod) ds, worked out by hand.
func traceJoules(i int, a, b float64) float64 {
	k := tracePeriod.Seconds() / (2 * math.Pi)
	return (traceBase+traceStep*float64(i))*(b-a) - traceAmp*k*(math.Cos(b/k)-math.Cos(a/k))
}

// The documented weights (-energy-prompt-weight, -energy-completion-weight).
const promptWeight, completionWeight = 0.2, 1.0

// energyRequest is a settled request as the control plane recorded it.
type energyRequest struct {
	id                          string
	started, firstToken, ended  time.Time
	promptTokens, completionTok int64
	joules                      sql.NullFloat64
}

// powerSample is a stored raw GPU power sample.
type powerSample struct {
	at    time.Time
	watts float64
}

// TestEnergyProofEndToEnd is the energy proof in one piece (docs/energy.md,
// "Proof"): the node agent, built with the nvmlsim tag, reads go-nvml's fake DGX
// H100 playing a scripted power trace and streams it over gRPC to the control
// plane, which stores it on SQLite; a scripted load runs through the data plane
// on an engine simulator whose backend is mapped to GPUs 0 and 1 of that node;
// the control plane's attribution pass then shares the energy out. The test
// checks that attributed + idle energy (the energy API) equals the trace's
// integral worked out from the trace function, and that each request's
// attributed energy equals the share computed here from the documented rule,
// the request's recorded timings and the stored samples.
func TestEnergyProofEndToEnd(t *testing.T) {
	t.Parallel()
	const model = "sim-energy"
	backendGPUs := []int{0, 1}
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, Models: []enginesim.ModelSpec{{Name: model, ContextLength: 8192}},
		TTFT: 400 * time.Millisecond, InterTokenDelay: 100 * time.Millisecond, CompletionTokens: 1000})
	c := cluster.Start(t, cluster.Options{ControlPlaneArgs: []string{
		// The settle delay must outlast every overlap (r3's end to r2's): 4 s
		// did not on a loaded CI machine, where r2 decoded 5 s past r3 and r3
		// was attributed before r2 was recorded (docs/energy.md, the settle delay).
		"-telemetry-interval", "1s", "-energy-settle-delay", "12s", "-energy-interval", "500ms",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const nodeName, nodeSecret = "energy-node", "energy-node-secret-0123456789abcdef"
	var node struct {
		Node struct {
			ID int64 `json:"id,string"`
		} `json:"node"`
	}
	code, err := c.AdminJSON(ctx, c.RESTURL, http.MethodPost, "/api/admin/nodes/register",
		map[string]any{"name": nodeName, "hostname": "energy-host", "agent_secret": nodeSecret}, &node)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	code, err = c.AdminJSON(ctx, c.RESTURL, http.MethodPost, "/api/admin/backends/register",
		map[string]any{"name": "energy-vllm", "engine": "vllm", "url": simURL, "node_id": node.Node.ID, "gpu_indices": backendGPUs}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)

	begin := time.Now().Add(-time.Second)
	epoch := time.UnixMilli(begin.UnixMilli())
	agent := c.StartSimNodeAgent(nodeName, nodeSecret, epoch, traceBase, traceStep, traceAmp, tracePeriod)

	// Samples are stored and the model is routable before the load starts.
	require.Eventually(t, func() bool {
		return len(gpuPower(ctx, t, c, node.Node.ID, 0, begin, time.Now().Add(time.Minute))) >= 2
	}, 60*time.Second, 200*time.Millisecond, agent.Log())
	client := openaiClient(c, c.AdminKey)
	require.Eventually(t, func() bool {
		models, err := client.Models.List(ctx)
		return err == nil && len(models.Data) == 1
	}, 30*time.Second, 100*time.Millisecond, c.Logs())

	// The scripted load (L = its start): r1 alone; 2.6 s of idle; r2 (a long
	// prompt) and r3 together, r4 joining a second later while both decode.
	// Each asks for a distinct number of tokens, which names it below.
	names := map[int64]string{20: "r1", 30: "r2", 12: "r3", 16: "r4"}
	type step struct {
		after     time.Duration
		maxTokens int64
		prompt    string
	}
	load := []step{
		{0, 20, "tell me about energy"},
		{5 * time.Second, 30, strings.Repeat("a long prompt about power and joules ", 60)},
		{5 * time.Second, 12, strings.Repeat("a medium prompt ", 20)},
		{6 * time.Second, 16, "short"},
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, s := range load {
		wg.Go(func() {
			time.Sleep(time.Until(start.Add(s.after)))
			stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
				Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(s.prompt)},
				MaxTokens: openai.Int(s.maxTokens),
			})
			for stream.Next() {
			}
			assert.NoError(t, stream.Err())
		})
	}
	wg.Wait()

	// The control plane recorded the four requests and attributed them after
	// the settle delay.
	db, err := sql.Open("sqlite", "file:"+c.SQLitePath()+"?mode=ro&_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	var reqs []energyRequest
	require.Eventually(t, func() bool {
		reqs = readRequests(ctx, t, db)
		return len(reqs) == len(load) && !slices.ContainsFunc(reqs, func(r energyRequest) bool { return !r.joules.Valid })
	}, 60*time.Second, 250*time.Millisecond, c.Logs())

	// The range ends 2 s after the last request; wait until a sample after it is
	// stored (samples arrive in order), so the range is complete.
	end := begin
	for _, r := range reqs {
		end = maxT(end, r.ended)
	}
	end = end.Add(2 * time.Second)
	require.Eventually(t, func() bool {
		s := gpuPower(ctx, t, c, node.Node.ID, traceGPUs-1, end, end.Add(time.Minute))
		return len(s) > 0
	}, 30*time.Second, 200*time.Millisecond)

	traces := make([][]powerSample, traceGPUs)
	var traceTotal float64
	for i := range traceGPUs {
		traces[i] = gpuPower(ctx, t, c, node.Node.ID, i, begin, end)
		require.GreaterOrEqual(t, len(traces[i]), 10, "GPU %d", i)
		first, last := traces[i][0].at.Sub(epoch).Seconds(), traces[i][len(traces[i])-1].at.Sub(epoch).Seconds()
		traceTotal += traceJoules(i, first, last)
	}

	// (b) Each request's share, by the documented rule: every sample interval of
	// every GPU of the backend goes to the requests in proportion to
	// 0.2·prompt tokens prefilled in it (evenly over [admitted, first token]) +
	// 1·generated tokens decoded in it (evenly over [first token, end]).
	want := map[string]float64{}
	var wantIdle float64
	for i := range traceGPUs {
		tr := traces[i]
		for k := 1; k < len(tr); k++ {
			a, b := tr[k-1].at, tr[k].at
			e := (tr[k-1].watts + tr[k].watts) / 2 * b.Sub(a).Seconds()
			w := map[string]float64{}
			var sum float64
			if slices.Contains(backendGPUs, i) {
				for _, r := range reqs {
					w[r.id] = promptWeight*float64(r.promptTokens)*overlap(r.started, r.firstToken, a, b) +
						completionWeight*float64(r.completionTok)*overlap(r.firstToken, r.ended, a, b)
					sum += w[r.id]
				}
			}
			if sum == 0 {
				wantIdle += e
				continue
			}
			for id, x := range w {
				want[id] += e * x / sum
			}
		}
	}
	var attributed float64
	var tokens []int64
	for _, r := range reqs {
		name := names[r.completionTok]
		tokens = append(tokens, r.completionTok)
		assert.InEpsilon(t, want[r.id], r.joules.Float64, 0.01, name)
		attributed += r.joules.Float64
		t.Logf("%s: admitted +%.3f s, first token +%.3f s, end +%.3f s, %d prompt / %d generated tokens: computed %.2f J, attributed %.2f J (%+.4f %%)",
			name, r.started.Sub(start).Seconds(), r.firstToken.Sub(start).Seconds(), r.ended.Sub(start).Seconds(),
			r.promptTokens, r.completionTok, want[r.id], r.joules.Float64, 100*(r.joules.Float64-want[r.id])/want[r.id])
	}
	require.ElementsMatch(t, []int64{20, 30, 12, 16}, tokens, "the scripted load, each request with the tokens it asked for")

	// (a) The energy API: attributed + idle equals the trace's integral.
	var energy struct {
		ClusterGPUJoules float64 `json:"cluster_gpu_joules"`
		AttributedJoules float64 `json:"attributed_joules"`
		IdleJoules       float64 `json:"idle_joules"`
	}
	q := url.Values{"start": {begin.UTC().Format(time.RFC3339Nano)}, "end": {end.UTC().Format(time.RFC3339Nano)}}
	code, err = c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/telemetry/energy?"+q.Encode(), nil, &energy)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	assert.InDelta(t, attributed, energy.AttributedJoules, 1e-6*attributed, "the API's attributed energy is the requests'")
	assert.InEpsilon(t, traceTotal, energy.AttributedJoules+energy.IdleJoules, 0.01, "attributed + idle = the trace's integral")
	assert.InEpsilon(t, wantIdle, energy.IdleJoules, 0.01, "idle: the intervals no request processed a token in")
	t.Logf("%d GPUs over %.2f s: trace integral %.2f J; attributed %.2f J + idle %.2f J = %.2f J (%+.4f %%); idle computed %.2f J",
		traceGPUs, traces[0][len(traces[0])-1].at.Sub(traces[0][0].at).Seconds(), traceTotal,
		energy.AttributedJoules, energy.IdleJoules, energy.AttributedJoules+energy.IdleJoules,
		100*(energy.AttributedJoules+energy.IdleJoules-traceTotal)/traceTotal, wantIdle)
}

// overlap is the part of the phase [s, e] inside [a, b): its overlap over the
// phase's length, or 1 for an instant phase that lies in the interval.
func overlap(s, e, a, b time.Time) float64 {
	if !e.After(s) {
		if !s.Before(a) && s.Before(b) {
			return 1
		}
		return 0
	}
	lo, hi := maxT(s, a), minT(e, b)
	if !hi.After(lo) {
		return 0
	}
	return hi.Sub(lo).Seconds() / e.Sub(s).Seconds()
}

func maxT(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func minT(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// readRequests reads the settled requests from the control plane's database (no
// API lists single requests).
func readRequests(ctx context.Context, t *testing.T, db *sql.DB) []energyRequest {
	t.Helper()
	rows, err := db.QueryContext(ctx, `SELECT request_id, started_at, first_token_at, ended_at, prompt_tokens, completion_tokens, energy_joules
		FROM request_usages ORDER BY id`)
	if err != nil {
		t.Logf("read request_usages: %v", err)
		return nil
	}
	defer rows.Close()
	var out []energyRequest
	for rows.Next() {
		var r energyRequest
		require.NoError(t, rows.Scan(&r.id, &r.started, &r.firstToken, &r.ended, &r.promptTokens, &r.completionTok, &r.joules))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// gpuPower reads GPU gpu's raw power samples in [from, to) through the export API.
func gpuPower(ctx context.Context, t *testing.T, c *cluster.Cluster, nodeID int64, gpu int, from, to time.Time) []powerSample {
	t.Helper()
	q := url.Values{"scope": {"gpu"}, "node_id": {fmt.Sprint(nodeID)}, "metric": {"power_watts"}, "format": {"jsonl"},
		"start": {from.UTC().Format(time.RFC3339Nano)}, "end": {to.UTC().Format(time.RFC3339Nano)}}
	var out []powerSample
	adminLines(ctx, t, c, c.RESTURL+"/api/admin/telemetry/export?"+q.Encode(), func(line []byte) {
		var p struct {
			At       time.Time `json:"at"`
			GPUIndex int       `json:"gpu_index"`
			Step     int64     `json:"step_seconds"`
			Mean     float64   `json:"mean"`
		}
		require.NoError(t, json.Unmarshal(line, &p), string(line))
		if p.GPUIndex == gpu && p.Step == 0 {
			out = append(out, powerSample{at: p.At, watts: p.Mean})
		}
	})
	return out
}

// adminLines GETs target with the admin key, requires 200 and calls each with every
// line of the answer (a newline-delimited stream).
func adminLines(ctx context.Context, t *testing.T, c *cluster.Cluster, target string, each func(line []byte)) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+c.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		each(sc.Bytes())
	}
	require.NoError(t, sc.Err())
}
