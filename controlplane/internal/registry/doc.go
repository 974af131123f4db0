// Package registry owns the control plane's live picture of the fleet: nodes,
// backends (Ollama and vLLM servers), the models each serves, and their health.
//
// The database (through the Store interface) is the record; the registry keeps
// an in-memory copy that it rebuilds into an immutable view on every change, so
// that the hot-path reads (Candidates, Catalog) take no lock. It polls backends
// with the health package (RunHealth), persists what it learns, turns probe
// results and live request outcomes into status transitions, tells subscribers
// when anything that routing depends on changes, and serves the admin
// RegistryService (AdminServer).
//
// It applies hard filters only (does the backend serve the model, is it
// healthy and enabled, can it do what the request needs). It must not count
// capacity, score or queue requests (admission and scheduler do) or map its
// errors to gRPC codes beyond input validation (the server package does).
package registry
