package admission

import (
	"log/slog"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// BackendView lists the registered backends, for the queue view and for naming
// the backend of an adopted lease. The registry adapter implements it; a Registry
// that does not is answered from the backends admission has granted slots on.
type BackendView interface {
	Backends() []BackendInfo
}

// heartbeat renews the replica's leases and returns the ids this control plane
// does not know for it. Leases described by LeaseRefs that it neither holds nor
// remembers as settled were granted before a control-plane restart: they are
// adopted (a fresh lease with the same id, counted in flight on its backend), so
// that the in-flight counts stay exact.
func (s *Server) heartbeat(replica string, hb *controlplanev1.Heartbeat) []string {
	now := s.opts.Now()
	if refs := hb.GetLeases(); len(refs) > 0 {
		adopted := 0
		for _, ref := range s.leases.adoptable(refs) {
			if !adoptableRef(ref) {
				continue // renew reports it unknown
			}
			l := s.adoptLease(ref.GetLeaseId(), ref.GetRequestId(), ref.GetBackendId(), ref.GetUserId(), ref.GetApiKeyId(), ref.GetModel(), replica, now)
			if !s.leases.addNew(l) {
				// Released or adopted meanwhile: undo the count.
				s.sched.Release(l.grant, 0)
				s.metrics.inFlight(l.cand).Dec()
				continue
			}
			adopted++
		}
		if adopted > 0 {
			s.metrics.adopted.Add(float64(adopted))
			s.log.Info("adopted leases granted before a restart", slog.String("replica_id", replica), slog.Int("leases", adopted))
		}
	}
	ids := make([]string, 0, len(hb.GetLeaseIds())+len(hb.GetLeases()))
	ids = append(ids, hb.GetLeaseIds()...)
	for _, ref := range hb.GetLeases() {
		ids = append(ids, ref.GetLeaseId())
	}
	unknown := s.leases.renew(replica, ids, now.Add(s.opts.LeaseTTL))
	s.leases.record(replica, hb.GetLeases())
	return dedup(unknown)
}

// adoptableRef reports whether a LeaseRef says enough to recreate its lease.
func adoptableRef(ref *controlplanev1.LeaseRef) bool {
	return ref.GetLeaseId() != "" && ref.GetRequestId() != "" && ref.GetBackendId() > 0 &&
		ref.GetUserId() > 0 && ref.GetModel() != ""
}

// adoptLease builds a lease this process did not grant and counts its slot in
// flight. It is not in the lease table yet.
func (s *Server) adoptLease(id, requestID string, backendID, userID, apiKeyID int64, model, replica string, now time.Time) *lease {
	cand := s.backendOf(backendID)
	cand.Model = model
	// Weight 0: the policy keeps the weight it knows for the user.
	t := scheduler.Ticket{RequestID: requestID, UserID: userID, Model: model}
	l := &lease{
		id:        id,
		requestID: requestID,
		replica:   replica,
		cand:      cand,
		grant:     s.sched.Adopt(t, backendID),
		principal: Principal{UserID: userID, APIKeyID: apiKeyID},
		reserved:  Reservation{RequestID: requestID, Model: model},
		admitted:  now,
		expires:   now.Add(s.opts.LeaseTTL),
		adopted:   true,
	}
	s.metrics.inFlight(cand).Inc()
	return l
}

// backendOf describes a backend by id: as last granted, else as the registry
// lists it, else by id alone.
func (s *Server) backendOf(id int64) Candidate {
	if b, ok := s.names.backend(id); ok {
		return Candidate{BackendID: id, BackendName: b.Name, MaxConcurrent: b.MaxConcurrent}
	}
	if bv, ok := s.reg.(BackendView); ok {
		for _, b := range bv.Backends() {
			if b.ID == id {
				return Candidate{BackendID: id, BackendName: b.Name, MaxConcurrent: b.MaxConcurrent}
			}
		}
	}
	return Candidate{BackendID: id}
}

// dedup removes repeated ids (a heartbeat may list a lease both ways).
func dedup(ids []string) []string {
	if len(ids) < 2 {
		return ids
	}
	seen := make(map[string]struct{}, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}
