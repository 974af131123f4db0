package identity

import (
	"context"
	"errors"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
)

// Roles a principal can have, strongest first.
const (
	RoleAdmin   = "admin"
	RoleAuditor = "auditor"
	RoleUser    = "user"
)

// Role names the principal's role: admin, auditor or user.
func (p Principal) Role() string {
	switch {
	case p.IsAdmin:
		return RoleAdmin
	case p.IsAuditor:
		return RoleAuditor
	}
	return RoleUser
}

// AccountServer implements accountv1.AccountServiceServer: the caller's own
// account. The server's interceptor decides who may call which method (writes
// only with a browser session and its CSRF token); every handler acts on the
// principal in its context and nothing else.
type AccountServer struct {
	accountv1.UnimplementedAccountServiceServer
	svc   *Service
	st    Store
	acct  *Accounts
	usage UsageReader
}

var _ accountv1.AccountServiceServer = (*AccountServer)(nil)

// NewAccountServer returns the AccountService handlers.
func NewAccountServer(svc *Service, st Store, acct *Accounts) *AccountServer {
	return &AccountServer{svc: svc, st: st, acct: acct}
}

// caller returns the authenticated principal; the interceptor guarantees one.
func caller(ctx context.Context) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok || p.UserID == 0 {
		return Principal{}, ErrInvalidCredential
	}
	return p, nil
}

// WhoAmI describes the caller.
func (s *AccountServer) WhoAmI(ctx context.Context, _ *accountv1.WhoAmIRequest) (*accountv1.WhoAmIResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.st.GetUser(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	out := &accountv1.WhoAmIResponse{User: userToProto(u), Role: p.Role(), AuthenticatedBy: "api_key"}
	if p.SessionID != 0 {
		out.AuthenticatedBy = "session"
		out.CsrfToken = p.CSRFToken
		out.SessionExpiresAt = timestamppb.New(p.SessionExpiresAt)
	}
	return out, nil
}

// ListMyAPIKeys lists the caller's keys.
func (s *AccountServer) ListMyAPIKeys(ctx context.Context, _ *accountv1.ListMyAPIKeysRequest) (*accountv1.ListMyAPIKeysResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := s.st.ListAPIKeys(ctx, store.APIKeyFilter{UserID: p.UserID})
	if err != nil {
		return nil, err
	}
	return &accountv1.ListMyAPIKeysResponse{ApiKeys: s.svc.keysToProto(keys)}, nil
}

// CreateMyAPIKey mints an inference key for the caller with the group's
// lifetime, within the group's key limit.
func (s *AccountServer) CreateMyAPIKey(ctx context.Context, req *accountv1.CreateMyAPIKeyRequest) (*accountv1.CreateMyAPIKeyResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := firstInvalid(validateKeyName(req.GetName())); err != nil {
		return nil, err
	}
	k, full, err := s.svc.CreateKey(ctx, KeySpec{UserID: p.UserID, Name: req.GetName(), Scopes: []string{ScopeInference}})
	if err != nil {
		return nil, serviceErr(err)
	}
	return &accountv1.CreateMyAPIKeyResponse{ApiKey: s.svc.keyToProto(k), FullKey: full}, nil
}

// RenewMyAPIKey renews one of the caller's keys.
func (s *AccountServer) RenewMyAPIKey(ctx context.Context, req *accountv1.RenewMyAPIKeyRequest) (*accountv1.RenewMyAPIKeyResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetId() <= 0 {
		return nil, firstInvalid(errors.New("id is required"))
	}
	k, err := s.acct.RenewKey(ctx, p.UserID, req.GetId())
	if err != nil {
		return nil, serviceErr(err)
	}
	return &accountv1.RenewMyAPIKeyResponse{ApiKey: s.svc.keyToProto(k)}, nil
}

// RevokeMyAPIKey revokes one of the caller's keys.
func (s *AccountServer) RevokeMyAPIKey(ctx context.Context, req *accountv1.RevokeMyAPIKeyRequest) (*accountv1.RevokeMyAPIKeyResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetId() <= 0 {
		return nil, firstInvalid(errors.New("id is required"))
	}
	k, err := s.acct.RevokeKey(ctx, p.UserID, req.GetId())
	if err != nil {
		return nil, serviceErr(err)
	}
	return &accountv1.RevokeMyAPIKeyResponse{ApiKey: s.svc.keyToProto(k)}, nil
}

// ChangePassword changes the caller's password, keeping only the caller's own
// session.
func (s *AccountServer) ChangePassword(ctx context.Context, req *accountv1.ChangePasswordRequest) (*accountv1.ChangePasswordResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := firstInvalid(validatePassword(req.GetNewPassword())); err != nil {
		return nil, err
	}
	keep, _ := SessionTokenFrom(ctx)
	n, err := s.acct.ChangePassword(ctx, p.UserID, req.GetCurrentPassword(), req.GetNewPassword(), keep)
	if err != nil {
		return nil, serviceErr(err)
	}
	return &accountv1.ChangePasswordResponse{SessionsEnded: int32(n)}, nil
}

// CreateQuotaRequest files a quota request for the caller.
func (s *AccountServer) CreateQuotaRequest(ctx context.Context, req *accountv1.CreateQuotaRequestRequest) (*accountv1.CreateQuotaRequestResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.acct.FileQuotaRequest(ctx, p.UserID, req.GetRequestedTokens(), req.GetJustification())
	if err != nil {
		return nil, serviceErr(err)
	}
	return &accountv1.CreateQuotaRequestResponse{QuotaRequest: quotaRequestToProto(r)}, nil
}

// ListMyQuotaRequests lists the caller's quota requests, newest first.
func (s *AccountServer) ListMyQuotaRequests(ctx context.Context, _ *accountv1.ListMyQuotaRequestsRequest) (*accountv1.ListMyQuotaRequestsResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	reqs, err := s.acct.ListQuotaRequests(ctx, store.QuotaRequestFilter{UserID: p.UserID})
	if err != nil {
		return nil, err
	}
	out := quotaRequestsToProto(reqs)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return &accountv1.ListMyQuotaRequestsResponse{QuotaRequests: out}, nil
}
