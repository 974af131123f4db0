package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// Telemetry is the telemetry history and the energy report as the console
// needs them (the control plane's TelemetryHistoryService; read-only, for
// admins and auditors).
type Telemetry interface {
	History(ctx context.Context, c cpclient.Caller, q cpclient.HistoryQuery) ([]cpclient.HistoryPoint, error)
	EnergyReport(ctx context.Context, c cpclient.Caller, rng, groupBy string) (cpclient.EnergyReport, error)
}

// telemetryRange is one choice of the range selector: the API's range and
// the resolution that gives a readable chart (60 to 168 buckets).
type telemetryRange struct {
	Range, Resolution, Label string
	Step                     time.Duration
}

var telemetryRanges = []telemetryRange{
	{Range: "1h", Resolution: "1m", Label: "Last hour", Step: time.Minute},
	{Range: "24h", Resolution: "15m", Label: "24 hours", Step: 15 * time.Minute},
	{Range: "7d", Resolution: "1h", Label: "7 days", Step: time.Hour},
	{Range: "30d", Resolution: "6h", Label: "30 days", Step: 6 * time.Hour},
}

// pickRange returns the range the query names (24 hours when it names none
// or an unknown one).
func pickRange(q string) telemetryRange {
	for _, r := range telemetryRanges {
		if r.Range == q {
			return r
		}
	}
	return telemetryRanges[1]
}

// gpuMetric is one per-GPU chart.
type gpuMetric struct {
	Metric, Title, Unit string
	FixedMax            float64
	Scale               func(float64) float64
}

var gpuMetrics = []gpuMetric{
	{Metric: "utilization_percent", Title: "GPU utilisation", Unit: "%", FixedMax: 100},
	{Metric: "memory_used_bytes", Title: "GPU memory used", Unit: "GiB", Scale: func(v float64) float64 { return v / (1 << 30) }},
	{Metric: "power_watts", Title: "GPU power", Unit: "W"},
	{Metric: "temperature_celsius", Title: "GPU temperature", Unit: "°C"},
}

// telemetryData is telemetry.html's data.
type telemetryData struct {
	Ranges []navItem
	Nodes  []navItem
	Node   *cpclient.Node
	Range  telemetryRange
	Charts []chart
}

func (h *Handler) routeTelemetry() {
	h.mux.HandleFunc("GET /admin/telemetry", h.telemetryPage)
	h.mux.HandleFunc("GET /admin/energy", h.energyPage)
	h.mux.HandleFunc("GET /admin/energy/export", h.energyExport)
}

// telemetryPage draws one node's GPU utilisation, memory, power and
// temperature (a line per GPU) and its GPU and CPU power over the chosen
// range. The series are read concurrently: one call per GPU and metric.
func (h *Handler) telemetryPage(w http.ResponseWriter, r *http.Request) {
	c, me, ok := h.staff(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	nodes, err := h.cp.Nodes(ctx, c)
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	q := r.URL.Query()
	rng := pickRange(q.Get("range"))
	d := telemetryData{Range: rng}
	nodeID, _ := strconv.ParseInt(q.Get("node"), 10, 64)
	for i := range nodes {
		if d.Node == nil && (nodeID == 0 || nodes[i].ID == nodeID) {
			d.Node = &nodes[i]
		}
	}
	if nodeID != 0 && d.Node == nil {
		h.fail(w, r, me, &cpclient.WebError{Status: http.StatusNotFound, Message: "no such node"})
		return
	}
	for _, n := range nodes {
		d.Nodes = append(d.Nodes, navItem{URL: fmt.Sprintf("/admin/telemetry?node=%d&range=%s", n.ID, rng.Range), Label: n.Name, Current: n.ID == d.Node.ID})
	}
	for _, x := range telemetryRanges {
		u := "/admin/telemetry?range=" + x.Range
		if d.Node != nil {
			u = fmt.Sprintf("/admin/telemetry?node=%d&range=%s", d.Node.ID, x.Range)
		}
		d.Ranges = append(d.Ranges, navItem{URL: u, Label: x.Label, Current: x.Range == rng.Range})
	}
	if d.Node != nil {
		d.Charts, err = h.nodeCharts(ctx, c, *d.Node, rng, time.Now())
		if err != nil {
			h.fail(w, r, me, err)
			return
		}
	}
	h.render(w, r, http.StatusOK, "telemetry", page{Title: "GPU telemetry history", Nav: "admin", Me: me, Data: d, Charts: true, AdminNav: adminNav("/admin/telemetry")})
}

// nodeCharts reads a node's series and draws them.
func (h *Handler) nodeCharts(ctx context.Context, c cpclient.Caller, n cpclient.Node, rng telemetryRange, now time.Time) ([]chart, error) {
	type job struct {
		q     cpclient.HistoryQuery
		chart int
		label string
	}
	var jobs []job
	for mi, m := range gpuMetrics {
		for g := range max(n.GPUCount, 0) {
			jobs = append(jobs, job{q: cpclient.HistoryQuery{Scope: "gpu", NodeID: n.ID, GPUIndex: uint32(g), Metric: m.Metric},
				chart: mi, label: fmt.Sprintf("GPU %d", g)})
		}
	}
	jobs = append(jobs, job{q: cpclient.HistoryQuery{Scope: "node", NodeID: n.ID, Metric: "gpu_power_watts"}, chart: len(gpuMetrics), label: "GPUs"},
		job{q: cpclient.HistoryQuery{Scope: "node", NodeID: n.ID, Metric: "cpu_power_watts"}, chart: len(gpuMetrics), label: "CPU and DRAM"})
	series := make([]chartInput, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			j.q.Range, j.q.Resolution = rng.Range, rng.Resolution
			ps, err := h.cp.History(ctx, c, j.q)
			series[i], errs[i] = chartInput{Label: j.label, Points: chartPoints(ps)}, err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	from := now.Add(-mustDuration(rng.Range))
	per := make([][]chartInput, len(gpuMetrics)+1)
	for i, j := range jobs {
		per[j.chart] = append(per[j.chart], series[i])
	}
	out := make([]chart, 0, len(per))
	for mi, m := range gpuMetrics {
		out = append(out, buildChart("chart-"+m.Metric, m.Title, m.Unit, from, now, rng.Step, m.FixedMax, m.Scale, per[mi]))
	}
	return append(out, buildChart("chart-node-power", "Server power", "W", from, now, rng.Step, 0, nil, per[len(gpuMetrics)])), nil
}

func chartPoints(ps []cpclient.HistoryPoint) []chartPoint {
	out := make([]chartPoint, len(ps))
	for i, p := range ps {
		out[i] = chartPoint{At: p.At, Value: p.Value}
	}
	return out
}

// mustDuration is the length of one of telemetryRanges' ranges.
func mustDuration(rng string) time.Duration {
	switch rng {
	case "1h":
		return time.Hour
	case "7d":
		return 7 * 24 * time.Hour
	case "30d":
		return 30 * 24 * time.Hour
	}
	return 24 * time.Hour
}
