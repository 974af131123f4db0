// Package history keeps the telemetry time series: GPU and node samples from the node
// agents and per-backend request metrics from settled leases, written to the database
// by one writer goroutine through a bounded queue (the ingest paths never wait on the
// database; a full queue drops and counts), then folded into coarser tiers (raw →
// 1 minute → 1 hour by default) and pruned per tier.
//
// It owns the series' names and their downsampling. It must not block a telemetry
// stream or a Release, compute energy (package energy does, from these series) or
// serve the API.
package history
