package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// History serves a fixed series per metric: two GPUs' utilisation, a node's
// GPU power; every other series is empty. It records the queries.
func (f *fakeCP) History(_ context.Context, c cpclient.Caller, q cpclient.HistoryQuery) ([]cpclient.HistoryPoint, error) {
	if err := f.admin(c, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.historyQueries = append(f.historyQueries, q)
	return f.history[q.Metric+"/"+strconv.Itoa(int(q.GPUIndex))], nil
}

func (f *fakeCP) EnergyReport(_ context.Context, c cpclient.Caller, rng, by string) (cpclient.EnergyReport, error) {
	if err := f.admin(c, false); err != nil {
		return cpclient.EnergyReport{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.energyQueries = append(f.energyQueries, rng+"/"+by)
	return f.energy, nil
}

func TestFigure(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]string{0: "0.00", 12.345: "12.35", 1: "1.00", 0.5: "0.500", 0.042: "0.0420", 0.0000364: "0.0000364", -0.25: "-0.250", 1e-15: "0.0000000000"} {
		assert.Equal(t, want, figure(in), "figure(%v)", in)
	}
}

func TestNiceCeil(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]float64{0: 1, -3: 1, 0.3: 0.5, 1: 1, 1.2: 2, 2.2: 2.5, 3: 5, 7: 10, 73: 100, 180: 200, 350: 500, 700: 1000} {
		assert.InDelta(t, want, niceCeil(in), 1e-9, "niceCeil(%v)", in)
	}
}

// pathPoints parses an SVG path's coordinates.
func pathPoints(t *testing.T, d string) [][2]float64 {
	t.Helper()
	var out [][2]float64
	for _, m := range regexp.MustCompile(`[ML](-?[0-9.]+) (-?[0-9.]+)`).FindAllStringSubmatch(d, -1) {
		x, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		y, err := strconv.ParseFloat(m[2], 64)
		require.NoError(t, err)
		out = append(out, [2]float64{x, y})
	}
	return out
}

// TestChartScaling: time maps onto the plot's width and values onto its
// height from the bottom, up to a round maximum (or the fixed one), and
// points outside the range stay inside the frame.
func TestChartScaling(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	in := []chartInput{{Label: "GPU 0", Points: []chartPoint{{from, 0}, {from.Add(30 * time.Minute), 150}, {to, 300}}}}
	c := buildChart("c", "Power", "W", from, to, 30*time.Minute, 0, nil, in)
	require.Len(t, c.Series, 1)
	pts := pathPoints(t, c.Series[0].Path)
	require.Len(t, pts, 3)
	bottom, right := c.PlotY+c.PlotH, c.PlotX+c.PlotW
	assert.InDelta(t, c.PlotX, pts[0][0], 0.1)
	assert.InDelta(t, bottom, pts[0][1], 0.1, "0 W on the axis")
	assert.InDelta(t, c.PlotX+c.PlotW/2, pts[1][0], 0.1)
	assert.InDelta(t, bottom-c.PlotH*150/500, pts[1][1], 0.1, "the axis runs to 500, the round number above 300")
	assert.InDelta(t, right, pts[2][0], 0.1)
	assert.Equal(t, "500", c.YTicks[len(c.YTicks)-1].Label)
	assert.Equal(t, "0", c.YTicks[0].Label)
	assert.False(t, c.Empty)
	assert.Contains(t, c.Desc, "GPU 0: latest 300, lowest 0.00, highest 300.")

	// A fixed maximum (percent) and a scale (bytes to GiB); values beyond the
	// frame are clamped.
	in = []chartInput{{Label: "GPU 1", Points: []chartPoint{{from.Add(-time.Hour), 50}, {from.Add(10 * time.Minute), 250}}}}
	c = buildChart("c", "Util", "%", from, to, 10*time.Minute, 100, nil, in)
	pts = pathPoints(t, c.Series[0].Path)
	assert.InDelta(t, c.PlotX, pts[0][0], 0.1, "before the range: the left edge")
	assert.InDelta(t, c.PlotY, pts[1][1], 0.1, "over 100%: the top edge")
	assert.Equal(t, "100", c.YTicks[len(c.YTicks)-1].Label)
	c = buildChart("c", "Memory", "GiB", from, to, time.Minute, 0, func(v float64) float64 { return v / (1 << 30) },
		[]chartInput{{Label: "GPU 0", Points: []chartPoint{{from, 3 << 30}}}})
	assert.Equal(t, "5", c.YTicks[len(c.YTicks)-1].Label, "3 GiB on an axis to 5 GiB")
	assert.Equal(t, "3.00", c.Rows[0].Values[0])
}

// TestChartGapsAndEmpty: a step wider than 2.5 buckets starts a new run of
// the line; a point alone between gaps is a dot; no points at all is an empty
// chart that says so; a series missing at a time is a dash in the table.
func TestChartGapsAndEmpty(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return from.Add(time.Duration(m) * time.Minute) }
	in := []chartInput{
		{Label: "GPU 0", Points: []chartPoint{{at(0), 1}, {at(1), 2}, {at(2), 3}, {at(10), 4}, {at(30), 5}, {at(31), 6}}},
		{Label: "GPU 1", Points: []chartPoint{{at(1), 7}}},
	}
	c := buildChart("c", "T", "°C", from, at(60), time.Minute, 0, nil, in)
	assert.Equal(t, 3, strings.Count(c.Series[0].Path, "M"), "three runs: 0–2, 10 alone, 30–31")
	require.Len(t, c.Series[0].Dots, 1, "the lone point at minute 10 is a dot")
	assert.InDelta(t, c.PlotX+c.PlotW*10/60, c.Series[0].Dots[0].X, 0.1)
	require.Len(t, c.Series[1].Dots, 1, "a series of one point is a dot")
	assert.Equal(t, []string{"GPU 0", "GPU 1"}, c.Columns)
	require.Len(t, c.Rows, 6, "one row per distinct time")
	assert.Equal(t, []string{"2.00", "7.00"}, c.Rows[1].Values)
	assert.Equal(t, []string{"1.00", "—"}, c.Rows[0].Values)
	assert.Equal(t, "2026-01-01 00:00 UTC", c.Rows[0].At)

	e := buildChart("e", "T", "°C", from, at(60), time.Minute, 0, nil, []chartInput{{Label: "GPU 0"}})
	assert.True(t, e.Empty)
	assert.Empty(t, e.Series[0].Path)
	assert.Empty(t, e.Rows)
	assert.Contains(t, e.Desc, "No samples in this range.")
	assert.Equal(t, "1", e.YTicks[len(e.YTicks)-1].Label, "an empty chart still has an axis")
}

func historyFixture(now time.Time) map[string][]cpclient.HistoryPoint {
	var util0, util1, power []cpclient.HistoryPoint
	for i := 0; i < 10; i++ {
		at := now.Add(-time.Duration(10-i) * 15 * time.Minute)
		util0 = append(util0, cpclient.HistoryPoint{At: at, Value: float64(10 * i)})
		util1 = append(util1, cpclient.HistoryPoint{At: at, Value: 50})
		power = append(power, cpclient.HistoryPoint{At: at, Value: 400 + float64(i)})
	}
	return map[string][]cpclient.HistoryPoint{"utilization_percent/0": util0, "utilization_percent/1": util1, "gpu_power_watts/0": power}
}

// TestTelemetryPage: the page asks for each GPU's four metrics and the node's
// two power series over the chosen range at its resolution, draws them as
// SVG with a title, a description and a data table, and escapes the node's
// name; an unknown range falls back to 24 hours; a student is refused.
func TestTelemetryPage(t *testing.T) {
	t.Parallel()
	h, cp := newTestHandler(t)
	cp.nodes = []cpclient.Node{{ID: 4, Name: `gpu<script>1`, Status: "online", GPUCount: 2}, {ID: 5, Name: "spare", Status: "offline"}}
	cp.history = historyFixture(time.Now())
	w := get(h, "/admin/telemetry?range=1h", "s-auditor")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	body := w.Body.String()
	assert.NotContains(t, body, "gpu<script>1")
	assert.Contains(t, body, "gpu&lt;script&gt;1")
	for _, id := range []string{"chart-utilization_percent", "chart-memory_used_bytes", "chart-power_watts", "chart-temperature_celsius", "chart-node-power"} {
		assert.Contains(t, body, `id="`+id+`-t"`, id)
	}
	assert.Equal(t, 5, strings.Count(body, `role="img"`))
	assert.Equal(t, 5, strings.Count(body, "<details>"), "a data table under each chart")
	assert.Contains(t, body, "GPU utilisation (%) from ")
	assert.Contains(t, body, "GPU 0: latest 90.0, lowest 0.00, highest 90.0.")
	assert.Contains(t, body, "No samples in this range", "the empty charts say so")
	assert.Contains(t, body, `<a href="/admin/telemetry?node=4&amp;range=1h" aria-current="true">Last hour</a>`)
	assert.Regexp(t, `<path d="M[0-9. ML]+"/>`, body)
	assert.NotContains(t, body, "style=")

	cp.mu.Lock()
	qs := cp.historyQueries
	cp.historyQueries = nil
	cp.mu.Unlock()
	assert.Len(t, qs, 2*4+2, "four metrics for each of two GPUs, two for the node")
	for _, q := range qs {
		assert.Equal(t, int64(4), q.NodeID)
		assert.Equal(t, "1h", q.Range)
		assert.Equal(t, "1m", q.Resolution)
	}

	get(h, "/admin/telemetry?node=5&range=forever", "s-admin")
	cp.mu.Lock()
	assert.Len(t, cp.historyQueries, 2, "a node without GPUs: only its power")
	assert.Equal(t, "24h", cp.historyQueries[0].Range)
	assert.Equal(t, "15m", cp.historyQueries[0].Resolution)
	cp.mu.Unlock()

	assert.Equal(t, http.StatusNotFound, get(h, "/admin/telemetry?node=99", "s-admin").Code)
	assert.Equal(t, http.StatusForbidden, get(h, "/admin/telemetry", "s-user").Code)
	cp.nodes = []cpclient.Node{}
	assert.Contains(t, get(h, "/admin/telemetry", "s-admin").Body.String(), "No node is registered")
}

func energyFixture() cpclient.EnergyReport {
	d1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d2 := d1.AddDate(0, 0, 1)
	return cpclient.EnergyReport{PricePerKWh: 0.12, CommercialPromptPrice: 3, CommercialOutputPrice: 15, Rows: []cpclient.EnergyRow{
		{Day: d1, Key: "maria", Requests: 2, PromptTokens: 1000, CompletionTokens: 1000, Joules: 3600, KWh: 0.001, Cost: 0.00012, CommercialCost: 0.018},
		{Day: d2, Key: "maria", Requests: 1, PromptTokens: 500, CompletionTokens: 1500, Joules: 7200, KWh: 0.002, Cost: 0.00024, CommercialCost: 0.024, Pending: 1},
		{Day: d2, Key: "=cmd|'/c calc'!A1", Requests: 1, PromptTokens: 10, CompletionTokens: 10, Joules: 36000, KWh: 0.01, Cost: 0.0012, CommercialCost: 0.00018},
	}}
}

// TestSumEnergy: the days of each key add up; joules per token and the
// saving come from the sums, not from averaging the days.
func TestSumEnergy(t *testing.T) {
	t.Parallel()
	lines, total := sumEnergy(energyFixture().Rows)
	require.Len(t, lines, 2)
	assert.Equal(t, "=cmd|'/c calc'!A1", lines[0].Key, "largest energy first")
	m := lines[1]
	assert.Equal(t, int64(3), m.Requests)
	assert.Equal(t, int64(4000), m.Tokens)
	assert.Equal(t, int64(1), m.Pending)
	assert.InDelta(t, 10800, m.Joules, 1e-9)
	assert.InDelta(t, 2.7, m.JoulesPerToken, 1e-9, "10800 J / 4000 tokens")
	assert.InDelta(t, 0.042-0.00036, m.Savings, 1e-12)
	assert.InDelta(t, 100*(0.042-0.00036)/0.042, m.SavingPct, 1e-9)
	assert.Equal(t, int64(4), total.Requests)
	assert.InDelta(t, 46800.0/4020, total.JoulesPerToken, 1e-9)
	none, zero := sumEnergy(nil)
	assert.Empty(t, none)
	assert.Zero(t, zero.JoulesPerToken, "no tokens: no division by zero")
	assert.Zero(t, zero.SavingPct)
}

// TestEnergyPage: the table per user (the default), group or model over the
// chosen period, totals and prices; the CSV export has the daily rows with a
// formula-looking name defused; auditors read both, students neither.
func TestEnergyPage(t *testing.T) {
	t.Parallel()
	h, cp := newTestHandler(t)
	cp.energy = energyFixture()
	w := get(h, "/admin/energy", "s-auditor")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	body := w.Body.String()
	assert.Contains(t, body, `<th scope="row">maria</th><td class="num">3</td><td class="num">4000</td><td class="num">0.00300</td><td class="num">2.700</td><td class="num">0.000360</td><td class="num">0.0420</td><td class="num">0.0416</td>`)
	assert.Contains(t, body, "0.1200 per kWh")
	assert.Contains(t, body, "3.0000 per million prompt tokens, 15.0000 per million completion tokens")
	assert.Contains(t, body, "1 request(s) in this period are not attributed yet")
	assert.Contains(t, body, `href="/admin/energy/export?range=30d&amp;by=user"`)
	assert.Contains(t, body, "<tfoot>")
	get(h, "/admin/energy?range=7d&by=model", "s-admin")
	get(h, "/admin/energy?range=1y&by=nonsense", "s-admin")
	cp.mu.Lock()
	assert.Equal(t, []string{"30d/user", "7d/model", "30d/user"}, cp.energyQueries)
	cp.mu.Unlock()

	w = get(h, "/admin/energy/export?range=7d&by=group", "s-auditor")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `attachment; filename="mindrouter-energy-group-7d.csv"`, w.Header().Get("Content-Disposition"))
	recs, err := csv.NewReader(strings.NewReader(w.Body.String())).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 4)
	assert.Equal(t, []string{"day", "group", "requests", "pending", "prompt_tokens", "completion_tokens", "joules", "kwh", "joules_per_token", "cost", "commercial_cost"}, recs[0])
	assert.Equal(t, []string{"2026-01-02", "maria", "1", "1", "500", "1500", "7200", "0.002", "0", "0.00024", "0.024"}, recs[2])
	assert.Equal(t, "'=cmd|'/c calc'!A1", recs[3][1])

	cp.energy = cpclient.EnergyReport{}
	assert.Contains(t, get(h, "/admin/energy", "s-admin").Body.String(), "No request ended in this period.")
	assert.Equal(t, http.StatusForbidden, get(h, "/admin/energy", "s-user").Code)
	assert.Equal(t, http.StatusForbidden, get(h, "/admin/energy/export", "s-user").Code)
}

// TestStatusShowsAllTimeTokens: the public page and its JSON carry the
// all-time total next to today's, with no session.
func TestStatusShowsAllTimeTokens(t *testing.T) {
	t.Parallel()
	h, cp := newTestHandler(t)
	cp.status.TokensToday, cp.status.TokensTotal = 1234, 98765432
	body := get(h, "/", "").Body.String()
	assert.Contains(t, body, `<span class="value" data-field="tokens_total">98765432</span><span class="label">tokens served in all</span>`)
	w := get(h, "/status.json", "")
	require.Equal(t, http.StatusOK, w.Code)
	var got map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	assert.EqualValues(t, 98765432, got["tokens_total"])
	assert.EqualValues(t, 1234, got["tokens_today"])
}

// TestChartsStylesOnlyOnTheTelemetryPage: charts.css is linked from the
// telemetry page and nowhere else (the chat page's weight is unchanged), and
// it is served.
func TestChartsStylesOnlyOnTheTelemetryPage(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t)
	assert.Contains(t, get(h, "/admin/telemetry", "s-admin").Body.String(), `href="/static/charts.css?v=`)
	for _, path := range []string{"/", "/admin", "/admin/energy", "/dashboard"} {
		assert.NotContains(t, get(h, path, "s-admin").Body.String(), "charts.css", path)
	}
	w := get(h, "/static/charts.css", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), ".chart .series path")
}
