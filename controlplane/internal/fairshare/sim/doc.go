// Package sim is a deterministic discrete-event simulation of a model pool's
// backend slots under a scheduling policy: the fair-share WDRR Pool of package
// fairshare, or a FIFO baseline. Time is simulated (no sleeping, no wall clock)
// and every random draw comes from per-user streams seeded by the caller, so the
// same seed always gives the same report.
//
// It exists to measure the algorithm (fairness, utilisation, interactive queue
// wait) for docs/scheduler.md and `make bench-scheduler`; it must not be used by
// the running control plane.
package sim
