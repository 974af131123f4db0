package app

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// The physical floor of the gateway's hops on this machine, at one request in
// flight: what a loopback round trip costs with nothing of MindRouter in it.
// docs/benchmarks.md reports the gateway's figures as multiples of these.

// floorService answers at once: UnaryCall with an empty response, and every
// message of StreamingCall with one message back.
type floorService struct {
	testpb.UnimplementedBenchmarkServiceServer
}

func (floorService) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{}, nil
}

func (floorService) StreamingCall(st grpc.BidiStreamingServer[testpb.SimpleRequest, testpb.SimpleResponse]) error {
	for {
		if _, err := st.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := st.Send(&testpb.SimpleResponse{}); err != nil {
			return err
		}
	}
}

func floorClient(b *testing.B) testpb.BenchmarkServiceClient {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	testpb.RegisterBenchmarkServiceServer(srv, floorService{})
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return testpb.NewBenchmarkServiceClient(conn)
}

// BenchmarkFloorGRPCUnary is one bare unary gRPC call over loopback: the
// transport cost of an Admit with no interceptor, metadata or logic.
func BenchmarkFloorGRPCUnary(b *testing.B) {
	c := floorClient(b)
	req := &testpb.SimpleRequest{ResponseSize: 0}
	ctx := context.Background()
	if _, err := c.UnaryCall(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.UnaryCall(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloorGRPCStreamMessage is one message and its answer on a
// long-lived bidirectional stream over loopback: what an Admit carried on an
// established stream would cost in transport.
func BenchmarkFloorGRPCStreamMessage(b *testing.B) {
	c := floorClient(b)
	st, err := c.StreamingCall(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	req := &testpb.SimpleRequest{}
	b.ReportAllocs()
	for b.Loop() {
		if err := st.Send(req); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			b.Fatal(err)
		}
	}
	_ = st.CloseSend()
}

// BenchmarkFloorHTTP is one keep-alive HTTP/1.1 POST with a small JSON body
// and answer over loopback: one hop of the request's path (client → data
// plane, or data plane → backend).
func BenchmarkFloorHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	const body = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}
