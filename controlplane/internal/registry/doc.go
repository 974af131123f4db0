// Package registry owns the control plane's live picture of the fleet: nodes,
// backends (Ollama and vLLM servers), the models each serves, their health,
// and what live traffic says about each backend (its circuit breaker and its
// latency and throughput averages).
//
// The database (through the Store interface) is the record; the registry keeps
// an in-memory copy that it rebuilds into an immutable view on every change, so
// that the hot-path reads (Candidates, Catalog, ScoringInputs) take no
// registry-wide lock. It polls backends with the health package (RunHealth),
// persists what it learns, turns probe results into status transitions and
// request outcomes into circuit transitions, tells subscribers when anything
// that routing depends on changes, and serves the admin RegistryService
// (AdminServer).
//
// # Health model
//
// Two independent signals decide whether a backend gets requests:
//
//   - The status (healthy, unhealthy, unknown; disabled and draining are the
//     administrator's) is governed by probes only: UnhealthyThreshold failed
//     probes in a row turn a healthy backend unhealthy (an unknown one at its
//     first), a successful probe makes it healthy. Only healthy backends are
//     candidates and appear in the catalog.
//   - The circuit breaker (closed, open, half_open) is governed by live
//     outcomes only (Observe, fed by Release): CircuitThreshold backend
//     failures in a row (connection errors, timeouts, 5xx, broken streams —
//     OUTCOME_BACKEND_ERROR) open it for CircuitOpenFor. While open the
//     backend is no candidate (reason ReasonCircuitOpen); outcomes of requests
//     sent before it opened change nothing. When the period ends it is
//     half-open: a candidate, but AcquireCircuit lets exactly one trial
//     request through (another only after AbandonTrial or
//     CircuitTrialTimeout). The next outcome decides: a success closes the
//     circuit, a failure re-opens it for twice the last period, at most
//     CircuitMaxOpenFor (set it to CircuitOpenFor for a fixed period).
//
// The two meet in three places. Opening a circuit asks RunHealth for an
// immediate re-probe and keeps the backend on the fast poll, and a failed
// probe of a backend whose circuit is not closed turns it unhealthy at once
// (the probe confirms what the requests saw: a dead host leaves the catalog
// within one probe). A successful probe does not close a circuit: a backend
// whose health endpoint answers while its inference fails (a wedged GPU, for
// one) would otherwise flap back into service every fast poll, costing
// CircuitThreshold failed requests each time; the half-open trial decides.
// And an administrator's EnableBackend, or a new URL, closes the circuit.
// A short open period leaves the catalog alone (the model stays listed;
// requests for a model whose backends are all open get ErrCircuitOpen with
// the time until the first turns half-open as Retry-After).
//
// Circuit state and averages are kept in memory only: a restarted control
// plane starts every circuit closed and every average unknown.
//
// # Hard filters
//
// Candidates applies hard filters only: the backend serves the model, can do
// what the request needs, is healthy, has GPU memory for the model, and its
// circuit is not open; Screen also says why each other backend was left out.
// The package must not count capacity or queue requests (admission and the
// scheduler do), rank candidates (the scoring package does; ScoringInputs
// and Choose feed it and apply its choice to the breaker), or map its errors
// to gRPC codes beyond input validation (the server package does).
package registry
