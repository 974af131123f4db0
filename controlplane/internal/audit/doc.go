// Package audit is the control plane's side of the audit trail: it takes
// records from data planes (AuditIngestService), writes them to the store in
// batches, spools them to local disk while the database is unreachable and
// replays the spool in order when it returns; it serves the admin API's
// searches and exports (AuditService) and runs retention.
//
// Durability contract: a batch is acknowledged only once it is committed to the
// database or written and synced to the spool. Records are stored once by
// request id, so a batch replayed by a data plane, or by the spool, never
// duplicates. The group's audit settings (prompts, responses) are applied when
// a record reaches the database.
//
// It must not log prompt or response content; that belongs in the store,
// behind the admin API's roles.
package audit
