package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// allExcludedRetryAfter is the Retry-After of ErrAllExcluded.
const allExcludedRetryAfter = 5 * time.Second

// Admit verifies the credential, queues the request and returns a lease once a
// backend slot is granted. A refused Admit holds nothing.
func (s *Server) Admit(ctx context.Context, req *controlplanev1.AdmitRequest) (*controlplanev1.AdmitResponse, error) {
	resp, err := s.admit(ctx, req, nil)
	s.metrics.admitted(err)
	return resp, err
}

// admit runs one admission; report, when set, hears the request's progress
// while it waits (when the scheduler is a Watcher).
func (s *Server) admit(ctx context.Context, req *controlplanev1.AdmitRequest, report func(scheduler.Progress)) (*controlplanev1.AdmitResponse, error) {
	if err := validateAdmit(req); err != nil {
		return nil, err
	}
	if err := s.gateOpen(); err != nil {
		return nil, err
	}
	p, err := s.ident.Verify(ctx, req.GetCredential())
	if err != nil {
		return nil, err
	}
	if !p.Inference {
		return nil, ErrPermissionDenied
	}
	if req.GetOperation() == controlplanev1.Operation_OPERATION_SEARCH {
		return s.admitSearch(ctx, req, p)
	}
	pl, err := s.newPlan(req)
	if err != nil {
		return nil, err
	}
	defer s.plans.Put(pl)
	res := Reservation{RequestID: req.GetRequestId(), Model: req.GetModel(), Tokens: pl.cost}
	if err := s.acct.Reserve(ctx, p, res); err != nil {
		return nil, err
	}
	g, err := s.acquire(ctx, scheduler.Ticket{
		RequestID: req.GetRequestId(),
		UserID:    p.UserID,
		Model:     req.GetModel(),
		Cost:      pl.cost,
		Weight:    max(p.Weight, 1),
	}, pl.pick, report)
	if err == nil && ctx.Err() != nil {
		// The caller left while the slot was granted; nobody would release it.
		s.sched.Release(g, 0)
		err = fmt.Errorf("admit: %w", ctx.Err())
	}
	if err != nil {
		if pl.trial {
			// The slot was granted and dropped: the trial never ran.
			s.reg.AbandonTrial(pl.chosen.BackendID)
		}
		s.acct.Settle(p, Settlement{Reservation: res})
		return nil, err
	}
	// A user with a budget never generates more than was reserved: without a
	// client limit, the allowance becomes the backend's limit.
	maxOut := req.GetMaxOutputTokens()
	if maxOut == 0 && p.TokenBudget > 0 {
		maxOut = pl.allowance
	}
	now := s.opts.Now()
	l := &lease{
		id:        newLeaseID(),
		requestID: req.GetRequestId(),
		replica:   req.GetReplicaId(),
		cand:      pl.chosen,
		grant:     g,
		principal: p,
		reserved:  res,
		trial:     pl.trial,
		admitted:  now,
		expires:   now.Add(s.opts.LeaseTTL),
		waited:    g.Waited,
	}
	s.leases.add(l)
	s.metrics.inFlight(l.cand).Inc()
	s.metrics.wait.Observe(g.Waited.Seconds())
	s.record(req, p, g, pl, now)
	return &controlplanev1.AdmitResponse{
		Lease:         s.leaseProto(l, req, maxOut),
		QueuePosition: int32(g.Position),
		Queued:        durationpb.New(g.Waited),
	}, nil
}

// gateOpen refuses while the service is offline, with the administrators'
// message and a Retry-After.
func (s *Server) gateOpen() error {
	if s.opts.Gate == nil {
		return nil
	}
	msg, off := s.opts.Gate.Offline()
	if !off {
		return nil
	}
	return &retryError{err: ErrServiceOffline, msg: "the service is offline for maintenance: " + msg, after: offlineRetryAfter}
}

func validateAdmit(req *controlplanev1.AdmitRequest) error {
	switch {
	case req.GetRequestId() == "":
		return invalidError("request_id is required")
	case req.GetModel() == "":
		return invalidError("model is required")
	case req.GetPromptTokensEstimate() < 0:
		return invalidError("prompt_tokens_estimate must not be negative")
	case req.GetMaxOutputTokens() < 0:
		return invalidError("max_output_tokens must not be negative")
	}
	return nil
}

// plan is one Admit's view of its candidates; its pick method runs under the
// scheduler's lock and refreshes the candidates when the registry changed.
type plan struct {
	s       *Server
	req     *controlplanev1.AdmitRequest
	version int64
	// cands are the candidates that passed the hard filters, in fits' storage.
	cands []Candidate
	fits  []Candidate
	// filtered are the registry's candidates that a hard filter removed.
	filtered []filteredCandidate
	cost     int64
	// allowance is the output part of cost.
	allowance int64
	// scores are the verdicts on cands of the latest pick.
	scores []Score
	// chosen is set by pick when it places the ticket; trial is true when the
	// request is the chosen backend's half-open circuit trial.
	chosen Candidate
	trial  bool
}

// filteredCandidate is a candidate removed before scoring, and why.
type filteredCandidate struct {
	cand   Candidate
	reason string
}

// newPlan returns a plan from the pool (its buffers are reused; put it back once
// the scheduler is done with it) with the request's candidates and cost.
func (s *Server) newPlan(req *controlplanev1.AdmitRequest) (*plan, error) {
	pl, _ := s.plans.Get().(*plan)
	if pl == nil {
		pl = &plan{s: s}
	}
	pl.req, pl.chosen, pl.trial = req, Candidate{}, false
	if err := pl.refresh(); err != nil {
		s.plans.Put(pl)
		return nil, err
	}
	prompt := req.GetPromptTokensEstimate()
	out := req.GetMaxOutputTokens()
	if out == 0 {
		switch req.GetOperation() {
		case controlplanev1.Operation_OPERATION_CHAT, controlplanev1.Operation_OPERATION_COMPLETION:
			out = s.opts.DefaultMaxTokens
		}
	}
	var widest int64
	for _, c := range pl.cands {
		n := s.contextLength(c)
		if n == 0 {
			widest = 0
			break
		}
		widest = max(widest, n)
	}
	if widest > 0 {
		out = min(out, widest-prompt)
	}
	pl.cost, pl.allowance = prompt+out, out
	return pl, nil
}

// refresh loads the candidates that can serve the request: the registry's hard
// filters, minus the backends that already failed it, minus those whose context
// window cannot hold the prompt.
func (pl *plan) refresh() error {
	s, req := pl.s, pl.req
	pl.version = s.reg.Version()
	pl.filtered = pl.filtered[:0]
	var cands []Candidate
	var err error
	if sc, ok := s.reg.(Screener); ok {
		var removed []Exclusion
		cands, removed, err = sc.Screen(req.GetModel(), req.GetOperation(), req.GetNeeds())
		for _, x := range removed {
			pl.filtered = append(pl.filtered, filteredCandidate{Candidate{BackendID: x.BackendID, BackendName: x.BackendName}, x.Reason})
		}
	} else {
		cands, err = s.reg.Candidates(req.GetModel(), req.GetOperation(), req.GetNeeds())
	}
	if err != nil {
		return err
	}
	ex := req.GetExcludedBackendIds()
	prompt := req.GetPromptTokensEstimate()
	var widest int64
	fits := pl.fits[:0]
	excluded := 0
	for _, c := range cands {
		if slices.Contains(ex, c.BackendID) {
			excluded++
			pl.filtered = append(pl.filtered, filteredCandidate{c, reasonExcluded})
			continue
		}
		if n := s.contextLength(c); n > 0 && prompt >= n {
			widest = max(widest, n)
			pl.filtered = append(pl.filtered, filteredCandidate{c, reasonContext})
			continue
		}
		fits = append(fits, c)
	}
	switch {
	case len(cands) == 0:
		return &retryError{err: ErrAllExcluded, after: allExcludedRetryAfter,
			msg: fmt.Sprintf("model %q: no healthy backend available", req.GetModel())}
	case excluded == len(cands):
		return &retryError{err: ErrAllExcluded, after: allExcludedRetryAfter,
			msg: fmt.Sprintf("model %q: every backend serving it already failed this request", req.GetModel())}
	}
	if len(fits) == 0 {
		return fmt.Errorf("%w: the prompt (about %d tokens) does not fit the context window of model %q (%d tokens)",
			ErrContextExceeded, prompt, req.GetModel(), widest)
	}
	pl.cands, pl.fits = fits, fits
	return nil
}

// pick is the scheduler.Picker of the plan.
func (pl *plan) pick(load scheduler.Load) (int64, bool, error) {
	if pl.s.reg.Version() != pl.version {
		if err := pl.refresh(); err != nil {
			return 0, false, err
		}
	}
	if cap(pl.scores) < len(pl.cands) {
		pl.scores = make([]Score, len(pl.cands))
	}
	pl.scores = pl.scores[:len(pl.cands)]
	i, trial := choose(pl.s.scorer, pl.s.reg, ScoreInput{Model: pl.req.GetModel(), Tokens: pl.cost, Candidates: pl.cands, Load: load}, pl.scores)
	if i < 0 {
		return 0, false, nil
	}
	pl.chosen, pl.trial = pl.cands[i], trial
	return pl.chosen.BackendID, true, nil
}

// contextLength is the effective window of a candidate: its model's maximum capped
// by the configured cap; 0 when neither is known.
func (s *Server) contextLength(c Candidate) int64 {
	n, limit := c.ContextLength, s.reg.ContextCap()
	switch {
	case n <= 0:
		return max(limit, 0)
	case limit > 0:
		return min(n, limit)
	}
	return n
}

// leaseProto renders a lease; want is the output cap (0: none), which is lowered
// to what the chosen backend's context window leaves after the prompt.
func (s *Server) leaseProto(l *lease, req *controlplanev1.AdmitRequest, want int64) *controlplanev1.Lease {
	ctxLen := s.contextLength(l.cand)
	var maxOut int64
	if want > 0 {
		maxOut = want
		if ctxLen > 0 {
			maxOut = min(want, ctxLen-req.GetPromptTokensEstimate())
		}
	}
	return &controlplanev1.Lease{
		LeaseId:         l.id,
		RequestId:       l.requestID,
		BackendId:       l.cand.BackendID,
		BackendName:     l.cand.BackendName,
		BackendUrl:      l.cand.URL,
		Engine:          l.cand.Engine,
		Model:           l.cand.Model,
		ContextLength:   ctxLen,
		MaxOutputTokens: maxOut,
		ExpiresAt:       timestamppb.New(l.expires),
		Principal: &controlplanev1.Principal{
			UserId:   l.principal.UserID,
			Username: l.principal.Username,
			ApiKeyId: l.principal.APIKeyID,
			Group:    l.principal.Group,
		},
		Simulated: l.cand.Simulated,
	}
}

// ListModels returns the catalog to any valid credential.
func (s *Server) ListModels(ctx context.Context, req *controlplanev1.ListModelsRequest) (*controlplanev1.ListModelsResponse, error) {
	if _, err := s.ident.Verify(ctx, req.GetCredential()); err != nil {
		return nil, err
	}
	return &controlplanev1.ListModelsResponse{Models: s.reg.Catalog()}, nil
}

// admitResult is the result label of mindrouter_admissions_total.
func admitResult(err error) string {
	switch {
	case err == nil:
		return "granted"
	case errors.Is(err, scheduler.ErrQueueFull):
		return "queue_full"
	case errors.Is(err, scheduler.ErrQueueTimeout):
		return "queue_timeout"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled"
	case errors.Is(err, ErrContextExceeded):
		return "context_exceeded"
	case errors.Is(err, ErrAllExcluded):
		return "no_backend"
	case errors.Is(err, ErrPermissionDenied):
		return "denied"
	case errors.Is(err, ErrInvalidRequest):
		return "invalid"
	}
	return "refused"
}
