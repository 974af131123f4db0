package energy_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/energy"
	"github.com/mindrouter/mindrouter/controlplane/internal/history"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// exportStream collects an export's chunks.
type exportStream struct {
	grpc.ServerStream
	ctx context.Context
	buf bytes.Buffer
}

func (e *exportStream) Context() context.Context { return e.ctx }
func (e *exportStream) Send(b *httpbody.HttpBody) error {
	_, err := e.buf.Write(b.GetData())
	return err
}

func TestServiceOnRealStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := t.Context()
		// Node 1 with two GPUs at 100 W and 300 W and a 50 W CPU for 10 minutes,
		// a sample every 10 s; backend 5 settles a request each minute.
		var pts []store.MetricPoint
		for s := 0; s <= 600; s += 10 {
			t := at(float64(s))
			pts = append(pts,
				store.Sample(store.SeriesKey{Scope: store.ScopeGPU, NodeID: 1, GPUIndex: 0, Metric: history.GPUPower}, t, 100),
				store.Sample(store.SeriesKey{Scope: store.ScopeGPU, NodeID: 1, GPUIndex: 1, Metric: history.GPUPower}, t, 300),
				store.Sample(store.SeriesKey{Scope: store.ScopeGPU, NodeID: 1, GPUIndex: 0, Metric: history.GPUTemperature}, t, float64(40+s/100)),
				store.Sample(store.SeriesKey{Scope: store.ScopeGPU, NodeID: 1, GPUIndex: 1, Metric: history.GPUTemperature}, t, 60),
				store.Sample(store.SeriesKey{Scope: store.ScopeNode, NodeID: 1, Metric: history.NodeCPUPower}, t, 50))
		}
		var usages []store.RequestUsage
		for m := range 10 {
			j := 1000.0
			u := store.RequestUsage{RequestID: "r", BackendID: 5, Model: "m", Username: []string{"ann", "ben"}[m%2], Group: "g",
				StartedAt: at(float64(60 * m)), FirstTokenAt: at(float64(60*m + 1)), EndedAt: at(float64(60*m + 30)),
				PromptTokens: 100, CompletionTokens: 400, EnergyJoules: &j}
			usages = append(usages, u)
			pts = append(pts, history.RequestPoints(u)...)
		}
		require.NoError(t, st.UpsertMetricPoints(ctx, pts))
		require.NoError(t, st.InsertRequestUsages(ctx, usages))
		svc := energy.NewService(st, energy.ServiceOptions{Now: func() time.Time { return at(600).Add(time.Second) },
			Prices: energy.Prices{PerKWh: 0.2, PromptPerMillion: 1, CompletionPerMillion: 2}})
		start, end := timestamppb.New(t0), timestamppb.New(at(600).Add(time.Second))

		node, err := svc.GetHistory(ctx, &adminv1.GetHistoryRequest{NodeId: 1, Metric: history.GPUPower, Start: start, End: end, Resolution: "5m"})
		require.NoError(t, err)
		assert.Equal(t, "node", node.GetScope())
		require.Len(t, node.GetPoints(), 3)
		assert.InDelta(t, 400, node.GetPoints()[0].GetValue(), 1e-9, "node power is the GPUs' sum")
		temp, err := svc.GetHistory(ctx, &adminv1.GetHistoryRequest{Scope: "gpu", NodeId: 1, GpuIndex: 0, Metric: history.GPUTemperature, Start: start, End: end, Resolution: "5m"})
		require.NoError(t, err)
		require.Len(t, temp.GetPoints(), 3)
		assert.InDelta(t, 40, temp.GetPoints()[0].GetMin(), 1e-9)
		assert.InDelta(t, 42, temp.GetPoints()[0].GetMax(), 1e-9)
		reqs, err := svc.GetHistory(ctx, &adminv1.GetHistoryRequest{BackendId: 5, Metric: history.BackendCompletionTokens, Start: start, End: end, Resolution: "5m"})
		require.NoError(t, err)
		require.Len(t, reqs.GetPoints(), 2)
		assert.InDelta(t, 5*400, reqs.GetPoints()[0].GetValue(), 1e-9, "tokens per bucket are totals")
		cluster, err := svc.GetHistory(ctx, &adminv1.GetHistoryRequest{Metric: history.NodeCPUPower, Start: start, End: end})
		require.NoError(t, err)
		assert.Equal(t, "cluster", cluster.GetScope())
		assert.Equal(t, "1m", cluster.GetResolution())
		assert.InDelta(t, 50, cluster.GetPoints()[0].GetValue(), 1e-9)

		for _, bad := range []*adminv1.GetHistoryRequest{
			{NodeId: 1, Metric: "volts", Start: start, End: end},
			{Scope: "gpu", Metric: history.GPUPower, Start: start, End: end},
			{NodeId: 1, Metric: history.GPUPower, Resolution: "2m"},
			{NodeId: 1, Metric: history.GPUPower, Range: "3w"},
			{NodeId: 1, Metric: history.GPUPower, Start: timestamppb.New(at(10)), End: timestamppb.New(at(5))},
		} {
			_, err := svc.GetHistory(ctx, bad)
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", bad)
		}

		en, err := svc.GetEnergy(ctx, &adminv1.GetEnergyRequest{Start: start, End: end})
		require.NoError(t, err)
		require.Len(t, en.GetNodes(), 1)
		assert.InDelta(t, 400*600, en.GetClusterGpuJoules(), 1e-6)
		assert.InDelta(t, 50*600, en.GetClusterCpuJoules(), 1e-6)
		assert.InDelta(t, 100*600, en.GetNodes()[0].GetGpus()[0].GetJoules(), 1e-6)
		assert.InDelta(t, 10_000, en.GetAttributedJoules(), 1e-6)
		assert.InDelta(t, 240_000-10_000, en.GetIdleJoules(), 1e-6)
		assert.InDelta(t, 270_000/energy.JoulesPerKWh*0.2, en.GetCost(), 1e-12)

		rep, err := svc.GetEnergyReport(ctx, &adminv1.GetEnergyReportRequest{Start: start, End: end, GroupBy: "model"})
		require.NoError(t, err)
		require.Len(t, rep.GetRows(), 1)
		assert.Equal(t, int64(10), rep.GetRows()[0].GetRequests())
		assert.InDelta(t, 10_000.0/5000, rep.GetRows()[0].GetJoulesPerToken(), 1e-12)
		_, err = svc.GetEnergyReport(ctx, &adminv1.GetEnergyReportRequest{GroupBy: "planet"})
		assert.Equal(t, codes.InvalidArgument, status.Code(err))

		csvOut := &exportStream{ctx: ctx}
		require.NoError(t, svc.ExportHistory(&adminv1.ExportHistoryRequest{Scope: "gpu", Metric: history.GPUPower, Start: start, End: end}, csvOut))
		rows, err := csv.NewReader(strings.NewReader(csvOut.buf.String())).ReadAll()
		require.NoError(t, err)
		require.Len(t, rows, 1+2*61)
		assert.Equal(t, []string{"at", "scope", "node_id", "gpu_index", "backend_id", "metric", "step_seconds", "count", "sum", "min", "max", "mean"}, rows[0])
		jsonOut := &exportStream{ctx: ctx}
		require.NoError(t, svc.ExportHistory(&adminv1.ExportHistoryRequest{Scope: "backend", Format: "jsonl", Start: start, End: end}, jsonOut))
		lines := strings.Split(strings.TrimSpace(jsonOut.buf.String()), "\n")
		require.Len(t, lines, 10*5)
		var first map[string]any
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
		assert.Equal(t, "backend", first["scope"])
		assert.Equal(t, codes.InvalidArgument, status.Code(svc.ExportHistory(&adminv1.ExportHistoryRequest{Format: "xml"}, &exportStream{ctx: ctx})))
	})
}
