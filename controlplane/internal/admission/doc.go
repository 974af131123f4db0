// Package admission serves the data plane's hot path: AdmissionService (Admit,
// Release, ListModels) and SessionService (one stream per data-plane replica).
//
// It owns the lease table: every granted slot is a lease, indexed by lease id and by
// the replica that holds it, with an expiry that the replica's Session heartbeats
// renew. A lease ends exactly once — by Release, by expiry (the sweeper in Run), or
// by reclamation when its replica's Session stays gone longer than the grace period —
// and whichever comes first frees the slot; later attempts see "already settled".
//
// Admit runs: verify the credential (Identity) → require the inference scope → hard
// filters (Registry.Candidates) minus the backends that already failed the request →
// context-window check → quota reservation (Accountant) → wait for a slot
// (Scheduler, the queue the caller built and passed to New) on the backend
// the Scorer ranks best among those with a free slot → lease → a Decision in the
// bounded decision log. Nothing on this path touches the database; the only locks
// are short ones (the scheduler's, the lease table's, the decision log's), never
// held while a request waits.
//
// After a control-plane restart, leases granted by the previous process come back
// two ways: a replica's heartbeat that describes them (LeaseRef) adopts them, so
// the in-flight counts are exact again, and a Release that carries the lease's
// identity is settled even when the lease was never adopted. Either way the usage
// is settled once (Settlement.Adopted), keyed by lease id.
//
// SchedulerService serves the admin view of the queues and of the decisions.
//
// Admission consumes identity, registry, scoring and quota through the small
// interfaces in deps.go, over its own plain types, so that its tests run on
// hand-written fakes; the composition root (app) fits the real identity.Service,
// registry.Registry, scoring table and quota.Manager to them. Their
// errors are passed through unchanged for the server's one error mapping, and
// admission's own refusals wrap or reuse theirs where the meaning is the same.
//
// The package must not decide the wire status of errors (server does), persist
// anything, or log credentials or prompt content.
package admission
