// Package quota enforces the per-user limits of admission: a token budget over a
// rolling period, requests per minute per user (and per key when a key limit is
// configured) and a cap on each user's concurrent requests.
//
// A Manager is admission's accountant; the composition root (app) adapts
// admission's principal and settlement to this package's Account and Settlement,
// so that quota does not depend on its caller. Reserve holds the request's whole
// token allowance (prompt estimate plus output allowance, as admission computes
// it) before the request queues, so concurrent requests can never together spend
// more than the budget: a reservation is granted only while used + reserved +
// tokens fits the budget. Settle releases the reservation and charges the exact
// usage the data plane reported (the reservation itself when the usage is
// unknown). Every check and every change for one user happens under one lock, so
// a refusal leaves nothing behind; users are spread over sharded locks, so no lock
// is shared by all users.
//
// The requests-per-minute limit is an exact sliding log over the last minute (no
// fixed-window bursts at the minute boundary). The token period is rolling per
// user, as in the reference: when it has run out, the next request starts a new
// one at that moment.
//
// State lives in memory. A UsageStore, when one is set, receives the persistent
// part (tokens used, lifetime tokens, period start and length) in idempotent
// batches from Run, never on the request path; Load restores it at start. Without
// a store, usage starts empty after every restart. Reservations, in-flight counts
// and request-rate windows are never persisted: they die with the leases that
// hold them.
//
// The package must not read the database, know about backends or scheduling,
// or decide how a refusal is shown to a client: it returns errors that carry a
// Retry-After, and the server maps them to statuses in one place.
package quota
