package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

var (
	// ErrLoginFailed is every failed sign-in, whatever the reason (unknown
	// user, wrong password, no local password, inactive account), so that the
	// answer says nothing about which accounts exist.
	ErrLoginFailed = errors.New("invalid username or password")
	// ErrSessionInvalid means the session is unknown, ended or timed out.
	ErrSessionInvalid = errors.New("session is invalid or has expired; sign in again")
	// ErrLoginThrottled is what every *LoginThrottledError is.
	ErrLoginThrottled = errors.New("too many sign-in attempts")
	// ErrCSRF means a state-changing call made with a browser session did not
	// carry the session's CSRF token.
	ErrCSRF = errors.New("missing or wrong CSRF token: send the session's token as X-CSRF-Token")
	// ErrSessionRequired means the method changes the caller's account and so
	// takes a browser session, not an API key.
	ErrSessionRequired = errors.New("this method needs a signed-in browser session, not an API key")
)

// LoginThrottledError refuses a sign-in after too many failures for one
// username from one address.
type LoginThrottledError struct{ Wait time.Duration }

func (e *LoginThrottledError) Error() string {
	return fmt.Sprintf("too many sign-in attempts; try again in %d seconds", int(e.Wait.Seconds()+0.999))
}

// Unwrap makes the error ErrLoginThrottled.
func (e *LoginThrottledError) Unwrap() error { return ErrLoginThrottled }

// RetryAfter is how long to wait before trying again.
func (e *LoginThrottledError) RetryAfter() time.Duration { return e.Wait }

// Session is an opened browser session: the secrets the browser holds.
type Session struct {
	// Token is the cookie value; only its digest is stored.
	Token     string
	CSRFToken string
	ExpiresAt time.Time
	// Idle is the idle timeout.
	Idle time.Duration
}

// LoginRequest is a sign-in form and who sent it.
type LoginRequest struct {
	Username  string
	Password  string
	ClientIP  string
	UserAgent string
}

// PasswordLogin checks a local account's password and opens a session. Every
// failure is ErrLoginFailed after one Argon2id verification (against a dummy
// hash when there is no account or no password), so neither the message nor the
// time tells whether the username exists. After LoginAttempts failures for one
// username and address within LoginWindow it answers *LoginThrottledError
// without checking anything.
func (a *Accounts) PasswordLogin(ctx context.Context, req LoginRequest) (Session, error) {
	now := a.svc.now()
	key := strings.ToLower(strings.TrimSpace(req.Username)) + "\x00" + req.ClientIP
	if wait := a.throttle.blocked(key, now); wait > 0 {
		a.svc.log.WarnContext(ctx, "sign-in throttled", slog.String("client_ip", req.ClientIP))
		return Session{}, &LoginThrottledError{Wait: wait}
	}
	u, lookupErr := a.st.GetUserByUsername(ctx, strings.TrimSpace(req.Username))
	if lookupErr != nil && !errors.Is(lookupErr, store.ErrNotFound) {
		return Session{}, fmt.Errorf("sign in: %w", lookupErr)
	}
	hash := u.PasswordHash
	if lookupErr != nil || hash == "" {
		hash = a.dummyHash
	}
	if err := a.svc.acquireHash(ctx); err != nil {
		return Session{}, err
	}
	match, _ := a.verifyPassword(hash, req.Password)
	a.svc.releaseHash()
	ok := match && lookupErr == nil && u.PasswordHash != "" && u.IsActive && u.DeletedAt == nil
	if !ok {
		a.throttle.fail(key, now)
		a.svc.log.InfoContext(ctx, "sign-in refused", slog.String("client_ip", req.ClientIP))
		return Session{}, ErrLoginFailed
	}
	return a.openSession(ctx, u.ID, "password", req.ClientIP, req.UserAgent)
}

// openSession stores a new session for a user.
func (a *Accounts) openSession(ctx context.Context, userID int64, method, ip, ua string) (Session, error) {
	token, err := randomToken()
	if err != nil {
		return Session{}, err
	}
	csrf, err := randomToken()
	if err != nil {
		return Session{}, err
	}
	now := a.svc.now()
	out := Session{Token: token, CSRFToken: csrf, ExpiresAt: now.Add(a.absolute), Idle: a.idle}
	_, err = a.st.CreateSession(ctx, store.Session{
		UserID: userID, TokenSHA256: tokenDigest(token), CSRFToken: csrf, Method: method,
		ClientIP: ip, UserAgent: ua, LastSeenAt: now, ExpiresAt: out.ExpiresAt,
	})
	if err != nil {
		return Session{}, err
	}
	a.svc.log.InfoContext(ctx, "signed in", slog.Int64("user_id", userID), slog.String("method", method))
	return out, nil
}

// VerifySession resolves a session token to its principal; the principal's
// SessionID and CSRFToken are set and it carries no key scopes (a session
// acts with its user's group rights). A session past its idle or absolute
// timeout is deleted and, like an unknown one, ErrSessionInvalid; an inactive
// user is ErrUserInactive.
func (a *Accounts) VerifySession(ctx context.Context, token string) (Principal, error) {
	if token == "" || len(token) > 128 {
		return Principal{}, ErrSessionInvalid
	}
	d := tokenDigest(token)
	rec, err := a.st.SessionByDigest(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrSessionInvalid
	}
	if err != nil {
		return Principal{}, fmt.Errorf("verify session: %w", err)
	}
	now := a.svc.now()
	ss := rec.Session
	if !now.Before(ss.ExpiresAt) || !now.Before(ss.LastSeenAt.Add(a.idle)) {
		if _, err := a.st.DeleteSession(ctx, d); err != nil {
			a.svc.log.WarnContext(ctx, "deleting a timed-out session failed", slog.Any("error", err))
		}
		return Principal{}, ErrSessionInvalid
	}
	if !rec.User.IsActive || rec.User.DeletedAt != nil {
		return Principal{}, ErrUserInactive
	}
	// One write per minute of use at most keeps the idle clock honest without a
	// write per request.
	if now.Sub(ss.LastSeenAt) >= min(time.Minute, a.idle/10) {
		if err := a.st.TouchSession(ctx, ss.ID, now); err != nil {
			return Principal{}, err
		}
	}
	p := newVerified(store.KeyRecord{User: rec.User, Group: rec.Group}).principal
	p.SessionID = ss.ID
	p.CSRFToken = ss.CSRFToken
	p.SessionExpiresAt = ss.ExpiresAt
	return p, nil
}

// Logout ends the session with token; with everywhere, every session of its
// user. csrf must be the session's CSRF token (ErrCSRF otherwise), so that
// another site cannot end a user's sessions. It returns how many sessions
// ended (0 for an unknown token).
func (a *Accounts) Logout(ctx context.Context, token, csrf string, everywhere bool) (int, error) {
	if token == "" || len(token) > 128 {
		return 0, nil
	}
	d := tokenDigest(token)
	rec, err := a.st.SessionByDigest(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !SameSecret(csrf, rec.Session.CSRFToken) {
		return 0, ErrCSRF
	}
	if everywhere {
		return a.st.DeleteUserSessions(ctx, rec.User.ID, "")
	}
	ok, err := a.st.DeleteSession(ctx, d)
	if err != nil || !ok {
		return 0, err
	}
	return 1, nil
}

// SameSecret compares a presented secret with the expected one in time that
// depends on neither; an empty presented secret never matches.
func SameSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return got != "" && subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// ChangePassword checks a local account's current password and sets a new one,
// ending the account's sessions except the one whose token is keepToken (the
// caller's own; empty ends them all).
func (a *Accounts) ChangePassword(ctx context.Context, userID int64, current, next, keepToken string) (int, error) {
	op := fmt.Sprintf("change password of user %d", userID)
	if err := validatePassword(next); err != nil {
		return 0, invalidInput(op, err)
	}
	// Read outside the audited transaction: the two Argon2 runs below come
	// before anything changes.
	u, err := a.st.GetUser(store.ReadBeforeTx(ctx), userID)
	if err != nil {
		return 0, err
	}
	if u.PasswordHash == "" {
		return 0, invalidInput(op, ErrNotLocal)
	}
	if err := a.svc.acquireHash(ctx); err != nil {
		return 0, err
	}
	match, _ := verifyArgon2id(u.PasswordHash, current)
	a.svc.releaseHash()
	if !match {
		return 0, fmt.Errorf("%s: current password: %w", op, ErrPermissionDenied)
	}
	keep := ""
	if keepToken != "" {
		keep = tokenDigest(keepToken)
	}
	return a.setPassword(ctx, u, next, keep)
}

// PruneSessions deletes timed-out sessions; Run calls it periodically.
func (a *Accounts) PruneSessions(ctx context.Context) (int, error) {
	now := a.svc.now()
	return a.st.PruneSessions(ctx, now, now.Add(-a.idle))
}

// Run prunes timed-out sessions every interval until ctx ends.
func (a *Accounts) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := a.PruneSessions(ctx); err != nil {
				a.svc.log.WarnContext(ctx, "pruning sessions failed", slog.Any("error", err))
			} else if n > 0 {
				a.svc.log.InfoContext(ctx, "pruned timed-out sessions", slog.Int("sessions", n))
			}
		}
	}
}

type sessionTokenKey struct{}

// WithSessionToken returns ctx carrying the caller's raw session token, for the
// few account operations that act on the caller's own session.
func WithSessionToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, sessionTokenKey{}, token)
}

// SessionTokenFrom returns the session token WithSessionToken stored.
func SessionTokenFrom(ctx context.Context) (string, bool) {
	t, ok := ctx.Value(sessionTokenKey{}).(string)
	return t, ok && t != ""
}

// randomToken returns 32 random bytes, base64url without padding.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func tokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
