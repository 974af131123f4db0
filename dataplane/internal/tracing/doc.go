// Package tracing decides how the data plane takes part in distributed traces.
// When spans are exported it installs the OpenTelemetry instrumentation
// (otelhttp on the client port and on backend calls, otelgrpc on the control
// plane connection). When they are not, recording them would be pure cost, so
// it installs pass-through plumbing instead: an incoming W3C traceparent (and
// baggage) is read from the client's headers and written unchanged onto the
// Admit, Release and backend calls, so that the client's trace still spans the
// control plane and the backends; a request without one costs nothing.
//
// It reads the global propagator that the composition root installs, and
// must not set any global itself.
package tracing
