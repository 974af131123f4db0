package identity

import (
	"context"
	"errors"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// SignInServer implements controlplanev1.SignInServiceServer for data-plane
// replicas, which serve the login and logout pages but keep no state.
type SignInServer struct {
	controlplanev1.UnimplementedSignInServiceServer
	acct *Accounts
}

var _ controlplanev1.SignInServiceServer = (*SignInServer)(nil)

// NewSignInServer returns the SignInService handlers.
func NewSignInServer(acct *Accounts) *SignInServer { return &SignInServer{acct: acct} }

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
