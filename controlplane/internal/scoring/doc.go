// Package scoring ranks the backends that passed the registry's hard filters
// for one request, with the original's soft score: model already loaded, low
// GPU utilisation, low latency, short queue, high throughput and the admin's
// priority.
//
// It is pure and cheap (it runs on every Admit, under the scheduler's lock): it
// owns the formulas and the deterministic tie-break, and must not read clocks,
// take locks, touch the registry or the database, or decide hard filters other
// than capacity (a backend whose slots are all in use is ineligible).
//
// The components, with the default Weights (the original's table):
//
//	loaded           100 when the model is resident on the backend, else 0
//	gpu_utilization   50 × (1 − utilisation); unknown: 25
//	latency           40 × 1/(1 + latency/RefLatency), RefLatency 5 s
//	                  (100 ms → 39.2, 1 s → 33.3, 5 s → 20, 10 s → 13.3); unknown: 20
//	queue             30 × (1 − in_flight/max_concurrent), never below 0
//	throughput        20 × throughput/(highest throughput among the candidates); unknown: 10
//	priority          10 × admin priority (may be negative)
//
// Unknown metrics earn half their points: a backend nobody has measured yet is
// neither preferred nor avoided. Latency keeps the original's hyperbola rather
// than a linear ramp so that it never flattens out: two slow backends are still
// ordered. Throughput is relative to the fastest candidate, so its points mean
// the same on any hardware.
package scoring
