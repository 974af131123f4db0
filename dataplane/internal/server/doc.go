// Package server is the data plane's HTTP front: one net/http mux with the
// client surfaces, the admin REST passthrough (grpc-gateway over the shared
// control-plane connection, so the control plane's own interceptors
// authenticate and audit it), health and readiness probes and Prometheus
// metrics, behind middleware for tracing, request ids, panic recovery, body
// size limits and access metrics.
//
// Middleware errors are written in the dialect of the surface that owns the
// path. The package must not know any dialect itself or call the relay.
package server
