package tracing_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/mindrouter/mindrouter/dataplane/internal/tracing"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestMain(m *testing.M) {
	// What the composition root installs.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	os.Exit(m.Run())
}

// TestPassThroughCrossesTheHops: without spans, a client's traceparent reaches
// the control plane's gRPC call and the backend's HTTP call unchanged.
func TestPassThroughCrossesTheHops(t *testing.T) {
	t.Parallel()
	grpcSaw := make(chan metadata.MD, 1)
	gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		grpcSaw <- md
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), tracing.DialOption(false))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	backendSaw := make(chan string, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		backendSaw <- r.Header.Get("Traceparent")
	}))
	t.Cleanup(backend.Close)
	client := &http.Client{Transport: tracing.Transport(http.DefaultTransport, false)}

	h := tracing.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := healthpb.NewHealthClient(conn).Check(r.Context(), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, backend.URL, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Empty(t, req.Header.Get("Traceparent"), "the caller's request is not changed")
	}), false)

	for _, in := range []string{traceparent, ""} {
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
		if in != "" {
			r.Header.Set("Traceparent", in)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		md := <-grpcSaw
		require.Equal(t, in, first(md.Get("traceparent")), "gRPC hop")
		require.Equal(t, in, <-backendSaw, "backend hop")
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// TestHandlerExtracts: the pass-through handler puts the client's trace
// context (remote, as the instrumentation would) into the request's context.
func TestHandlerExtracts(t *testing.T) {
	t.Parallel()
	var got trace.SpanContext
	h := tracing.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = trace.SpanContextFromContext(r.Context())
	}), false)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Traceparent", traceparent)
	h.ServeHTTP(httptest.NewRecorder(), r)
	require.True(t, got.IsRemote())
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", got.TraceID().String())
	require.True(t, got.IsSampled())
}
