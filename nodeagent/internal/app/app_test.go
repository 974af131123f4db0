package app_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mindrouter/mindrouter/nodeagent/internal/app"
	"github.com/mindrouter/mindrouter/nodeagent/internal/nvmltest"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

const secret = "e2e-node-secret"

// telemetryServer is an in-process control plane side: it checks the bearer secret and
// keeps every sample it is sent.
type telemetryServer struct {
	nodeagentv1.UnimplementedTelemetryServiceServer
	mu      sync.Mutex
	nodes   []string
	samples []*nodeagentv1.NodeSample
}

func (s *telemetryServer) Stream(stream nodeagentv1.TelemetryService_StreamServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+secret {
		return status.Error(codes.Unauthenticated, "invalid node credentials")
	}
	if _, err := stream.Recv(); err != nil {
		return err
	}
	s.mu.Lock()
	s.nodes = append(s.nodes, md.Get("x-mindrouter-node")...)
	s.mu.Unlock()
	w := &nodeagentv1.Welcome{NodeId: 1, SampleInterval: durationpb.New(time.Second)}
	if err := stream.Send(&nodeagentv1.StreamResponse{Kind: &nodeagentv1.StreamResponse_Welcome{Welcome: w}}); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		s.mu.Lock()
		s.samples = append(s.samples, req.GetSample())
		s.mu.Unlock()
		ack := &nodeagentv1.Ack{SampledAt: req.GetSample().GetSampledAt()}
		if err := stream.Send(&nodeagentv1.StreamResponse{Kind: &nodeagentv1.StreamResponse_Ack{Ack: ack}}); err != nil {
			return err
		}
	}
}

func (s *telemetryServer) received() ([]string, []*nodeagentv1.NodeSample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.nodes...), append([]*nodeagentv1.NodeSample(nil), s.samples...)
}

func serve(t *testing.T) (*telemetryServer, string) {
	t.Helper()
	ts, addr, _ := serveAt(t, "127.0.0.1:0")
	return ts, addr
}

// serveAt serves the telemetry service on addr; stop ends it (Cleanup does too).
func serveAt(t *testing.T, addr string) (ts *telemetryServer, bound string, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	ts = &telemetryServer{}
	srv := grpc.NewServer()
	nodeagentv1.RegisterTelemetryServiceServer(srv, ts)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	var once sync.Once
	stop = func() { once.Do(func() { srv.Stop(); <-done }) }
	t.Cleanup(stop)
	return ts, lis.Addr().String(), stop
}

// TestAgentFindsTheLeaderInTheList gives the agent two control planes, the
// standby first. A standby does not open its gRPC port at all (its REST port
// answers /readyz 503; controlplane/internal/app/standby.go), so its address
// refuses connections: the agent must settle on the leader, the second
// address. When the leader goes away and the standby takes over (opening its
// gRPC port), the agent moves to it by itself.
func TestAgentFindsTheLeaderInTheList(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	standby := closed.Addr().String()
	require.NoError(t, closed.Close()) // nothing listens there: connection refused
	leader, leaderAddr, stopLeader := serveAt(t, "127.0.0.1:0")

	runAgent(t, []string{"-control-plane", standby + "," + leaderAddr, "-node-name", "dgx-01", "-secret-file", secretFile(t)},
		io.Discard, app.WithNVML(nvmltest.DGXH100()), app.WithGetenv(noEnv))
	require.Eventually(t, func() bool {
		_, samples := leader.received()
		return len(samples) >= 2
	}, 20*time.Second, 10*time.Millisecond, "the agent streams to the leader, the second address")

	stopLeader()
	promoted, _, _ := serveAt(t, standby)
	require.Eventually(t, func() bool {
		nodes, samples := promoted.received()
		return len(nodes) == 1 && len(samples) >= 1
	}, 45*time.Second, 50*time.Millisecond, "after a failover the agent streams to the new leader")
}

func secretFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(secret+"\n"), 0o600))
	return p
}

// runAgent runs app.Run in the background and returns a stop that cancels it and
// asserts a clean return.
func runAgent(t *testing.T, args []string, stderr io.Writer, opts ...app.Option) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, args, io.Discard, stderr, opts...) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("agent did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func noEnv(string) string { return "" }

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAgentStreamsDGXH100Samples(t *testing.T) {
	t.Parallel()
	ts, addr := serve(t)
	logs := &syncBuffer{}
	stop := runAgent(t, []string{"-control-plane", addr, "-node-name", "dgx-01", "-secret-file", secretFile(t)},
		logs, app.WithNVML(nvmltest.DGXH100()), app.WithGetenv(noEnv))

	require.Eventually(t, func() bool {
		_, samples := ts.received()
		return len(samples) >= 2
	}, 10*time.Second, 10*time.Millisecond)
	stop()

	nodes, samples := ts.received()
	assert.Equal(t, []string{"dgx-01"}, nodes)
	s := samples[len(samples)-1]
	assert.Empty(t, s.GetNvmlError())
	assert.Equal(t, "550.54.15", s.GetDriverVersion())
	assert.Equal(t, "12.4", s.GetCudaVersion())
	require.Len(t, s.GetGpus(), 8)
	for i, g := range s.GetGpus() {
		assert.Equal(t, uint32(i), g.GetIndex())
		assert.Equal(t, "NVIDIA H100 80GB HBM3", g.GetName())
		assert.Equal(t, uint64(80<<30), g.GetMemoryTotalBytes())
	}
	assert.NotContains(t, logs.String(), secret)
}

func TestAgentWithoutNVMLStillReports(t *testing.T) {
	t.Parallel()
	ts, addr := serve(t)
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	runAgent(t, []string{"-control-plane", addr, "-node-name", "cpu-01", "-secret-file", secretFile(t)},
		io.Discard, app.WithNVML(lib), app.WithGetenv(noEnv))

	require.Eventually(t, func() bool {
		_, samples := ts.received()
		return len(samples) >= 1
	}, 10*time.Second, 10*time.Millisecond)
	_, samples := ts.received()
	assert.Empty(t, samples[0].GetGpus())
	assert.Contains(t, samples[0].GetNvmlError(), "ERROR_LIBRARY_NOT_FOUND")
}

func TestAgentMetricsListener(t *testing.T) {
	t.Parallel()
	ts, addr := serve(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	metricsAddr := lis.Addr().String()
	require.NoError(t, lis.Close())

	env := map[string]string{
		"MINDROUTER_AGENT_CONTROL_PLANE": addr,
		"MINDROUTER_AGENT_NODE_NAME":     "dgx-02",
		"MINDROUTER_AGENT_SECRET":        secret,
		"MINDROUTER_AGENT_METRICS_ADDR":  metricsAddr,
	}
	stop := runAgent(t, nil, io.Discard, app.WithNVML(nvmltest.DGXH100()),
		app.WithGetenv(func(k string) string { return env[k] }))
	require.Eventually(t, func() bool {
		_, samples := ts.received()
		return len(samples) >= 1
	}, 10*time.Second, 10*time.Millisecond)

	get := func(path string) string {
		resp, err := http.Get("http://" + metricsAddr + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "ok\n", get("/healthz"))
	require.Eventually(t, func() bool {
		return bytes.Contains([]byte(get("/metrics")), []byte("mindrouter_agent_samples_acked_total 1"))
	}, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, get("/metrics"), "mindrouter_agent_connected 1")
	stop()
	_, err = http.Get("http://" + metricsAddr + "/healthz")
	require.Error(t, err, "the listener stops with the agent")
}

func TestAgentRejectsBadConfig(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := app.Run(t.Context(), []string{"-node-name", "x"}, io.Discard, &stderr, app.WithGetenv(noEnv))
	require.ErrorContains(t, err, "no node secret")

	var stdout bytes.Buffer
	err = app.Run(t.Context(), []string{"-h"}, &stdout, &stderr, app.WithGetenv(noEnv))
	require.NoError(t, err, "-h is not an error")
	assert.Contains(t, stdout.String(), "-control-plane", "help goes to stdout")
}
