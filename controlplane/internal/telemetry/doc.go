// Package telemetry implements TelemetryService: the control plane's end of the node
// agents' streams.
//
// It owns the authentication of agents (node name plus a bearer secret checked against
// the node's stored SHA-256 digest in constant time), the in-memory latest GPU readings
// of every connected node (Latest, and the mindrouter_gpu_* metrics computed from them
// at scrape time), the node's online/offline status and agent versions, and keeping the
// stored GPU inventory equal to what the agent reports (written on a stream's first
// sample and whenever the inventory changes).
//
// It hands every sample to the history writer (package history) without waiting on it;
// it must not write samples to the database itself, keep readings of nodes whose
// stream has ended, or log agent secrets.
package telemetry
