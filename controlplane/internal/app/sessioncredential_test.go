package app

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
)

type sessionsByToken map[string]identity.Principal

func (s sessionsByToken) VerifySession(_ context.Context, token string) (identity.Principal, error) {
	p, ok := s[token]
	if !ok {
		return identity.Principal{}, identity.ErrSessionInvalid
	}
	return p, nil
}

// TestSessionCredential: the web chat's "session:<token>:<csrf>" is the
// session's user, with inference and their group's limits, only with the
// session's own CSRF token; anything else is refused.
func TestSessionCredential(t *testing.T) {
	t.Parallel()
	sessions := sessionsByToken{"tok": {UserID: 7, Username: "maria", GroupID: 2, Group: "student", Weight: 1, RPMLimit: 30,
		TokenBudget: 1000, SessionID: 4, CSRFToken: "csrf-1"}}
	a := identityAdapter{s: nil, sessions: sessions}
	p, err := a.Verify(t.Context(), "session:tok:csrf-1")
	require.NoError(t, err)
	require.Equal(t, int64(7), p.UserID)
	require.True(t, p.Inference, "a session may chat")
	require.Zero(t, p.APIKeyID)
	require.Equal(t, int64(1000), p.TokenBudget)
	require.Equal(t, 30, p.RPMLimit)

	for cred, want := range map[string]error{
		"session:tok:csrf-2": identity.ErrCSRF,
		"session:tok:":       identity.ErrInvalidCredential,
		"session:tok":        identity.ErrInvalidCredential,
		"session::csrf-1":    identity.ErrInvalidCredential,
		"session:nope:x":     identity.ErrSessionInvalid,
	} {
		_, err := a.Verify(t.Context(), cred)
		require.ErrorIs(t, err, want, cred)
	}
}
