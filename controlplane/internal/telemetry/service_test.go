package telemetry_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/history"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/telemetry"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

func TestAuthentication(t *testing.T) {
	t.Parallel()
	refused := []struct {
		name string
		md   []string
	}{
		{name: "wrong secret", md: []string{telemetry.NodeHeader, "gpu-01", telemetry.AuthHeader, "Bearer secret-2"}},
		{name: "unknown node", md: []string{telemetry.NodeHeader, "gpu-99", telemetry.AuthHeader, "Bearer secret-1"}},
		{name: "node without secret", md: []string{telemetry.NodeHeader, "nosecret", telemetry.AuthHeader, "Bearer anything"}},
		{name: "no authorization", md: []string{telemetry.NodeHeader, "gpu-01"}},
		{name: "no node name", md: []string{telemetry.AuthHeader, "Bearer secret-1"}},
		{name: "basic scheme", md: []string{telemetry.NodeHeader, "gpu-01", telemetry.AuthHeader, "Basic secret-1"}},
		{name: "empty bearer", md: []string{telemetry.NodeHeader, "gpu-01", telemetry.AuthHeader, "Bearer   "}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			stream, _ := h.open(t, tt.md...)
			_ = stream.Send(helloReq("gpu-01")) // may already see the refusal
			_, err := stream.Recv()
			st, ok := status.FromError(err)
			require.True(t, ok, "got %v", err)
			assert.Equal(t, codes.Unauthenticated, st.Code())
			assert.Equal(t, "invalid node credentials", st.Message(), "every refusal reads the same")
			assert.Empty(t, h.st.recordCalls(), "a refused agent changes nothing")
			assert.Equal(t, 1.0, metricValue(t, h, "mindrouter_telemetry_auth_failures_total"))
		})
	}

	t.Run("accepted", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		_, w, _ := h.connect(t, "gpu-01", "secret-1")
		assert.Equal(t, int64(1), w.GetNodeId())
		assert.Equal(t, 7*time.Second, w.GetSampleInterval().AsDuration())
		// The scheme is case-insensitive.
		stream, _ := h.open(t, telemetry.NodeHeader, "gpu-02", telemetry.AuthHeader, "bearer secret-2")
		require.NoError(t, stream.Send(helloReq("")))
		resp, err := stream.Recv()
		require.NoError(t, err)
		assert.Equal(t, int64(2), resp.GetWelcome().GetNodeId())
		assert.Zero(t, metricValue(t, h, "mindrouter_telemetry_auth_failures_total"))
	})
}

func TestLookupFailureIsUnavailable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.st.lookupErr = errors.New("database is down")
	stream, _ := h.open(t, telemetry.NodeHeader, "gpu-01", telemetry.AuthHeader, "Bearer secret-1")
	_, err := stream.Recv()
	assert.Equal(t, codes.Unavailable, status.Code(err))
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first *nodeagentv1.StreamRequest
		then  *nodeagentv1.StreamRequest
	}{
		{name: "sample before hello", first: &nodeagentv1.StreamRequest{Kind: &nodeagentv1.StreamRequest_Sample{Sample: sample(1, 1, 1)}}},
		{name: "hello for another node", first: helloReq("gpu-02")},
		{name: "second hello", first: helloReq("gpu-01"), then: helloReq("gpu-01")},
		{name: "too many GPUs", first: helloReq("gpu-01"),
			then: &nodeagentv1.StreamRequest{Kind: &nodeagentv1.StreamRequest_Sample{Sample: sample(telemetry.MaxGPUsPerSample+1, 1, 1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			stream, _ := h.open(t, telemetry.NodeHeader, "gpu-01", telemetry.AuthHeader, "Bearer secret-1")
			require.NoError(t, stream.Send(tt.first))
			if tt.then != nil {
				resp, err := stream.Recv()
				require.NoError(t, err)
				require.NotNil(t, resp.GetWelcome())
				require.NoError(t, stream.Send(tt.then))
			}
			_, err := stream.Recv()
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "got %v", err)
		})
	}
}

func TestLatestReplacedAndInventoryUpsertedOnChange(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stream, _, _ := h.connect(t, "gpu-01", "secret-1")
	n := h.st.node("gpu-01")
	assert.Equal(t, store.NodeOnline, n.Status, "online at connect")
	assert.Equal(t, "1.0.0", n.AgentVersion)

	send(t, stream, sample(2, 10, 700_000))
	latest := h.svc.Latest()
	require.Len(t, latest, 2)
	assert.Equal(t, uint32(10), latest[0].GetSample().GetUtilizationGpuPercent())
	assert.Equal(t, "gpu-01", latest[0].GetNodeName())
	assert.Equal(t, int64(1), latest[0].GetNodeId())
	assert.Equal(t, t0.Add(10*time.Second), latest[0].GetSampledAt().AsTime())
	assert.Equal(t, 1, h.st.upsertCount(1), "first sample stores the inventory")
	inv := h.st.storedInventory(1)
	require.Len(t, inv, 2)
	assert.Equal(t, store.GPUDeviceSpec{Index: 1, UUID: "GPU-0001", Name: "NVIDIA H100 80GB HBM3", PCIBusID: "00000000:01:00.0",
		ComputeCapability: "9.0", MemoryTotalBytes: 80 << 30, PowerLimitMilliwatts: 700_000}, inv[1])
	n = h.st.node("gpu-01")
	assert.Equal(t, "550.54.15", n.DriverVersion)
	assert.Equal(t, "12.4", n.CUDAVersion)
	assert.Equal(t, 2, n.GPUCount)

	send(t, stream, sample(2, 55, 700_000))
	latest = h.svc.Latest()
	require.Len(t, latest, 2)
	assert.Equal(t, uint32(55), latest[1].GetSample().GetUtilizationGpuPercent(), "the newer sample replaces the older")
	assert.Equal(t, 1, h.st.upsertCount(1), "same inventory, no write")

	send(t, stream, sample(2, 56, 450_000))
	assert.Equal(t, 2, h.st.upsertCount(1), "a new power limit is an inventory change")

	send(t, stream, sample(3, 57, 450_000))
	assert.Equal(t, 3, h.st.upsertCount(1), "a new GPU is an inventory change")
	assert.Len(t, h.svc.Latest(), 3)
	assert.Equal(t, 3, h.st.node("gpu-01").GPUCount)

	down := &nodeagentv1.NodeSample{SampledAt: sample(0, 58, 0).GetSampledAt(), NvmlError: "nvml init: ERROR_DRIVER_NOT_LOADED"}
	send(t, stream, down)
	assert.Equal(t, 3, h.st.upsertCount(1), "an NVML outage keeps the stored inventory")
	assert.Len(t, h.st.storedInventory(1), 3)
	assert.Empty(t, h.svc.Latest(), "no readings while NVML is down")
}

func TestLastSeenWritesAreThrottled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stream, _, _ := h.connect(t, "gpu-01", "secret-1")
	send(t, stream, sample(1, 1, 1))
	writes := len(h.st.recordCalls()) // connect + first sample's versions
	require.Equal(t, 2, writes)

	send(t, stream, sample(1, 2, 1))
	h.clock.Advance(30 * time.Second)
	send(t, stream, sample(1, 3, 1))
	assert.Len(t, h.st.recordCalls(), writes, "nothing changed within LastSeenEvery")

	h.clock.Advance(31 * time.Second)
	send(t, stream, sample(1, 4, 1))
	calls := h.st.recordCalls()
	require.Len(t, calls, writes+1)
	last := calls[len(calls)-1].Info
	assert.Equal(t, store.NodeOnline, last.Status)
	assert.Equal(t, t0.Add(61*time.Second), last.LastSeen)
}

func TestDisconnectRecordsOfflineAndDropsReadings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		end  func(stream nodeagentv1.TelemetryService_StreamClient, cancel func())
	}{
		{name: "close send", end: func(s nodeagentv1.TelemetryService_StreamClient, _ func()) { _ = s.CloseSend() }},
		{name: "cancel", end: func(_ nodeagentv1.TelemetryService_StreamClient, cancel func()) { cancel() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			stream, _, cancel := h.connect(t, "gpu-01", "secret-1")
			send(t, stream, sample(2, 10, 1))
			assert.Equal(t, 2, testutil.CollectAndCount(h.reg, "mindrouter_gpu_utilization_percent"))
			assert.Equal(t, 1.0, metricValue(t, h, "mindrouter_telemetry_streams"))

			tt.end(stream, cancel)
			require.Eventually(t, func() bool { return h.st.node("gpu-01").Status == store.NodeOffline }, waitFor, tick)
			assert.Empty(t, h.svc.Latest())
			assert.Zero(t, testutil.CollectAndCount(h.reg, "mindrouter_gpu_utilization_percent"), "stale GPUs leave the metrics")
			require.Eventually(t, func() bool {
				return metricValue(t, h, "mindrouter_telemetry_streams") == 0
			}, waitFor, tick)
			assert.Equal(t, "550.54.15", h.st.node("gpu-01").DriverVersion, "offline keeps the last known versions")
		})
	}
}

func TestNewerStreamReplacesOlder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	old, _, _ := h.connect(t, "gpu-01", "secret-1")
	send(t, old, sample(2, 10, 1))

	fresh, _, _ := h.connect(t, "gpu-01", "secret-1")
	_, err := old.Recv()
	assert.Equal(t, codes.Aborted, status.Code(err), "got %v", err)

	send(t, fresh, sample(1, 20, 1))
	latest := h.svc.Latest()
	require.Len(t, latest, 1)
	assert.Equal(t, uint32(20), latest[0].GetSample().GetUtilizationGpuPercent())
	for _, c := range h.st.recordCalls() {
		assert.NotEqual(t, store.NodeOffline, c.Info.Status, "the replaced stream does not take the node offline")
	}
	assert.Equal(t, store.NodeOnline, h.st.node("gpu-01").Status)

	require.NoError(t, fresh.CloseSend())
	require.Eventually(t, func() bool { return h.st.node("gpu-01").Status == store.NodeOffline }, waitFor, tick)
}

func TestLatestSortedAndCopied(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s2, _, _ := h.connect(t, "gpu-02", "secret-2")
	s1, _, _ := h.connect(t, "gpu-01", "secret-1")
	unordered := sample(2, 30, 1)
	unordered.Gpus[0], unordered.Gpus[1] = unordered.Gpus[1], unordered.Gpus[0]
	send(t, s2, unordered)
	send(t, s1, sample(2, 40, 1))

	latest := h.svc.Latest()
	require.Len(t, latest, 4)
	var got []string
	for _, g := range latest {
		got = append(got, g.GetNodeName()+"/"+g.GetSample().GetUuid())
	}
	assert.Equal(t, []string{"gpu-01/GPU-0000", "gpu-01/GPU-0001", "gpu-02/GPU-0000", "gpu-02/GPU-0001"}, got)

	latest[0].Sample.UtilizationGpuPercent = 99
	assert.Equal(t, uint32(40), h.svc.Latest()[0].GetSample().GetUtilizationGpuPercent(), "callers get copies")
}

func TestMetricValues(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s1, _, _ := h.connect(t, "gpu-01", "secret-1")
	s2, _, _ := h.connect(t, "gpu-02", "secret-2")
	send(t, s1, sample(2, 40, 1))
	send(t, s2, sample(1, 75, 1))

	want := `
# HELP mindrouter_gpu_power_watts GPU power draw in the node agent's latest sample.
# TYPE mindrouter_gpu_power_watts gauge
mindrouter_gpu_power_watts{gpu="0",node="gpu-01"} 300
mindrouter_gpu_power_watts{gpu="1",node="gpu-01"} 300.5
mindrouter_gpu_power_watts{gpu="0",node="gpu-02"} 300
# HELP mindrouter_gpu_utilization_percent GPU utilisation in the node agent's latest sample.
# TYPE mindrouter_gpu_utilization_percent gauge
mindrouter_gpu_utilization_percent{gpu="0",node="gpu-01"} 40
mindrouter_gpu_utilization_percent{gpu="1",node="gpu-01"} 40
mindrouter_gpu_utilization_percent{gpu="0",node="gpu-02"} 75
# HELP mindrouter_gpu_memory_used_bytes GPU memory in use in the node agent's latest sample.
# TYPE mindrouter_gpu_memory_used_bytes gauge
mindrouter_gpu_memory_used_bytes{gpu="0",node="gpu-01"} 1.073741824e+09
mindrouter_gpu_memory_used_bytes{gpu="1",node="gpu-01"} 2.147483648e+09
mindrouter_gpu_memory_used_bytes{gpu="0",node="gpu-02"} 1.073741824e+09
# HELP mindrouter_gpu_temperature_celsius GPU temperature in the node agent's latest sample.
# TYPE mindrouter_gpu_temperature_celsius gauge
mindrouter_gpu_temperature_celsius{gpu="0",node="gpu-01"} 40
mindrouter_gpu_temperature_celsius{gpu="1",node="gpu-01"} 41
mindrouter_gpu_temperature_celsius{gpu="0",node="gpu-02"} 40
# HELP mindrouter_telemetry_samples_total Node samples received from agents.
# TYPE mindrouter_telemetry_samples_total counter
mindrouter_telemetry_samples_total 2
# HELP mindrouter_telemetry_streams Node agent telemetry streams open.
# TYPE mindrouter_telemetry_streams gauge
mindrouter_telemetry_streams 2
`
	require.NoError(t, testutil.GatherAndCompare(h.reg, strings.NewReader(want),
		"mindrouter_gpu_power_watts", "mindrouter_gpu_utilization_percent", "mindrouter_gpu_memory_used_bytes",
		"mindrouter_gpu_temperature_celsius", "mindrouter_telemetry_samples_total", "mindrouter_telemetry_streams"))
}

func TestNewRequiresStore(t *testing.T) {
	t.Parallel()
	_, err := telemetry.New(nil, telemetry.Options{})
	require.Error(t, err)
}

func TestSamplesGoToTheHistory(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stream, _, _ := h.connect(t, "gpu-02", "secret-2")
	s := sample(2, 30, 700_000)
	s.HostPower = &nodeagentv1.HostPower{CpuMilliwatts: 180_500, Source: "rapl"}
	send(t, stream, s)
	pts := h.points.all()
	require.Len(t, pts, 2*7+2, "seven series per GPU, GPU and CPU power of the node")
	at := t0.Add(30 * time.Second)
	byKey := map[store.SeriesKey]store.MetricPoint{}
	for _, p := range pts {
		assert.Equal(t, at, p.At)
		byKey[p.SeriesKey] = p
	}
	assert.InDelta(t, 300.5, byKey[store.SeriesKey{Scope: store.ScopeGPU, NodeID: 2, GPUIndex: 1, Metric: history.GPUPower}].Sum, 1e-9)
	assert.InDelta(t, 600.5, byKey[store.SeriesKey{Scope: store.ScopeNode, NodeID: 2, Metric: history.NodeGPUPower}].Sum, 1e-9)
	assert.InDelta(t, 180.5, byKey[store.SeriesKey{Scope: store.ScopeNode, NodeID: 2, Metric: history.NodeCPUPower}].Sum, 1e-9)
	assert.InDelta(t, 30, byKey[store.SeriesKey{Scope: store.ScopeGPU, NodeID: 2, GPUIndex: 0, Metric: history.GPUUtilization}].Sum, 1e-9)
}
