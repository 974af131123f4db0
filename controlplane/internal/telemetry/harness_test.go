package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/telemetry"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

var t0 = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)

const (
	waitFor = 5 * time.Second
	tick    = 2 * time.Millisecond
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a telemetry Service on a real gRPC server on 127.0.0.1:0 over a fake store
// with three nodes: gpu-01 (id 1, secret-1), gpu-02 (id 2, secret-2) and nosecret
// (id 3, registered without a secret).
type harness struct {
	svc    *telemetry.Service
	st     *fakeStore
	reg    *prometheus.Registry
	clock  *fakeClock
	client nodeagentv1.TelemetryServiceClient
	points *pointLog
}

// pointLog records what the service offers the history.
type pointLog struct {
	mu     sync.Mutex
	points []store.MetricPoint
}

func (p *pointLog) OfferPoints(pts []store.MetricPoint) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.points = append(p.points, pts...)
	return true
}

func (p *pointLog) all() []store.MetricPoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]store.MetricPoint(nil), p.points...)
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st := newFakeStore()
	st.addNode(1, "gpu-01", "secret-1")
	st.addNode(2, "gpu-02", "secret-2")
	st.addNode(3, "nosecret", "")
	h := &harness{st: st, reg: prometheus.NewRegistry(), clock: &fakeClock{t: t0}, points: &pointLog{}}
	svc, err := telemetry.New(st, telemetry.Options{
		SampleInterval: 7 * time.Second,
		LastSeenEvery:  time.Minute,
		Now:            h.clock.Now,
		Registerer:     h.reg,
		History:        h.points,
	})
	require.NoError(t, err)
	h.svc = svc

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.StreamInterceptor(mapErrors))
	nodeagentv1.RegisterTelemetryServiceServer(srv, svc)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	h.client = nodeagentv1.NewTelemetryServiceClient(conn)
	return h
}

// open starts a stream carrying the given metadata pairs; cancel ends it.
func (h *harness) open(t *testing.T, kv ...string) (nodeagentv1.TelemetryService_StreamClient, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	stream, err := h.client.Stream(metadata.AppendToOutgoingContext(ctx, kv...))
	require.NoError(t, err)
	return stream, cancel
}

// connect authenticates as node and completes Hello → Welcome.
func (h *harness) connect(t *testing.T, node, secret string) (nodeagentv1.TelemetryService_StreamClient, *nodeagentv1.Welcome, context.CancelFunc) {
	t.Helper()
	stream, cancel := h.open(t, telemetry.NodeHeader, node, telemetry.AuthHeader, "Bearer "+secret)
	require.NoError(t, stream.Send(helloReq(node)))
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.NotNil(t, resp.GetWelcome())
	return stream, resp.GetWelcome(), cancel
}

// send sends a sample and waits for its Ack.
func send(t *testing.T, stream nodeagentv1.TelemetryService_StreamClient, s *nodeagentv1.NodeSample) {
	t.Helper()
	require.NoError(t, stream.Send(&nodeagentv1.StreamRequest{Kind: &nodeagentv1.StreamRequest_Sample{Sample: s}}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.NotNil(t, resp.GetAck())
	require.True(t, resp.GetAck().GetSampledAt().AsTime().Equal(s.GetSampledAt().AsTime()))
}

func helloReq(node string) *nodeagentv1.StreamRequest {
	return &nodeagentv1.StreamRequest{Kind: &nodeagentv1.StreamRequest_Hello{Hello: &nodeagentv1.Hello{
		NodeName: node, AgentVersion: "1.0.0", Hostname: node + ".lab",
	}}}
}

// sample builds a reading of n H100s, all at util percent and the given power limit.
func sample(n int, util, powerLimitMW uint32) *nodeagentv1.NodeSample {
	s := &nodeagentv1.NodeSample{
		SampledAt:     timestamppb.New(t0.Add(time.Duration(util) * time.Second)),
		DriverVersion: "550.54.15",
		CudaVersion:   "12.4",
		NvmlVersion:   "12.550.54.15",
	}
	for i := range n {
		s.Gpus = append(s.Gpus, &nodeagentv1.GPUSample{
			Index:                 uint32(i),
			Uuid:                  fmt.Sprintf("GPU-%04d", i),
			Name:                  "NVIDIA H100 80GB HBM3",
			PciBusId:              fmt.Sprintf("00000000:%02X:00.0", i),
			ComputeCapability:     "9.0",
			UtilizationGpuPercent: util,
			MemoryTotalBytes:      80 << 30,
			MemoryUsedBytes:       uint64(i+1) << 30,
			TemperatureC:          uint32(40 + i),
			PowerDrawMilliwatts:   uint32(300_000 + 500*i),
			PowerLimitMilliwatts:  powerLimitMW,
		})
	}
	return s
}

// metricValue is the value of the unlabelled metric name in h's registry.
func metricValue(t *testing.T, h *harness, name string) float64 {
	t.Helper()
	families, err := h.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		require.Len(t, f.GetMetric(), 1)
		m := f.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// mapErrors stands in for the server's error table, which the control plane
// installs in front of every service: it turns the service's refusals into
// their codes.
func mapErrors(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	err := h(srv, ss)
	for _, m := range []struct {
		err  error
		code codes.Code
	}{
		{telemetry.ErrRefused, codes.Unauthenticated},
		{telemetry.ErrLookupUnavailable, codes.Unavailable},
		{telemetry.ErrInvalidStream, codes.InvalidArgument},
		{telemetry.ErrReplaced, codes.Aborted},
	} {
		if errors.Is(err, m.err) {
			return status.Error(m.code, err.Error())
		}
	}
	return err
}
