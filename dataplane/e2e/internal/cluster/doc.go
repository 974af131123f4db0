// Package cluster starts a real MindRouter cluster for end-to-end tests: the control
// plane and data plane binaries, built once per test binary from this checkout, as
// separate processes on ephemeral loopback ports, talking real gRPC to each other.
// Backends are whatever the test passes: the in-process engine simulator or a real
// Ollama (package ollamatest).
package cluster
