// Package server is the control plane's network edge: one gRPC server (with
// reflection and the standard health service) carrying every service, and one HTTP
// server carrying the REST admin gateway, /metrics, /healthz, /readyz and the OpenAPI
// document.
//
// It owns authentication and authorization of every call (cluster token for data-plane
// replicas, admin or auditor API keys for the admin API; node agents are checked by the
// telemetry service itself) and the one mapping from domain errors to gRPC status
// (errors.go). The REST gateway dials back into the gRPC server, so REST calls pass
// through the same interceptors. It holds no state of its own.
package server
