// Package e2e holds the end-to-end tests: the official client SDKs against a real
// data plane and control plane (separate processes, real gRPC between them) in front
// of the engine simulator and a real CPU Ollama. It is a test-only module so that the
// product modules do not depend on the SDKs.
package e2e
