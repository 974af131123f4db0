// Package scheduler decides which waiting request gets the next free backend slot.
//
// It owns two things, both in memory and both exact for the whole fleet (the control
// plane sees every admission, so there is no per-replica estimate to reconcile):
//
//   - the per-backend in-flight counts (slots granted and not yet released), and
//   - the per-model queues of requests waiting for a slot.
//
// The seam has two layers:
//
//   - Queue is the engine that admission calls. Acquire blocks until a slot is
//     granted, the queue timeout passes or the caller's context ends (which takes
//     the ticket off the queue). Release frees a slot; Kick re-evaluates every waiter
//     after something outside changed (the registry). Both offer freed capacity to
//     waiters at once, under the same lock, so a newcomer can never take a slot that
//     a waiter was owed.
//   - Policy orders the waiters: which model is offered capacity first and which
//     ticket of that model is its head. FIFO serves tickets in arrival order; a
//     token-weighted deficit round robin (WDRR) policy replaces it without any change
//     to Queue's callers. The head of a model is never overtaken by a later ticket of
//     the same model: while it cannot be placed, the model's other tickets wait.
//
// FairShare is the default Policy: one fairshare.Pool per model, charged the
// estimate when a ticket is granted (queued or not) and settled with the real cost
// at Release. Adopt counts slots granted before a restart; Snapshot copies the
// queues and the per-user fair-share state for the admin view.
//
// Which backend a ticket goes to is not decided here: the caller passes a Picker
// that sees the current in-flight counts and returns a backend with a free slot (or
// none). Queue calls Pickers and Policy methods with its lock held, so both must be
// quick and must not block or call back into the Queue.
//
// The package must not touch the database, know about credentials or quotas, or
// hold its lock while a caller waits.
package scheduler
