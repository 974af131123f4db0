package energy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/history"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// HistoryStore is what the service reads (*store.Store provides it).
type HistoryStore interface {
	MetricPoints(ctx context.Context, q store.PointQuery) ([]store.MetricPoint, error)
	RequestUsagesEnded(ctx context.Context, from, to time.Time) ([]store.RequestUsage, error)
}

// ServiceOptions configures the service.
type ServiceOptions struct {
	// Tiers are the history's tiers (to pick the finest one that still covers a
	// range); default history.DefaultTiers.
	Tiers  []history.Tier
	Prices Prices
	Now    func() time.Time
}

// Service is TelemetryHistoryService.
type Service struct {
	adminv1.UnimplementedTelemetryHistoryServiceServer
	st HistoryStore
	o  ServiceOptions
}

// NewService returns the service over st.
func NewService(st HistoryStore, o ServiceOptions) *Service {
	if o.Tiers == nil {
		o.Tiers = history.DefaultTiers()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{st: st, o: o}
}

// The ranges and resolutions the API accepts, as in the reference.
var (
	ranges      = map[string]time.Duration{"1h": time.Hour, "6h": 6 * time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour, "365d": 365 * 24 * time.Hour}
	resolutions = map[string]time.Duration{"1m": time.Minute, "5m": 5 * time.Minute, "15m": 15 * time.Minute, "1h": time.Hour, "6h": 6 * time.Hour, "1d": 24 * time.Hour}
	// maxSpan bounds a range, so that one call cannot read years of raw samples.
	maxSpan = 366 * 24 * time.Hour
)

// timeRange is a request with start, end and range fields.
type timeRange interface {
	GetStart() *timestamppb.Timestamp
	GetEnd() *timestamppb.Timestamp
	GetRange() string
}

// span resolves a request's start, end and range to [from, to).
func (s *Service) span(r timeRange) (time.Time, time.Time, error) {
	now := s.o.Now().UTC()
	if r.GetStart() != nil || r.GetEnd() != nil {
		if r.GetRange() != "" {
			return time.Time{}, time.Time{}, status.Error(codes.InvalidArgument, "give start/end or range, not both")
		}
		from, to := r.GetStart().AsTime(), now
		if r.GetEnd() != nil {
			to = r.GetEnd().AsTime()
		}
		if r.GetStart() == nil || !to.After(from) || to.Sub(from) > maxSpan {
			return time.Time{}, time.Time{}, status.Error(codes.InvalidArgument, "start must come before end, at most 366 days apart")
		}
		return from.UTC(), to.UTC(), nil
	}
	name := cmp.Or(r.GetRange(), "24h")
	d, ok := ranges[name]
	if !ok {
		return time.Time{}, time.Time{}, status.Errorf(codes.InvalidArgument, "range %q: use one of 1h, 6h, 24h, 7d, 30d, 365d", name)
	}
	return now.Add(-d), now, nil
}

// tier is the finest tier whose retention still covers from.
func (s *Service) tier(from time.Time) time.Duration {
	age := s.o.Now().Sub(from)
	for _, t := range s.o.Tiers {
		if age <= t.Retention {
			return t.Step
		}
	}
	return s.o.Tiers[len(s.o.Tiers)-1].Step
}

// summed are the metrics whose values add up across series (power, memory, counts).
var summed = map[string]bool{
	history.GPUPower: true, history.GPUMemoryUsed: true, history.NodeGPUPower: true, history.NodeCPUPower: true,
	history.BackendRequests: true, history.BackendPromptTokens: true, history.BackendCompletionTokens: true,
}

// counts are the metrics whose bucket value is the total, not the mean.
var counts = map[string]bool{history.BackendRequests: true, history.BackendPromptTokens: true, history.BackendCompletionTokens: true}

// GetHistory implements the per-GPU, per-node, per-backend and cluster series.
func (s *Service) GetHistory(ctx context.Context, req *adminv1.GetHistoryRequest) (*adminv1.GetHistoryResponse, error) {
	from, to, err := s.span(req)
	if err != nil {
		return nil, err
	}
	scope := req.GetScope()
	if scope == "" {
		switch {
		case req.GetBackendId() != 0:
			scope = store.ScopeBackend
		case req.GetNodeId() != 0:
			scope = store.ScopeNode
		default:
			scope = "cluster"
		}
	}
	res := req.GetResolution()
	step, ok := resolutions[res]
	if res == "" {
		res, step = defaultResolution(to.Sub(from))
	} else if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "resolution %q: use one of 1m, 5m, 15m, 1h, 6h, 1d", res)
	}
	if to.Sub(from)/step > 10_000 {
		return nil, status.Error(codes.InvalidArgument, "more than 10000 buckets: choose a coarser resolution")
	}
	q, err := seriesQuery(scope, req)
	if err != nil {
		return nil, err
	}
	q.Step, q.From, q.To = s.tier(from), from, to
	pts, err := s.st.MetricPoints(ctx, q)
	if err != nil {
		return nil, err
	}
	return &adminv1.GetHistoryResponse{Scope: scope, Metric: q.Metric, Resolution: res, Points: bucket(pts, step, q.Metric)}, nil
}

// seriesQuery maps a scope and ids to the points to read.
func seriesQuery(scope string, req *adminv1.GetHistoryRequest) (store.PointQuery, error) {
	m := req.GetMetric()
	in := func(s string) bool { return slices.Contains(history.Metrics[s], m) }
	q := store.PointQuery{SeriesKey: store.SeriesKey{Metric: m}}
	switch {
	case scope == store.ScopeGPU && in(store.ScopeGPU) && req.GetNodeId() != 0:
		q.Scope, q.NodeID, q.GPUIndex = store.ScopeGPU, req.GetNodeId(), int(req.GetGpuIndex())
	case scope == store.ScopeNode && req.GetNodeId() != 0 && in(store.ScopeNode):
		q.Scope, q.NodeID = store.ScopeNode, req.GetNodeId()
	case scope == store.ScopeNode && req.GetNodeId() != 0 && in(store.ScopeGPU):
		q.Scope, q.NodeID, q.AnyGPU = store.ScopeGPU, req.GetNodeId(), true
	case scope == store.ScopeBackend && req.GetBackendId() != 0 && in(store.ScopeBackend):
		q.Scope, q.BackendID = store.ScopeBackend, req.GetBackendId()
	case scope == "cluster" && in(store.ScopeNode):
		q.Scope, q.AnyNode = store.ScopeNode, true
	case scope == "cluster" && in(store.ScopeBackend):
		q.Scope, q.AnyBackend = store.ScopeBackend, true
	case scope == "cluster" && in(store.ScopeGPU):
		q.Scope, q.AnyNode, q.AnyGPU = store.ScopeGPU, true, true
	default:
		return q, status.Errorf(codes.InvalidArgument,
			"scope %q with metric %q: gpu needs node_id and a GPU metric, node a node_id, backend a backend_id and a backend metric (docs/energy.md lists the metrics)", scope, m)
	}
	return q, nil
}

func defaultResolution(span time.Duration) (string, time.Duration) {
	for _, r := range []string{"1m", "5m", "15m", "1h", "6h", "1d"} {
		if span/resolutions[r] <= 500 {
			return r, resolutions[r]
		}
	}
	return "1d", resolutions["1d"]
}

// bucket folds points into buckets of step: each series on its own first, then
// across series (summed for power, memory and counts, averaged otherwise).
func bucket(pts []store.MetricPoint, step time.Duration, metric string) []*adminv1.HistoryPoint {
	folded := history.Fold(pts, step)
	type agg struct {
		value, min, max float64
		series          int
		samples         int64
	}
	byAt := map[time.Time]*agg{}
	for _, p := range folded {
		v := p.Mean()
		if counts[metric] {
			v = p.Sum
		}
		a := byAt[p.At]
		if a == nil {
			a = &agg{min: p.Min, max: p.Max}
			byAt[p.At] = a
		}
		a.value += v
		a.series++
		a.samples += p.Count
		a.min, a.max = min(a.min, p.Min), max(a.max, p.Max)
	}
	out := make([]*adminv1.HistoryPoint, 0, len(byAt))
	for _, at := range slices.SortedFunc(maps.Keys(byAt), time.Time.Compare) {
		a := byAt[at]
		hp := &adminv1.HistoryPoint{At: timestamppb.New(at), Value: a.value, Samples: a.samples}
		if !summed[metric] {
			hp.Value = a.value / float64(a.series)
		}
		if a.series == 1 {
			hp.Min, hp.Max = a.min, a.max
		}
		out = append(out, hp)
	}
	return out
}

const exportChunk = 64 << 10

var exportHeader = []string{"at", "scope", "node_id", "gpu_index", "backend_id", "metric", "step_seconds", "count", "sum", "min", "max", "mean"}

// ExportHistory streams points hour by hour, so memory stays bounded by one hour's.
func (s *Service) ExportHistory(req *adminv1.ExportHistoryRequest, stream grpc.ServerStreamingServer[httpbody.HttpBody]) error {
	ctx := stream.Context()
	from, to, err := s.span(req)
	if err != nil {
		return err
	}
	var step time.Duration
	switch req.GetResolution() {
	case "", "raw":
	case "1m":
		step = time.Minute
	case "1h":
		step = time.Hour
	default:
		return status.Error(codes.InvalidArgument, "resolution must be raw, 1m or 1h")
	}
	contentType := "text/csv; charset=utf-8"
	jsonl := false
	switch strings.ToLower(req.GetFormat()) {
	case "", "csv":
	case "jsonl", "ndjson", "json":
		jsonl, contentType = true, "application/x-ndjson"
	default:
		return status.Error(codes.InvalidArgument, "format must be csv or jsonl")
	}
	scopes := []string{store.ScopeGPU, store.ScopeNode, store.ScopeBackend}
	if sc := req.GetScope(); sc != "" {
		if !slices.Contains(scopes, sc) {
			return status.Error(codes.InvalidArgument, "scope must be gpu, node or backend")
		}
		scopes = []string{sc}
	}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	enc := json.NewEncoder(&buf)
	flush := func(force bool) error {
		cw.Flush()
		if buf.Len() == 0 || !force && buf.Len() < exportChunk {
			return nil
		}
		err := stream.Send(&httpbody.HttpBody{ContentType: contentType, Data: bytes.Clone(buf.Bytes())})
		buf.Reset()
		return err
	}
	if !jsonl {
		_ = cw.Write(exportHeader)
	}
	for at := from; at.Before(to); at = at.Add(time.Hour) {
		end := minTime(at.Add(time.Hour), to)
		for _, sc := range scopes {
			metrics := history.Metrics[sc]
			if m := req.GetMetric(); m != "" {
				if !slices.Contains(metrics, m) {
					continue
				}
				metrics = []string{m}
			}
			for _, m := range metrics {
				pts, err := s.st.MetricPoints(ctx, store.PointQuery{
					SeriesKey: store.SeriesKey{Scope: sc, Metric: m, NodeID: req.GetNodeId(), BackendID: req.GetBackendId()},
					AnyNode:   true, AnyGPU: true, AnyBackend: true, Step: step, From: at, To: end,
				})
				if err != nil {
					return err
				}
				for _, p := range pts {
					if jsonl {
						err = enc.Encode(exportRow(p))
					} else {
						err = cw.Write(exportRecord(p))
					}
					if err != nil {
						return status.Errorf(codes.Internal, "encode export: %v", err)
					}
				}
				if err := flush(false); err != nil {
					return err
				}
			}
		}
	}
	return flush(true)
}

type exportJSON struct {
	At        time.Time `json:"at"`
	Scope     string    `json:"scope"`
	NodeID    int64     `json:"node_id"`
	GPUIndex  int       `json:"gpu_index"`
	BackendID int64     `json:"backend_id"`
	Metric    string    `json:"metric"`
	Step      int64     `json:"step_seconds"`
	Count     int64     `json:"count"`
	Sum       float64   `json:"sum"`
	Min       float64   `json:"min"`
	Max       float64   `json:"max"`
	Mean      float64   `json:"mean"`
}

func exportRow(p store.MetricPoint) exportJSON {
	return exportJSON{At: p.At, Scope: p.Scope, NodeID: p.NodeID, GPUIndex: p.GPUIndex, BackendID: p.BackendID,
		Metric: p.Metric, Step: int64(p.Step / time.Second), Count: p.Count, Sum: p.Sum, Min: p.Min, Max: p.Max, Mean: p.Mean()}
}

func exportRecord(p store.MetricPoint) []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	return []string{p.At.Format(time.RFC3339Nano), p.Scope, i(p.NodeID), strconv.Itoa(p.GPUIndex), i(p.BackendID), p.Metric,
		i(int64(p.Step / time.Second)), i(p.Count), f(p.Sum), f(p.Min), f(p.Max), f(p.Mean())}
}

// GetEnergy integrates the power series of the range.
func (s *Service) GetEnergy(ctx context.Context, req *adminv1.GetEnergyRequest) (*adminv1.GetEnergyResponse, error) {
	from, to, err := s.span(req)
	if err != nil {
		return nil, err
	}
	step := s.tier(from)
	read := func(scope, metric string) (map[[2]int64][]PowerSample, error) {
		pts, err := s.st.MetricPoints(ctx, store.PointQuery{SeriesKey: store.SeriesKey{Scope: scope, Metric: metric},
			AnyNode: true, AnyGPU: true, Step: step, From: from, To: to})
		if err != nil {
			return nil, err
		}
		out := map[[2]int64][]PowerSample{}
		for _, p := range pts {
			k := [2]int64{p.NodeID, int64(p.GPUIndex)}
			out[k] = append(out[k], PowerSample{At: p.At.Add(step / 2), Watts: p.Mean()})
		}
		return out, nil
	}
	gpus, err := read(store.ScopeGPU, history.GPUPower)
	if err != nil {
		return nil, err
	}
	cpus, err := read(store.ScopeNode, history.NodeCPUPower)
	if err != nil {
		return nil, err
	}
	nodes := map[int64]*adminv1.NodeEnergy{}
	node := func(id int64) *adminv1.NodeEnergy {
		if nodes[id] == nil {
			nodes[id] = &adminv1.NodeEnergy{NodeId: id}
		}
		return nodes[id]
	}
	resp := &adminv1.GetEnergyResponse{Start: timestamppb.New(from), End: timestamppb.New(to)}
	for k, tr := range gpus {
		j := Integrate(tr)
		n := node(k[0])
		n.GpuJoules += j
		n.Gpus = append(n.Gpus, &adminv1.GPUEnergy{GpuIndex: uint32(k[1]), Joules: j})
		resp.ClusterGpuJoules += j
	}
	for k, tr := range cpus {
		j := Integrate(tr)
		node(k[0]).CpuJoules += j
		resp.ClusterCpuJoules += j
	}
	for _, id := range slices.Sorted(maps.Keys(nodes)) {
		n := nodes[id]
		slices.SortFunc(n.Gpus, func(a, b *adminv1.GPUEnergy) int { return cmp.Compare(a.GetGpuIndex(), b.GetGpuIndex()) })
		resp.Nodes = append(resp.Nodes, n)
	}
	reqs, err := s.st.RequestUsagesEnded(ctx, from, to)
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		if r.EnergyJoules != nil {
			resp.AttributedJoules += *r.EnergyJoules
		}
	}
	resp.IdleJoules = max(resp.ClusterGpuJoules-resp.AttributedJoules, 0)
	resp.ClusterKwh = (resp.ClusterGpuJoules + resp.ClusterCpuJoules) / JoulesPerKWh
	resp.Cost = resp.ClusterKwh * s.o.Prices.PerKWh
	return resp, nil
}

// GetEnergyReport reports per day and user, group or model.
func (s *Service) GetEnergyReport(ctx context.Context, req *adminv1.GetEnergyReportRequest) (*adminv1.GetEnergyReportResponse, error) {
	from, to, err := s.span(req)
	if err != nil {
		return nil, err
	}
	by := cmp.Or(req.GetGroupBy(), ByUser)
	if by != ByUser && by != ByGroup && by != ByModel {
		return nil, status.Error(codes.InvalidArgument, "group_by must be user, group or model")
	}
	reqs, err := s.st.RequestUsagesEnded(ctx, from, to)
	if err != nil {
		return nil, err
	}
	p := s.o.Prices
	resp := &adminv1.GetEnergyReportResponse{PricePerKwh: p.PerKWh,
		CommercialPromptPricePerMillion: p.PromptPerMillion, CommercialCompletionPricePerMillion: p.CompletionPerMillion}
	for _, r := range Report(reqs, by, p) {
		resp.Rows = append(resp.Rows, &adminv1.EnergyReportRow{
			Day: timestamppb.New(r.Day), Key: r.Key, Requests: r.Requests, PromptTokens: r.PromptTokens,
			CompletionTokens: r.CompletionTokens, Joules: r.Joules, Kwh: r.KWh, Cost: r.Cost,
			JoulesPerToken: r.JoulesPerToken, CommercialCost: r.CommercialCost, Pending: r.Pending,
		})
	}
	return resp, nil
}
