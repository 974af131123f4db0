package identity

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
)

// Usage is a user's token usage now, as the quota manager counts it.
type Usage struct {
	TokensUsed, LifetimeTokensUsed, TokensReserved int64
	PeriodStart, PeriodEnd                         time.Time
	RequestsLastMinute, InFlight                   int
}

// UsageReader reads a user's usage; the quota manager is one (through an
// adapter in app), so that identity does not depend on quota.
type UsageReader interface {
	Usage(userID int64) Usage
}

// WithUsage makes GetMyUsage answer from u and returns s.
func (s *AccountServer) WithUsage(u UsageReader) *AccountServer {
	s.usage = u
	return s
}

// GetMyUsage returns the caller's usage against the budget and rate limit the
// principal carries (the user's overrides, else the group's).
func (s *AccountServer) GetMyUsage(ctx context.Context, _ *accountv1.GetMyUsageRequest) (*accountv1.GetMyUsageResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	resp := &accountv1.GetMyUsageResponse{TokenBudget: p.TokenBudget, RpmLimit: int32(p.RPMLimit)}
	if s.usage == nil {
		return resp, nil
	}
	u := s.usage.Usage(p.UserID)
	resp.TokensUsed, resp.LifetimeTokensUsed, resp.TokensReserved = u.TokensUsed, u.LifetimeTokensUsed, u.TokensReserved
	resp.PeriodStart, resp.PeriodEnd = timestamppb.New(u.PeriodStart), timestamppb.New(u.PeriodEnd)
	resp.RequestsLastMinute, resp.InFlight = int32(u.RequestsLastMinute), int32(u.InFlight)
	return resp, nil
}
