package tracing

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Handler wraps the client-facing handler: with spans, otelhttp names each
// server span "METHOD /path"; without, the request's trace context is only
// extracted into its context.
func Handler(h http.Handler, spans bool) http.Handler {
	if spans {
		return otelhttp.NewHandler(h, "dataplane", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return r.Method + " " + r.URL.Path
		}))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Traceparent") == "" && r.Header.Get("Baggage") == "" { // canonical spellings: Get does not copy them
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r.WithContext(otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))))
	})
}

// Transport wraps the backend transport: with spans, otelhttp traces every
// call; without, the caller's trace context is written onto the request.
func Transport(rt http.RoundTripper, spans bool) http.RoundTripper {
	if spans {
		return otelhttp.NewTransport(rt)
	}
	return passThrough{rt}
}

type passThrough struct{ rt http.RoundTripper }

func (p passThrough) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if !carries(ctx) {
		return p.rt.RoundTrip(req)
	}
	// A RoundTripper must not change the caller's request.
	req = req.Clone(ctx)
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	return p.rt.RoundTrip(req)
}

// DialOption instruments the control plane connection: with spans, otelgrpc
// traces every call; without, the caller's trace context is written into each
// unary call's metadata.
func DialOption(spans bool) grpc.DialOption {
	if spans {
		return grpc.WithStatsHandler(otelgrpc.NewClientHandler())
	}
	return grpc.WithUnaryInterceptor(injectUnary)
}

func injectUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if carries(ctx) {
		var c pairs
		otel.GetTextMapPropagator().Inject(ctx, &c)
		if len(c) > 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, c...)
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// carries reports whether ctx has a trace context or baggage to pass on.
func carries(ctx context.Context) bool {
	return trace.SpanContextFromContext(ctx).IsValid() || baggage.FromContext(ctx).Len() > 0
}

// pairs collects injected fields as gRPC metadata key/value pairs (keys lower
// case, as gRPC requires).
type pairs []string

func (p *pairs) Get(string) string { return "" }
func (p *pairs) Keys() []string    { return nil }
func (p *pairs) Set(key, value string) {
	*p = append(*p, key, value)
}
