package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// otlpReceiver is an OTLP/gRPC trace receiver: the collector's own
// TraceService, served by grpc from the official OTLP protobuf definitions, so
// the processes export over the real wire protocol to a real server.
type otlpReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	addr  string
	mu    sync.Mutex
	spans []receivedSpan
}

// receivedSpan is a span with the service.name of the resource that sent it.
type receivedSpan struct {
	service string
	span    *tracepb.Span
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &otlpReceiver{addr: lis.Addr().String()}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return r
}

// Export implements the collector's TraceService.
func (r *otlpReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := attr(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, receivedSpan{service: service, span: s})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// trace returns the spans received so far with traceID.
func (r *otlpReceiver) trace(traceID string) []receivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []receivedSpan
	for _, s := range r.spans {
		if hex.EncodeToString(s.span.GetTraceId()) == traceID {
			out = append(out, s)
		}
	}
	return out
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// checkTrace finds the traced request's spans: the data plane's server span
// (child of the caller's span), its Admit client span and the control plane's
// Admit server span under it, the control plane's Release span, and the data
// plane's call to the backend, all under the one trace id.
func checkTrace(t *testing.T, r *otlpReceiver, traceID, backendURL string) {
	const callerSpan = "00f067aa0ba902b7"
	backend, err := url.Parse(backendURL)
	require.NoError(t, err)
	type found struct{ server, admitClient, admitServer, release, backendCall *receivedSpan }
	var f found
	var spans []receivedSpan
	var names []string
	ok := func() bool {
		f = found{}
		spans = r.trace(traceID)
		names = names[:0]
		byID := map[string]*receivedSpan{}
		for i := range spans {
			byID[hex.EncodeToString(spans[i].span.GetSpanId())] = &spans[i]
			names = append(names, fmt.Sprintf("%s:%s(%s)", spans[i].service, spans[i].span.GetName(), spans[i].span.GetKind()))
		}
		parent := func(s *receivedSpan) *receivedSpan { return byID[hex.EncodeToString(s.span.GetParentSpanId())] }
		for i := range spans {
			s := &spans[i]
			name, kind := s.span.GetName(), s.span.GetKind()
			switch {
			case strings.Contains(s.service, "dataplane") && kind == tracepb.Span_SPAN_KIND_SERVER && name == "POST /v1/chat/completions":
				f.server = s
			case strings.Contains(s.service, "controlplane") && kind == tracepb.Span_SPAN_KIND_SERVER &&
				strings.HasPrefix(name, "mindrouter.controlplane.v1.AdmissionService/Admit"):
				f.admitServer = s
			case strings.Contains(s.service, "controlplane") && kind == tracepb.Span_SPAN_KIND_SERVER &&
				name == "mindrouter.controlplane.v1.AdmissionService/Release":
				f.release = s
			case strings.Contains(s.service, "dataplane") && kind == tracepb.Span_SPAN_KIND_CLIENT &&
				attr(s.span.GetAttributes(), "server.address")+":"+fmt.Sprint(intAttr(s.span.GetAttributes(), "server.port")) == backend.Host:
				f.backendCall = s
			}
		}
		if f.server == nil || f.admitServer == nil || f.release == nil || f.backendCall == nil {
			return false
		}
		f.admitClient = parent(f.admitServer)
		return true
	}
	require.Eventually(t, ok, 30*time.Second, 100*time.Millisecond, "the trace's spans: %v", func() []string { return names }())

	id := func(s *receivedSpan) string { return hex.EncodeToString(s.span.GetSpanId()) }
	pid := func(s *receivedSpan) string { return hex.EncodeToString(s.span.GetParentSpanId()) }
	require.Equal(t, callerSpan, pid(f.server), "the data plane's server span continues the caller's trace")
	require.NotNil(t, f.admitClient, "the control plane's Admit span has the data plane's Admit call as its parent; spans: %v", names)
	require.Contains(t, f.admitClient.service, "dataplane")
	require.Equal(t, tracepb.Span_SPAN_KIND_CLIENT, f.admitClient.span.GetKind())
	require.Equal(t, f.admitServer.span.GetName(), f.admitClient.span.GetName())
	require.Equal(t, id(f.server), pid(f.admitClient), "the Admit call is made by the request")
	require.Equal(t, id(f.server), pid(f.release), "the control plane's Release span hangs under the request")
	require.Equal(t, id(f.server), pid(f.backendCall), "the backend call is made by the request")
	require.Equal(t, "POST", attr(f.backendCall.span.GetAttributes(), "http.request.method"))
	require.GreaterOrEqual(t, f.release.span.GetStartTimeUnixNano(), f.admitServer.span.GetEndTimeUnixNano(), "Release after Admit")
}

func intAttr(kvs []*commonpb.KeyValue, key string) int64 {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue().GetIntValue()
		}
	}
	return 0
}
