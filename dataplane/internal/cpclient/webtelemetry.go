package cpclient

import (
	"context"
	"time"

	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// HistoryQuery names one telemetry series: a GPU (NodeID and GPUIndex), a
// node's (NodeID, scope "node") or the cluster's, over the last Range
// (1h, 6h, 24h, 7d, 30d, 365d) in buckets of Resolution (1m ... 1d).
type HistoryQuery struct {
	Scope      string
	NodeID     int64
	GPUIndex   uint32
	Metric     string
	Range      string
	Resolution string
}

// HistoryPoint is one bucket of a series: its mean (or sum over GPUs, see
// the API), with the samples' min and max.
type HistoryPoint struct {
	At              time.Time
	Value, Min, Max float64
	Samples         int64
}

// History returns one bucketed series, oldest first; empty buckets are left
// out (admins and auditors).
func (w *Web) History(ctx context.Context, c Caller, q HistoryQuery) ([]HistoryPoint, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.telemetry.GetHistory(ctx, &adminv1.GetHistoryRequest{Scope: q.Scope, NodeId: q.NodeID, GpuIndex: q.GPUIndex,
		Metric: q.Metric, Range: q.Range, Resolution: q.Resolution})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]HistoryPoint, len(r.GetPoints()))
	for i, p := range r.GetPoints() {
		out[i] = HistoryPoint{At: ts(p.GetAt()), Value: p.GetValue(), Min: p.GetMin(), Max: p.GetMax(), Samples: p.GetSamples()}
	}
	return out, nil
}

// EnergyRow is one day's attributed energy, cost and commercial comparison
// for one user, group or model.
type EnergyRow struct {
	Day                            time.Time
	Key                            string
	Requests, Pending              int64
	PromptTokens, CompletionTokens int64
	Joules, KWh, Cost              float64
	JoulesPerToken, CommercialCost float64
}

// EnergyReport is the energy report of a range with the prices it used.
type EnergyReport struct {
	Rows                                         []EnergyRow
	PricePerKWh                                  float64
	CommercialPromptPrice, CommercialOutputPrice float64
}

// EnergyReport sums attributed energy and its cost per UTC day and user,
// group or model over the last rng (admins and auditors).
func (w *Web) EnergyReport(ctx context.Context, c Caller, rng, groupBy string) (EnergyReport, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.telemetry.GetEnergyReport(ctx, &adminv1.GetEnergyReportRequest{Range: rng, GroupBy: groupBy})
	if err != nil {
		return EnergyReport{}, webError(err)
	}
	out := EnergyReport{PricePerKWh: r.GetPricePerKwh(), CommercialPromptPrice: r.GetCommercialPromptPricePerMillion(),
		CommercialOutputPrice: r.GetCommercialCompletionPricePerMillion(), Rows: make([]EnergyRow, len(r.GetRows()))}
	for i, x := range r.GetRows() {
		out.Rows[i] = EnergyRow{Day: ts(x.GetDay()), Key: x.GetKey(), Requests: x.GetRequests(), Pending: x.GetPending(),
			PromptTokens: x.GetPromptTokens(), CompletionTokens: x.GetCompletionTokens(), Joules: x.GetJoules(), KWh: x.GetKwh(),
			Cost: x.GetCost(), JoulesPerToken: x.GetJoulesPerToken(), CommercialCost: x.GetCommercialCost()}
	}
	return out, nil
}
