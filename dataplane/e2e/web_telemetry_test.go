package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// gpuTrace is the scripted reading of GPU g at minute m of the hour: GPU 0
// ramps its utilisation up, GPU 1 holds steady; power follows utilisation.
func gpuTrace(g, m int) *nodeagentv1.GPUSample {
	util := uint32(30)
	if g == 0 {
		util = uint32(m * 100 / 60)
	}
	return &nodeagentv1.GPUSample{Index: uint32(g), Uuid: fmt.Sprintf("GPU-e2e-%d", g), Name: "NVIDIA H100 80GB HBM3",
		UtilizationGpuPercent: util, MemoryTotalBytes: 80 << 30, MemoryUsedBytes: uint64(10+m/2+20*g) << 30,
		TemperatureC: 40 + util/4, PowerDrawMilliwatts: 100_000 + util*5_000, PowerLimitMilliwatts: 700_000}
}

// agentStream reports as a node agent over the control plane's real
// TelemetryService: Hello, Welcome, then samples.
func agentStream(t testing.TB, ctx context.Context, c *cluster.Cluster, node, secret string) nodeagentv1.TelemetryService_StreamClient {
	t.Helper()
	conn, err := grpc.NewClient(c.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	sctx := metadata.AppendToOutgoingContext(ctx, "x-mindrouter-node", node, "authorization", "Bearer "+secret)
	s, err := nodeagentv1.NewTelemetryServiceClient(conn).Stream(sctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&nodeagentv1.StreamRequest{Kind: &nodeagentv1.StreamRequest_Hello{Hello: &nodeagentv1.Hello{
		NodeName: node, AgentVersion: "e2e", Hostname: "telemetry-host"}}}))
	resp, err := s.Recv()
	require.NoError(t, err)
	require.NotNil(t, resp.GetWelcome(), "welcomed")
	go func() { // acks
		for {
			if _, err := s.Recv(); err != nil {
				return
			}
		}
	}()
	return s
}

func sendSample(s nodeagentv1.TelemetryService_StreamClient, at time.Time, minute int) error {
	return s.Send(&nodeagentv1.StreamRequest{Kind: &nodeagentv1.StreamRequest_Sample{Sample: &nodeagentv1.NodeSample{
		SampledAt: timestamppb.New(at), DriverVersion: "550.54.15", Gpus: []*nodeagentv1.GPUSample{gpuTrace(0, minute), gpuTrace(1, minute)},
		HostPower: &nodeagentv1.HostPower{CpuMilliwatts: 95_000, Source: "rapl"}}}})
}

// TestWebTelemetryInBrowser: a node reports an hour of two GPUs' samples over
// the real telemetry stream (backdated one a minute, then live while requests
// run on its backend); in headless Chromium an admin finds the charts of the
// last hour (utilisation, memory, power, temperature per GPU, and the node's
// GPU and CPU power) drawn from that history with their data tables, and the
// energy table with the requests' attributed energy, cost and the commercial
// comparison, which agrees with the REST report; an auditor reads both pages
// with no change control; a student gets 403. axe-core light and dark,
// screenshots; and a screenshot of the overview's Service section.
func TestWebTelemetryInBrowser(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, CompletionTokens: 40,
		Models: []enginesim.ModelSpec{{Name: "sim-energy", ContextLength: 8192}}})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "vllm", URL: simURL}},
		ControlPlaneArgs: []string{"-energy-settle-delay", "1s", "-energy-interval", "1s", "-energy-price-kwh", "0.25",
			"-energy-commercial-prompt-price", "3", "-energy-commercial-output-price", "15"}})
	createUser(t, c, "ada", "admin")
	createUser(t, c, "audrey", "auditor")
	createUser(t, c, "sam", "student")
	const pw = "correct horse battery"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const node, secret = "gpu-node-1", "telemetry-node-secret-0123456789abcdef"
	code, err := c.AdminJSON(ctx, c.RESTURL, http.MethodPost, "/api/admin/nodes/register",
		map[string]any{"name": node, "hostname": "telemetry-host", "agent_secret": secret}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	s := agentStream(t, ctx, c, node, secret)
	now := time.Now()
	for m := 0; m < 60; m++ {
		require.NoError(t, sendSample(s, now.Add(-time.Duration(60-m)*time.Minute), m))
	}
	live := make(chan struct{})
	go func() { // live samples while the requests run, so their energy can be attributed
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-live:
				return
			case at := <-tk.C:
				if sendSample(s, at, 59) != nil {
					return
				}
			}
		}
	}()
	defer close(live)

	// The backend runs on the node's two GPUs.
	var nodes []struct {
		ID       string `json:"id"`
		GPUCount int    `json:"gpu_count"`
	}
	require.Eventually(t, func() bool {
		adminGet(t, c, "/api/admin/nodes", &nodes)
		return len(nodes) == 1 && nodes[0].GPUCount == 2
	}, 20*time.Second, 200*time.Millisecond, "the node's GPU inventory is stored: %+v", nodes)
	nodeID, err := strconv.ParseInt(nodes[0].ID, 10, 64)
	require.NoError(t, err)
	var backends []struct {
		ID string `json:"id"`
	}
	adminGet(t, c, "/api/admin/backends", &backends)
	require.Len(t, backends, 1)
	code, err = c.AdminJSON(ctx, c.RESTURL, http.MethodPatch, "/api/admin/backends/"+backends[0].ID,
		map[string]any{"node_id": nodeID, "gpu_indices": []int{0, 1}, "set_gpu_indices": true}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)

	client := openaiClient(c, c.AdminKey)
	time.Sleep(time.Second) // live power before the first request
	for i := range 3 {
		_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "sim-energy",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("energy question %d", i))}})
		require.NoError(t, err)
	}
	type reportRow struct {
		Key            string  `json:"key"`
		Requests       string  `json:"requests"`
		Joules         float64 `json:"joules"`
		Kwh            float64 `json:"kwh"`
		Cost           float64 `json:"cost"`
		CommercialCost float64 `json:"commercial_cost"`
		Pending        string  `json:"pending"`
	}
	var report struct {
		Rows []reportRow `json:"rows"`
	}
	var last string
	if !assert.Eventually(t, func() bool {
		report.Rows = nil
		code, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/telemetry/energy/report?range=24h&group_by=model", nil, &report)
		last = fmt.Sprintf("%d %v %+v", code, err, report.Rows)
		if err != nil || code != http.StatusOK {
			return false
		}
		return len(report.Rows) == 1 && report.Rows[0].Joules > 0 && (report.Rows[0].Pending == "" || report.Rows[0].Pending == "0")
	}, 60*time.Second, 500*time.Millisecond) {
		t.Fatalf("the requests' energy is never attributed: %s", last)
	}
	row := report.Rows[0]
	assert.Equal(t, "sim-energy", row.Key)
	assert.Equal(t, "3", row.Requests)

	a := newPage(t, c.DataPlaneURL)
	a.signIn("ada", pw, "/admin")
	a.open("/admin/telemetry?range=1h")
	assert.Equal(t, "GPU telemetry history", a.text("h1"))
	assert.Contains(t, a.text("main"), node)
	assert.Equal(t, 5, eval[int](a, `document.querySelectorAll("main svg[role=img]").length`))
	assert.Equal(t, 2, eval[int](a, `document.querySelectorAll("#chart-utilization_percent-h ~ svg g.series path").length`), "a line per GPU")
	assert.Greater(t, eval[int](a, `document.querySelector("#chart-utilization_percent-h ~ svg g.series path").getAttribute("d").split("L").length`), 30,
		"an hour of minute buckets")
	desc := eval[string](a, `document.getElementById("chart-utilization_percent-d").textContent`)
	assert.Contains(t, desc, "GPU 1: latest 30.0, lowest 30.0, highest 30.0.", desc)
	assert.Contains(t, eval[string](a, `document.getElementById("chart-node-power-d").textContent`), "CPU and DRAM: latest 95.0", "RAPL power is the server's second series")
	rows := eval[int](a, `document.querySelectorAll("#chart-power_watts-h ~ details tbody tr").length`)
	assert.GreaterOrEqual(t, rows, 55, "the data table has the buckets")
	a.check("admin-telemetry")

	a.open("/admin/energy?range=24h&by=model")
	cells := eval[[]string](a, `Array.from(document.querySelectorAll("main tbody tr:first-child > *")).map(e => e.textContent)`)
	require.Len(t, cells, 8, "%v", cells)
	assert.Equal(t, "sim-energy", cells[0])
	assert.Equal(t, "3", cells[1])
	kwh, err := strconv.ParseFloat(cells[3], 64)
	require.NoError(t, err)
	assert.InDelta(t, row.Kwh, kwh, 0.00005, "the page shows the report's kWh")
	jpt, err := strconv.ParseFloat(cells[4], 64)
	require.NoError(t, err)
	assert.Greater(t, jpt, 0.0)
	assert.InDelta(t, row.CommercialCost, mustFloat(t, cells[6]), 0.005)
	assert.Contains(t, a.text("main"), "0.2500 per kWh")
	assert.Contains(t, a.text("main"), "3.0000 per million prompt tokens, 15.0000 per million completion tokens")
	a.check("admin-energy")
	a.open("/admin/energy?range=24h&by=user")
	assert.Contains(t, a.text("main tbody"), "3", "per user too")

	// The overview's Service section (the system switch), for the docs.
	a.open("/admin")
	for _, scheme := range []string{"light", "dark"} {
		a.scheme(scheme)
		sctx, scancel := context.WithTimeout(a.ctx, 30*time.Second)
		png, err := chromedp.Run(sctx, chromedp.Screenshot(`section[aria-labelledby="system-h"]`, chromedp.NodeVisible))
		scancel()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(a.shot, "admin-service-"+scheme+".png"), png, 0o644))
	}
	a.scheme("light")

	au := newPage(t, c.DataPlaneURL)
	au.signIn("audrey", pw, "/admin")
	for _, path := range []string{"/admin/telemetry?range=24h", "/admin/energy?by=group"} {
		au.open(path)
		controls := eval[int](au, `document.querySelectorAll("main form[method=post] button:not([disabled]), main form:not([method=get]) button").length`)
		assert.Zero(t, controls, "an auditor finds no enabled change control on %s", path)
		assert.Contains(t, au.text("main"), "Read-only", path)
	}
	au.open("/admin/telemetry?range=1h")
	au.check("auditor-telemetry")

	st := newPage(t, c.DataPlaneURL)
	st.signIn("sam", pw, "/dashboard")
	for _, path := range []string{"/admin/telemetry", "/admin/energy", "/admin/energy/export"} {
		assert.Equal(t, http.StatusForbidden, st.status(path), path)
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err, s)
	if math.IsNaN(v) {
		t.Fatalf("NaN from %q", s)
	}
	return v
}
