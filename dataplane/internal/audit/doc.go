// Package audit builds each inference request's audit record as the request
// runs and ships the records to the control plane after the client has been
// answered.
//
// An Entry travels with a request (the HTTP middleware creates it, surfaces
// pass it to the relay on the relay.Call, the relay fills it: the request, each
// attempt's lease and release, the answer's chunks or response); the
// middleware completes it with the status the client got and hands it to the
// Shipper, which batches records, sends them over a Sender (cpclient's
// AuditIngestService stream) and waits for each batch's acknowledgement. While
// the control plane does not acknowledge, batches go to a bounded on-disk
// spool and are replayed when it does. When the spool is full the policy
// decides: fail closed (new inference requests are refused with 503) or fail
// open (records are dropped, counted and logged).
//
// It must not talk gRPC (cpclient does), parse client dialects or log
// request content.
package audit
