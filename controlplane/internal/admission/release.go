package admission

import (
	"context"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Release settles a lease with its usage and outcome and frees its slot. It is
// idempotent: a lease already settled (released, expired or reclaimed) answers
// already_settled and counts nothing twice.
//
// A Release for a lease this process never knew (it was granted before a
// control-plane restart and not yet adopted from a heartbeat) is settled all the
// same when it carries the lease's identity (request_id, backend_id, user_id,
// model): the usage is charged once, the lease id is remembered as settled, and a
// repeat answers already_settled.
func (s *Server) Release(ctx context.Context, req *controlplanev1.ReleaseRequest) (*controlplanev1.ReleaseResponse, error) {
	id := req.GetLeaseId()
	if id == "" {
		return nil, invalidError("lease_id is required")
	}
	now := s.opts.Now()
	l, found := s.leases.take(id, identifiesLease(req), now)
	switch found {
	case leaseAlreadySettled:
		s.metrics.releases.WithLabelValues("already_settled").Inc()
		return &controlplanev1.ReleaseResponse{AlreadySettled: true}, nil
	case leaseUnknown:
		return nil, fmt.Errorf("release %q: %w", id, ErrLeaseNotFound)
	case leaseClaimed:
		// Counted in flight only for the moment it takes to settle it, so that the
		// policy charges the usage like any other.
		l = s.adoptLease(id, req.GetRequestId(), req.GetBackendId(), req.GetUserId(), 0, req.GetModel(), "", now)
		s.metrics.orphans.Inc()
	}
	outcome := req.GetOutcome()
	usage := req.GetUsage()
	s.free(l, Settlement{
		Outcome:          outcome,
		PromptTokens:     max(usage.GetPromptTokens(), 0),
		CompletionTokens: max(usage.GetCompletionTokens(), 0),
	})
	if l.noSlot {
		// No backend served it: nothing to tell the registry or the history.
		s.metrics.releases.WithLabelValues(outcomeLabel(outcome)).Inc()
		return &controlplanev1.ReleaseResponse{}, nil
	}
	backendID := l.cand.BackendID
	switch outcome {
	case controlplanev1.Outcome_OUTCOME_SUCCESS:
		s.reg.Observe(backendID, registry.Observation{
			TTFT:             max(req.GetTtft().AsDuration(), 0),
			Duration:         max(req.GetDuration().AsDuration(), 0),
			CompletionTokens: max(usage.GetCompletionTokens(), 0),
		})
		s.reg.MarkLoaded(backendID, l.cand.Model)
	case controlplanev1.Outcome_OUTCOME_REJECTED:
		// The backend answered (a 4xx): it is alive, but how fast it refused says
		// nothing about how fast it serves.
		s.reg.Observe(backendID, registry.Observation{})
	case controlplanev1.Outcome_OUTCOME_BACKEND_ERROR:
		s.reg.Observe(backendID, registry.Observation{Failure: true})
	}
	s.reportSettled(l, req, now)
	// A client that went away says nothing about the backend's health.
	s.metrics.observeRelease(l, outcome, usage, req.GetTtft().AsDuration(), req.GetDuration().AsDuration())
	return &controlplanev1.ReleaseResponse{}, nil
}

// identifiesLease reports whether a Release says enough to be settled without its
// lease.
func identifiesLease(req *controlplanev1.ReleaseRequest) bool {
	return req.GetRequestId() != "" && req.GetBackendId() > 0 && req.GetUserId() > 0 && req.GetModel() != ""
}

// free ends a lease that was just taken out of the table: the slot goes back to the
// scheduler (which hands it to a waiter) and the reservation is settled.
func (s *Server) free(l *lease, st Settlement) {
	if st.Lost && l.progress.reported {
		// The replica said how far it got: charge that, not the reservation. What
		// it generated after its last heartbeat (at most one heartbeat interval)
		// goes uncharged.
		st.Lost = false
		st.PromptTokens, st.CompletionTokens = l.progress.prompt, l.progress.completion
	}
	st.Reservation = l.reserved
	st.Granted = true
	st.Adopted = l.adopted
	cost := l.reserved.Tokens
	if !st.Lost {
		cost = st.PromptTokens + st.CompletionTokens
	}
	if l.noSlot {
		s.acct.Settle(l.principal, st)
		return
	}
	s.sched.Release(l.grant, cost)
	if l.trial && !saysAboutBackend(st.Outcome) {
		s.reg.AbandonTrial(l.cand.BackendID)
	}
	s.metrics.inFlight(l.cand).Dec()
	if !st.Lost {
		s.served.add(s.opts.Now(), st.PromptTokens, st.CompletionTokens)
	}
	s.acct.Settle(l.principal, st)
}

// saysAboutBackend reports whether an outcome tells the circuit breaker anything:
// a client that went away (or a lease that was lost) does not.
func saysAboutBackend(o controlplanev1.Outcome) bool {
	switch o {
	case controlplanev1.Outcome_OUTCOME_SUCCESS, controlplanev1.Outcome_OUTCOME_REJECTED, controlplanev1.Outcome_OUTCOME_BACKEND_ERROR:
		return true
	}
	return false
}

// reportSettled hands a request that reached its backend to the usage sink.
func (s *Server) reportSettled(l *lease, req *controlplanev1.ReleaseRequest, now time.Time) {
	if s.opts.Usage == nil || req.GetOutcome() == controlplanev1.Outcome_OUTCOME_UNSPECIFIED {
		return
	}
	started := l.admitted
	if started.After(now) {
		started = now
	}
	first := started.Add(max(req.GetTtft().AsDuration(), 0))
	if first.After(now) {
		first = now
	}
	s.opts.Usage.Settled(Settled{
		RequestID: l.requestID, BackendID: l.cand.BackendID, Model: l.cand.Model, Principal: l.principal,
		Outcome: req.GetOutcome(), Admitted: started, FirstToken: first, Ended: now, QueueWait: l.waited,
		PromptTokens:     max(req.GetUsage().GetPromptTokens(), 0),
		CompletionTokens: max(req.GetUsage().GetCompletionTokens(), 0),
	})
}
