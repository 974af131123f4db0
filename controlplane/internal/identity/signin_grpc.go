package identity

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// SignInServer implements controlplanev1.SignInServiceServer for data-plane
// replicas, which serve the login and logout pages but keep no state.
type SignInServer struct {
	controlplanev1.UnimplementedSignInServiceServer
	acct *Accounts
	sso  *SSO
}

var _ controlplanev1.SignInServiceServer = (*SignInServer)(nil)

// NewSignInServer returns the SignInService handlers; sso may be nil when no
// OpenID provider is configured.
func NewSignInServer(acct *Accounts, sso *SSO) *SignInServer {
	return &SignInServer{acct: acct, sso: sso}
}

// PasswordLogin checks a password and opens a session.
func (s *SignInServer) PasswordLogin(ctx context.Context, req *controlplanev1.PasswordLoginRequest) (*controlplanev1.PasswordLoginResponse, error) {
	// Oversized or malformed input is a failed sign-in like any other: the
	// answer must not depend on what the account is.
	if len(req.GetUsername()) > maxUsernameLen || len(req.GetPassword()) > maxPasswordLen ||
		!utf8.ValidString(req.GetUsername()) || len(req.GetClientIp()) > 64 {
		return nil, ErrLoginFailed
	}
	ss, err := s.acct.PasswordLogin(ctx, LoginRequest{
		Username: req.GetUsername(), Password: req.GetPassword(), ClientIP: req.GetClientIp(), UserAgent: req.GetUserAgent(),
	})
	if err != nil {
		return nil, err
	}
	return &controlplanev1.PasswordLoginResponse{
		SessionToken: ss.Token, CsrfToken: ss.CSRFToken, ExpiresAt: timestamppb.New(ss.ExpiresAt),
		IdleTimeoutSeconds: int64(ss.Idle.Seconds()),
	}, nil
}

// Logout ends a session, or every session of its user.
func (s *SignInServer) Logout(ctx context.Context, req *controlplanev1.LogoutRequest) (*controlplanev1.LogoutResponse, error) {
	if req.GetSessionToken() == "" {
		return nil, firstInvalid(errors.New("session_token is required"))
	}
	n, err := s.acct.Logout(ctx, req.GetSessionToken(), req.GetCsrfToken(), req.GetEverywhere())
	if err != nil {
		return nil, err
	}
	return &controlplanev1.LogoutResponse{SessionsEnded: int32(n)}, nil
}

// BeginOIDC starts a sign-in at a configured OpenID provider.
func (s *SignInServer) BeginOIDC(ctx context.Context, req *controlplanev1.BeginOIDCRequest) (*controlplanev1.BeginOIDCResponse, error) {
	if s.sso == nil {
		return nil, fmt.Errorf("%w %q: none is configured", ErrUnknownProvider, req.GetProvider())
	}
	if len(req.GetNext()) > 2048 {
		return nil, firstInvalid(errors.New("next is longer than 2048 bytes"))
	}
	u, binding, err := s.sso.Begin(ctx, req.GetProvider(), req.GetNext())
	if err != nil {
		return nil, err
	}
	return &controlplanev1.BeginOIDCResponse{AuthorizationUrl: u, Binding: binding, TtlSeconds: int64(oidcFlowTTL.Seconds())}, nil
}

// CompleteOIDC finishes a sign-in and opens a session.
func (s *SignInServer) CompleteOIDC(ctx context.Context, req *controlplanev1.CompleteOIDCRequest) (*controlplanev1.CompleteOIDCResponse, error) {
	if s.sso == nil || req.GetState() == "" || req.GetCode() == "" || req.GetBinding() == "" ||
		len(req.GetState()) > 128 || len(req.GetCode()) > 4096 || len(req.GetBinding()) > 128 {
		return nil, ErrSSOFailed
	}
	ss, next, err := s.sso.Complete(ctx, req.GetState(), req.GetCode(), req.GetBinding(), req.GetClientIp(), req.GetUserAgent())
	if err != nil {
		return nil, err
	}
	return &controlplanev1.CompleteOIDCResponse{Next: next, Session: &controlplanev1.PasswordLoginResponse{
		SessionToken: ss.Token, CsrfToken: ss.CSRFToken, ExpiresAt: timestamppb.New(ss.ExpiresAt),
		IdleTimeoutSeconds: int64(ss.Idle.Seconds()),
	}}, nil
}

// ListProviders names the configured OpenID providers.
func (s *SignInServer) ListProviders(context.Context, *controlplanev1.ListProvidersRequest) (*controlplanev1.ListProvidersResponse, error) {
	out := &controlplanev1.ListProvidersResponse{}
	if s.sso == nil {
		return out, nil
	}
	for _, p := range s.sso.Providers() {
		display := p[1]
		if display == "" {
			display = p[0]
		}
		out.Providers = append(out.Providers, &controlplanev1.Provider{Name: p[0], DisplayName: display})
	}
	return out, nil
}
