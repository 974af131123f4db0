package identity

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Scopes a key can carry. A key without scopes may only run inference.
const (
	ScopeInference = "inference"
	ScopeAdmin     = "admin"
)

var (
	// ErrInvalidCredential means the key is malformed or unknown.
	ErrInvalidCredential = errors.New("invalid API key")
	// ErrCredentialRevoked means the key was revoked.
	ErrCredentialRevoked = errors.New("API key is revoked")
	// ErrCredentialExpired means the key is past its expiry.
	ErrCredentialExpired = errors.New("API key has expired")
	// ErrUserInactive means the key's owner is disabled or deleted.
	ErrUserInactive = errors.New("user account is inactive")
	// ErrPermissionDenied means the credential is valid but may not do this.
	ErrPermissionDenied = errors.New("this credential is not permitted to perform that action")
	// ErrKeyLimit means the user already holds as many active keys as the group allows.
	ErrKeyLimit = errors.New("API key limit reached")
)

// Principal is an authenticated caller: the key, its owner and the owner's group
// with the limits that apply. Two request rates apply: the user's (RPMLimit, shared
// by all of the user's keys) and, when the key has one, the key's own (KeyRPMLimit).
type Principal struct {
	UserID    int64
	Username  string
	APIKeyID  int64
	KeyPrefix string
	GroupID   int64
	Group     string
	IsAdmin   bool
	IsAuditor bool
	// Scopes of the key; shared with the verification cache, so never modify it.
	Scopes []string
	// Weight is the scheduler weight: the user's override, else the group's.
	Weight int
	// RPMLimit is the user's requests per minute over all of their keys, 0 for
	// unlimited: the user's override, else the group's.
	RPMLimit int
	// KeyRPMLimit is this key's own requests per minute, applied besides RPMLimit;
	// 0 when the key has no limit of its own.
	KeyRPMLimit int
	// TokenBudget is the user's tokens per budget period, 0 for unlimited: the
	// user's override, else the group's.
	TokenBudget int64
	// SessionID is set when the caller signed in with a browser session rather
	// than an API key; CSRFToken is then what its state-changing calls must
	// echo, and SessionExpiresAt the session's absolute end.
	SessionID        int64
	CSRFToken        string
	SessionExpiresAt time.Time
}

// HasScope reports whether the key allows s. A key without scopes allows inference
// only; the admin scope is never implied.
func (p Principal) HasScope(s string) bool {
	if len(p.Scopes) == 0 {
		return s == ScopeInference
	}
	return slices.Contains(p.Scopes, s)
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal carried by ctx, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
