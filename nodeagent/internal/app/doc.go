// Package app wires the node agent: configuration, logger, NVML collector, the gRPC
// connection to the control plane, the uplink, and the optional /metrics and /healthz
// listener. Run owns every goroutine it starts and returns once they have stopped.
//
// It must not contain collection or streaming logic (collector and uplink own those),
// and it never logs the node secret.
package app
