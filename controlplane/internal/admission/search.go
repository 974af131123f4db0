package admission

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// admitSearch admits a web search (OPERATION_SEARCH) for a verified principal
// with the inference scope. A search runs on the data plane against an outside
// provider, not on a backend, so no backend is picked and no scheduler slot is
// taken: the request is rate limited and its charge (prompt_tokens_estimate,
// the data plane's configured per-search charge) reserved like any other's, and
// the lease only carries that reservation until Release settles it (or the
// lease expires, and the accountant charges it as lost).
func (s *Server) admitSearch(ctx context.Context, req *controlplanev1.AdmitRequest, p Principal) (*controlplanev1.AdmitResponse, error) {
	res := Reservation{RequestID: req.GetRequestId(), Model: req.GetModel(), Tokens: req.GetPromptTokensEstimate()}
	if err := s.acct.Reserve(ctx, p, res); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	l := &lease{
		id:        newLeaseID(),
		requestID: req.GetRequestId(),
		replica:   req.GetReplicaId(),
		cand:      Candidate{Model: req.GetModel()},
		principal: p,
		reserved:  res,
		admitted:  now,
		expires:   now.Add(s.opts.LeaseTTL),
		noSlot:    true,
	}
	s.leases.add(l)
	return &controlplanev1.AdmitResponse{Lease: &controlplanev1.Lease{
		LeaseId:   l.id,
		RequestId: l.requestID,
		Model:     req.GetModel(),
		ExpiresAt: timestamppb.New(l.expires),
		Principal: &controlplanev1.Principal{
			UserId:   p.UserID,
			Username: p.Username,
			ApiKeyId: p.APIKeyID,
			Group:    p.Group,
		},
	}}, nil
}
