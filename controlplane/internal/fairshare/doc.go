// Package fairshare is the fair-share scheduling algorithm of one model pool: a
// token-weighted deficit round robin (WDRR) over per-user queues, with burst credits
// for users coming back from idle, a usage-window penalty for users who consumed more
// than their weighted share, and a wait bonus that bounds how long any request waits.
//
// A Pool holds the queued requests of one model and decides which one gets the next
// free backend slot (Next). It charges the estimated cost when it dispatches and
// corrects it with the real cost when the slot is released (Settle). It is
// work-conserving: Next returns a request whenever any is queued.
//
// The package is pure: no I/O, no goroutines, no timers, no locks. Time comes from
// the clock passed to NewPool. A Pool is not safe for concurrent use: the caller
// (the scheduler) serialises every call under its own lock, which is what lets a
// blocking Acquire loop drive it without a second lock. Every operation is O(log n)
// in the number of users with queued requests, plus a walk of the user's own queue
// (at most MaxQueuePerUser) for the position estimate in Enqueue and Position;
// Stats is O(users), and all known users are swept once per usage bucket
// (FairnessWindow/30, or 10 s with the window off).
//
// The package must not know about backends, slots, contexts, credentials, quotas or
// the database: capacity, timeouts of waiting callers and client disconnects belong
// to the scheduler, which reports them with Next, Remove and Expire.
//
// The simulation that compares it with FIFO lives in the sim subpackage; the
// algorithm and every parameter are described in docs/scheduler.md.
package fairshare
