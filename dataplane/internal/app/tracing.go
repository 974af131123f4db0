package app

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// setupTracing installs the process's tracer provider and the W3C trace-context
// propagator, so that a request's server span, its Admit and Release calls and the
// control plane's handling of them form one trace. The composition root is the one
// place allowed to set the globals that the otelhttp and otelgrpc instrumentation
// read.
//
// Spans are recorded and exported over OTLP/gRPC only when
// OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set. Without an exporter
// recording them would be pure cost (about a tenth of the data plane's CPU), so the
// tracer provider is a no-op one: it records nothing and mints no ids, but carries
// an incoming traceparent through unchanged, so the client's trace id still reaches
// the control plane and the backends. The instrumentation is chosen to match
// (package tracing): without spans, no otelhttp or otelgrpc at all.
// spans reports whether spans are recorded, for the instrumentation to match.
func setupTracing(ctx context.Context) (shutdown func(context.Context) error, spans bool, err error) {
	spans = lookupExporter(os.LookupEnv)
	tp, shutdown, err := tracerProvider(ctx, spans)
	if err != nil {
		return nil, false, err
	}
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return shutdown, spans, nil
}

// lookupExporter reports whether the environment configures an OTLP trace exporter.
func lookupExporter(lookupEnv func(string) (string, bool)) bool {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if v, _ := lookupEnv(k); v != "" {
			return true
		}
	}
	return false
}

// tracerProvider returns an exporting SDK provider, or a no-op one when export is false.
func tracerProvider(ctx context.Context, export bool) (trace.TracerProvider, func(context.Context) error, error) {
	if !export {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	return tp, tp.Shutdown, nil
}
