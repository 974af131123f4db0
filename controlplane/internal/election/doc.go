// Package election decides which of several control-plane processes sharing
// one database is the leader: the one that admits, polls backends and writes.
// The others stand by and take over when the leader stops renewing its lease.
//
// The lock is a row of the database (store.Leader): a holder, a fencing token
// raised by every claim and a version raised by every renewal. A standby takes
// over only after it has seen the version stand still for a whole TTL on its
// own monotonic clock, and a leader stops acting (Leading turns false) once
// 90% of a TTL has passed since the start of its last successful renewal; so
// the old leader has stopped before the new one starts, without trusting the
// two machines' wall clocks to agree. It must not own anything else: what a
// leader does is the caller's business.
package election
