package admission

import (
	"cmp"
	"context"
	"slices"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// Limits of ListDecisions.
const (
	defaultDecisionLimit = 50
	maxDecisionLimit     = 1000
)

// QuotaView reports a user's quota state for the queue view: tokens charged in
// the current budget period, tokens held by requests in flight, the budget per
// period (0: unlimited) and the requests of the last minute.
type QuotaView interface {
	Usage(userID int64) (used, reserved, budget int64, rpm int)
}

// CircuitView reports a backend's circuit-breaker state: "closed", "open" or
// "half_open".
type CircuitView interface {
	Circuit(backendID int64) string
}

// AdminOptions configure a SchedulerService; every field is optional.
type AdminOptions struct {
	// Quota fills the quota fields of each user (default: zeros).
	Quota QuotaView
	// Circuits fills each backend's circuit state (default: the Registry when it
	// implements CircuitView, else "closed").
	Circuits CircuitView
	// Backends lists every backend, idle ones included (default: the Registry when
	// it implements BackendView, else the backends admission has granted slots on).
	Backends BackendView
}

// SchedulerService implements adminv1.SchedulerServiceServer over a Server: the
// queue view (waiting and in flight per model, user and backend, with each user's
// fair-share state) and the recent scheduling decisions. It is read-only.
type SchedulerService struct {
	adminv1.UnimplementedSchedulerServiceServer
	s    *Server
	opts AdminOptions
}

var _ adminv1.SchedulerServiceServer = (*SchedulerService)(nil)

// NewSchedulerService returns the admin scheduler service of s.
func NewSchedulerService(s *Server, opts AdminOptions) *SchedulerService {
	if opts.Circuits == nil {
		opts.Circuits, _ = s.reg.(CircuitView)
	}
	if opts.Backends == nil {
		opts.Backends, _ = s.reg.(BackendView)
	}
	return &SchedulerService{s: s, opts: opts}
}

// GetQueue returns the queue view.
func (a *SchedulerService) GetQueue(context.Context, *adminv1.GetQueueRequest) (*adminv1.GetQueueResponse, error) {
	var snap scheduler.Snapshot
	if qs, ok := a.s.sched.(QueueSnapshotter); ok {
		snap = qs.Snapshot()
	}
	now := a.s.opts.Now()
	resp := &adminv1.GetQueueResponse{FairnessWindow: durationpb.New(snap.FairnessWindow)}
	for _, m := range snap.Models {
		mq := &adminv1.ModelQueue{Model: m.Model, Waiting: int32(m.Waiting), InFlight: int32(m.InFlight)}
		if !m.Oldest.IsZero() {
			mq.OldestWait = durationpb.New(max(now.Sub(m.Oldest), 0))
		}
		resp.TotalWaiting += int64(m.Waiting)
		resp.Models = append(resp.Models, mq)
	}
	for _, u := range snap.Users {
		us := &adminv1.UserShare{
			UserId: u.UserID, Username: a.s.names.user(u.UserID),
			Weight: int32(u.Weight), Deficit: u.Deficit, BurstCredits: u.BurstCredits,
			RecentTokens: u.RecentTokens, Penalty: u.Penalty,
			Waiting: int32(u.Waiting), InFlight: int32(u.InFlight),
		}
		if a.opts.Quota != nil {
			used, reserved, budget, rpm := a.opts.Quota.Usage(u.UserID)
			us.TokensUsed, us.TokensReserved, us.TokenBudget, us.RequestsLastMinute = used, reserved, budget, int32(rpm)
		}
		resp.Users = append(resp.Users, us)
	}
	resp.Backends = a.backends(snap)
	for _, b := range resp.Backends {
		resp.TotalInFlight += int64(b.InFlight)
	}
	return resp, nil
}

// backends merges the listed backends, those admission has seen and those with
// slots in flight, by id.
func (a *SchedulerService) backends(snap scheduler.Snapshot) []*adminv1.BackendLoad {
	byID := make(map[int64]*adminv1.BackendLoad)
	put := func(b BackendInfo) {
		bl := byID[b.ID]
		if bl == nil {
			bl = &adminv1.BackendLoad{BackendId: b.ID}
			byID[b.ID] = bl
		}
		if b.Name != "" {
			bl.Name = b.Name
		}
		if b.MaxConcurrent > 0 {
			bl.MaxConcurrent = int32(b.MaxConcurrent)
		}
	}
	for _, b := range a.s.names.backendList() {
		put(b)
	}
	if a.opts.Backends != nil {
		for _, b := range a.opts.Backends.Backends() {
			put(b) // the registry's settings win over those last granted
		}
	}
	for _, b := range snap.Backends {
		put(BackendInfo{ID: b.BackendID})
		byID[b.BackendID].InFlight = int32(b.InFlight)
	}
	out := make([]*adminv1.BackendLoad, 0, len(byID))
	for _, b := range byID {
		b.Circuit = "closed"
		if a.opts.Circuits != nil {
			if c := a.opts.Circuits.Circuit(b.BackendId); c != "" {
				b.Circuit = c
			}
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(x, y *adminv1.BackendLoad) int { return cmp.Compare(x.BackendId, y.BackendId) })
	return out
}

// ListDecisions returns the latest decisions, newest first.
func (a *SchedulerService) ListDecisions(_ context.Context, req *adminv1.ListDecisionsRequest) (*adminv1.ListDecisionsResponse, error) {
	limit := int(req.GetLimit())
	switch {
	case limit < 0:
		return nil, invalidError("limit must not be negative")
	case limit == 0:
		limit = defaultDecisionLimit
	}
	limit = min(limit, maxDecisionLimit)
	ds := a.s.Decisions(DecisionFilter{UserID: req.GetUserId(), Model: req.GetModel(), Limit: limit})
	resp := &adminv1.ListDecisionsResponse{Decisions: make([]*adminv1.Decision, 0, len(ds))}
	for i := range ds {
		resp.Decisions = append(resp.Decisions, decisionProto(&ds[i]))
	}
	return resp, nil
}

func decisionProto(d *Decision) *adminv1.Decision {
	pd := &adminv1.Decision{
		RequestId: d.RequestID, DecidedAt: timestamppb.New(d.At), Model: d.Model,
		UserId: d.UserID, Username: d.Username, Weight: int32(d.Weight), Deficit: d.Deficit,
		Attempt: int32(d.Attempt), QueuePosition: int32(d.QueuePosition), Waited: durationpb.New(d.Waited),
		ChosenBackendId: d.BackendID, ChosenBackend: d.Backend,
		Candidates: make([]*adminv1.CandidateScore, 0, len(d.Candidates)),
	}
	for _, c := range d.Candidates {
		cs := &adminv1.CandidateScore{
			BackendId: c.BackendID, Backend: c.Backend, Eligible: c.Eligible,
			ExcludedReason: c.ExcludedReason, Total: c.Total,
		}
		if len(c.Components) > 0 {
			cs.Components = make(map[string]float64, len(c.Components))
			for _, comp := range c.Components {
				cs.Components[comp.Name] = comp.Value
			}
		}
		pd.Candidates = append(pd.Candidates, cs)
	}
	return pd
}
