package uplink_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// fakeCP is a stateful TelemetryService: it records metadata, hellos and samples, and
// rejects every stream when reject is set.
type fakeCP struct {
	nodeagentv1.UnimplementedTelemetryServiceServer
	interval time.Duration
	reject   bool
	// dropAfterWelcome ends every stream right after its Welcome.
	dropAfterWelcome bool

	streams atomic.Int64
	mu      sync.Mutex
	md      []metadata.MD
	hellos  []*nodeagentv1.Hello
	samples []*nodeagentv1.NodeSample
}

func (f *fakeCP) Stream(stream nodeagentv1.TelemetryService_StreamServer) error {
	f.streams.Add(1)
	md, _ := metadata.FromIncomingContext(stream.Context())
	f.mu.Lock()
	f.md = append(f.md, md)
	f.mu.Unlock()
	if f.reject {
		return status.Error(codes.Unauthenticated, "invalid node credentials")
	}
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	if req.GetHello() == nil {
		return status.Error(codes.InvalidArgument, "first message must be a hello")
	}
	f.mu.Lock()
	f.hellos = append(f.hellos, req.GetHello())
	f.mu.Unlock()
	w := &nodeagentv1.Welcome{NodeId: 7}
	if f.interval > 0 {
		w.SampleInterval = durationpb.New(f.interval)
	}
	if err := stream.Send(&nodeagentv1.StreamResponse{Kind: &nodeagentv1.StreamResponse_Welcome{Welcome: w}}); err != nil {
		return err
	}
	if f.dropAfterWelcome {
		return status.Error(codes.Aborted, "replaced by a newer telemetry stream of the same node")
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		s := req.GetSample()
		f.mu.Lock()
		f.samples = append(f.samples, s)
		f.mu.Unlock()
		ack := &nodeagentv1.Ack{SampledAt: s.GetSampledAt()}
		if err := stream.Send(&nodeagentv1.StreamResponse{Kind: &nodeagentv1.StreamResponse_Ack{Ack: ack}}); err != nil {
			return err
		}
	}
}

func (f *fakeCP) sampleCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.samples)
}

func (f *fakeCP) snapshot() ([]metadata.MD, []*nodeagentv1.Hello, []*nodeagentv1.NodeSample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]metadata.MD(nil), f.md...), append([]*nodeagentv1.Hello(nil), f.hellos...),
		append([]*nodeagentv1.NodeSample(nil), f.samples...)
}

// serve starts cp on addr ("127.0.0.1:0" for a fresh port) and returns the address and
// a stop function (also run at cleanup).
func serve(t *testing.T, addr string, cp *fakeCP) (string, func()) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	srv := grpc.NewServer()
	nodeagentv1.RegisterTelemetryServiceServer(srv, cp)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			srv.Stop()
			<-done
		})
	}
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

// dial connects with a short transport backoff so that a restarted server is found fast.
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, MaxDelay: 50 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// seqSource produces samples whose driver_version is their sequence number (1, 2, ...).
type seqSource struct{ n atomic.Int64 }

func (s *seqSource) Collect(ctx context.Context) (*nodeagentv1.NodeSample, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	return &nodeagentv1.NodeSample{DriverVersion: strconv.FormatInt(s.n.Add(1), 10)}, nil
}

func seqOf(t *testing.T, s *nodeagentv1.NodeSample) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s.GetDriverVersion(), 10, 64)
	require.NoError(t, err)
	return n
}

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
