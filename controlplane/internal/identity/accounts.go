package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// AccountStore is the part of the store that account lifecycle, quota requests
// and browser sessions use.
type AccountStore interface {
	GetUser(ctx context.Context, id int64) (store.User, error)
	GetUserByUsername(ctx context.Context, username string) (store.User, error)
	GetGroup(ctx context.Context, id int64) (store.Group, error)
	GetAPIKey(ctx context.Context, id int64) (store.APIKey, error)
	CreateGroup(ctx context.Context, g store.Group) (store.Group, error)
	DeleteGroup(ctx context.Context, id int64) error
	DeleteUser(ctx context.Context, id int64) (store.UserDeletion, error)
	SetPasswordHash(ctx context.Context, id int64, hash string) error
	RenewAPIKey(ctx context.Context, id int64, expiresAt *time.Time) (store.APIKey, error)
	CreateQuotaRequest(ctx context.Context, userID, tokens int64, justification string) (store.QuotaRequest, error)
	ListQuotaRequests(ctx context.Context, f store.QuotaRequestFilter) ([]store.QuotaRequest, error)
	ReviewQuotaRequest(ctx context.Context, id int64, rv store.QuotaReview) (store.QuotaRequest, error)
	DeleteAPIKey(ctx context.Context, id int64) (store.APIKey, error)
	CreateServiceKeyRequest(ctx context.Context, spec store.ServiceKeyRequestSpec) (store.ServiceKeyRequest, error)
	CreateServiceKeyRevocationRequest(ctx context.Context, userID, keyID int64, reason string) (store.ServiceKeyRequest, error)
	ListServiceKeyRequests(ctx context.Context, f store.ServiceKeyRequestFilter) ([]store.ServiceKeyRequest, error)
	ReviewServiceKeyRequest(ctx context.Context, id int64, rv store.ServiceKeyReview) (store.ServiceKeyRequest, error)
	CollectServiceKey(ctx context.Context, id, userID int64, spec store.APIKeySpec, at time.Time) (store.ServiceKeyRequest, store.APIKey, error)
	CreateSession(ctx context.Context, s store.Session) (store.Session, error)
	SessionByDigest(ctx context.Context, sha256hex string) (store.SessionRecord, error)
	TouchSession(ctx context.Context, id int64, at time.Time) error
	DeleteSession(ctx context.Context, sha256hex string) (bool, error)
	DeleteUserSessions(ctx context.Context, userID int64, keep string) (int, error)
	PruneSessions(ctx context.Context, now, idleBefore time.Time) (int, error)
}

// AccountOptions tune Accounts; zero values take the defaults.
type AccountOptions struct {
	// SessionIdle ends a session unused this long: 8 h.
	SessionIdle time.Duration
	// SessionAbsolute ends a session this long after sign-in, however used: 7 days.
	SessionAbsolute time.Duration
	// LoginAttempts failed sign-ins per username and address are allowed within
	// LoginWindow before further attempts are refused: 15 in 300 s.
	LoginAttempts int
	LoginWindow   time.Duration
}

// Accounts manages the life of accounts beyond key verification: groups,
// deletion, passwords, key renewal, quota requests and browser sessions. It
// shares the Service's hashing bound, verification cache and revocation feed,
// so that what it changes reaches every data plane as a Service change does.
type Accounts struct {
	svc      *Service
	st       AccountStore
	idle     time.Duration
	absolute time.Duration
	throttle *throttle
	// dummyHash is verified for unknown and passwordless users, so that a
	// failed sign-in costs the same whatever the reason.
	dummyHash string
	// verifyPassword checks a password against a PHC string: verifyArgon2id,
	// replaced in tests to observe the work every sign-in does.
	verifyPassword func(encoded, secret string) (bool, error)
}

// NewAccounts returns the account manager over svc and st.
func NewAccounts(svc *Service, st AccountStore, opts AccountOptions) (*Accounts, error) {
	dummy, err := hashArgon2id("mindrouter-no-such-user", svc.pwParams)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	return &Accounts{
		svc:       svc,
		st:        st,
		idle:      orDefault(opts.SessionIdle, 8*time.Hour),
		absolute:  orDefault(opts.SessionAbsolute, 7*24*time.Hour),
		throttle:  newThrottle(orDefault(opts.LoginAttempts, 15), orDefault(opts.LoginWindow, 300*time.Second)),
		dummyHash: dummy,

		verifyPassword: verifyArgon2id,
	}, nil
}

// CreateGroup creates a group. A taken name is store.ErrConflict, bad input
// store.ErrInvalid.
func (a *Accounts) CreateGroup(ctx context.Context, g store.Group) (store.Group, error) {
	op := fmt.Sprintf("create group %q", g.Name)
	if err := validateGroup(g); err != nil {
		return store.Group{}, invalidInput(op, err)
	}
	out, err := a.st.CreateGroup(ctx, g)
	if err != nil {
		return store.Group{}, err
	}
	a.svc.log.InfoContext(ctx, "group created", slog.Int64("group_id", out.ID), slog.String("group", out.Name))
	return out, nil
}

// DeleteGroup deletes a group without members; store.ErrInUse while any remain.
func (a *Accounts) DeleteGroup(ctx context.Context, id int64) error {
	if err := a.st.DeleteGroup(ctx, id); err != nil {
		return err
	}
	a.svc.log.InfoContext(ctx, "group deleted", slog.Int64("group_id", id))
	return nil
}

// ErrSelfDelete means an admin tried to delete their own account.
var ErrSelfDelete = errors.New("an admin cannot delete their own account")

// DeleteUser deletes a user (see store.DeleteUser for what goes and what stays).
// Every key of the user is forgotten and announced as revoked, so that data
// planes stop accepting it at once. actor is the admin doing it.
func (a *Accounts) DeleteUser(ctx context.Context, actor, id int64) (store.UserDeletion, error) {
	if actor == id {
		return store.UserDeletion{}, fmt.Errorf("delete user %d: %w", id, ErrSelfDelete)
	}
	del, err := a.st.DeleteUser(ctx, id)
	if err != nil {
		return store.UserDeletion{}, err
	}
	for _, k := range del.Keys {
		a.svc.cache.evict(k.SHA256)
		if k.Status != store.KeyRevoked {
			a.svc.notify(k.Prefix)
		}
	}
	a.svc.cache.expireUser(id)
	a.svc.log.InfoContext(ctx, "user deleted", slog.Int64("user_id", id), slog.Int("api_keys", len(del.Keys)),
		slog.Int("sessions", del.Sessions))
	return del, nil
}

// ErrNotLocal means the account has no local password (it signs in through SSO).
var ErrNotLocal = errors.New("the account has no local password (it signs in through single sign-on)")

// ResetPassword sets a local account's password and ends all its sessions.
func (a *Accounts) ResetPassword(ctx context.Context, id int64, password string) (int, error) {
	op := fmt.Sprintf("reset password of user %d", id)
	if err := validatePassword(password); err != nil {
		return 0, invalidInput(op, err)
	}
	// Read outside the audited transaction: setPassword hashes before it writes.
	u, err := a.st.GetUser(store.ReadBeforeTx(ctx), id)
	if err != nil {
		return 0, err
	}
	if u.PasswordHash == "" {
		return 0, invalidInput(op, ErrNotLocal)
	}
	return a.setPassword(ctx, u, password, "")
}

// setPassword stores a new password hash and ends the user's sessions but keep.
func (a *Accounts) setPassword(ctx context.Context, u store.User, password, keep string) (int, error) {
	h, err := a.svc.hash(ctx, password, a.svc.pwParams)
	if err != nil {
		return 0, fmt.Errorf("set password of user %d: %w", u.ID, err)
	}
	if err := a.st.SetPasswordHash(ctx, u.ID, h); err != nil {
		return 0, err
	}
	n, err := a.st.DeleteUserSessions(ctx, u.ID, keep)
	if err != nil {
		return 0, err
	}
	a.svc.log.InfoContext(ctx, "password changed", slog.Int64("user_id", u.ID), slog.Int("sessions_ended", n))
	return n, nil
}

// RenewKey gives a key (same secret) a new expiry: the owner's group key lifetime
// from now, none for a service key. owner, when not 0, must own the key (another
// user's key reads as not found). A revoked key is store.ErrInvalid.
func (a *Accounts) RenewKey(ctx context.Context, owner, keyID int64) (store.APIKey, error) {
	k, err := a.ownedKey(ctx, owner, keyID)
	if err != nil {
		return store.APIKey{}, err
	}
	var exp *time.Time
	if !k.IsService {
		u, err := a.st.GetUser(ctx, k.UserID)
		if err != nil {
			return store.APIKey{}, err
		}
		g, err := a.st.GetGroup(ctx, u.GroupID)
		if err != nil {
			return store.APIKey{}, err
		}
		exp = groupExpiry(g, a.svc.now())
	}
	out, err := a.st.RenewAPIKey(ctx, keyID, exp)
	if err != nil {
		return store.APIKey{}, err
	}
	// The cached verification still holds the old expiry.
	a.svc.cache.evict(out.SHA256)
	a.svc.log.InfoContext(ctx, "API key renewed", slog.Int64("api_key_id", out.ID), slog.String("key_prefix", out.Prefix))
	return out, nil
}

// ErrServiceKeyOwner refuses an owner's own revocation of a service key.
var ErrServiceKeyOwner = errors.New("a service key is revoked by an admin: file a revocation request (POST /api/account/api-keys/{id}/revocation-request)")

// RevokeKey revokes a key of owner (any key when owner is 0); another user's key
// reads as not found. An owner cannot revoke their service key (others may
// depend on it): that goes through a revocation request, store.ErrInvalid here.
func (a *Accounts) RevokeKey(ctx context.Context, owner, keyID int64) (store.APIKey, error) {
	k, err := a.ownedKey(ctx, owner, keyID)
	if err != nil {
		return store.APIKey{}, err
	}
	if owner != 0 && k.IsService {
		return store.APIKey{}, invalidInput(fmt.Sprintf("revoke API key %d", keyID), ErrServiceKeyOwner)
	}
	return a.svc.Revoke(ctx, keyID)
}

func (a *Accounts) ownedKey(ctx context.Context, owner, keyID int64) (store.APIKey, error) {
	k, err := a.st.GetAPIKey(ctx, keyID)
	if err != nil {
		return store.APIKey{}, err
	}
	if owner != 0 && k.UserID != owner {
		return store.APIKey{}, fmt.Errorf("API key %d: %w", keyID, store.ErrNotFound)
	}
	return k, nil
}

// Limits of a quota request.
const (
	maxJustificationLen = 2000
	maxRequestedTokens  = 1 << 50
)

// FileQuotaRequest files a user's request for a larger token budget.
func (a *Accounts) FileQuotaRequest(ctx context.Context, userID, tokens int64, justification string) (store.QuotaRequest, error) {
	op := fmt.Sprintf("file quota request of user %d", userID)
	justification = strings.TrimSpace(justification)
	switch {
	case tokens <= 0 || tokens > maxRequestedTokens:
		return store.QuotaRequest{}, invalidInput(op, fmt.Errorf("requested_tokens must be between 1 and %d", int64(maxRequestedTokens)))
	case justification == "" || len(justification) > maxJustificationLen || !utf8.ValidString(justification):
		return store.QuotaRequest{}, invalidInput(op, fmt.Errorf("justification must be 1 to %d characters", maxJustificationLen))
	}
	r, err := a.st.CreateQuotaRequest(ctx, userID, tokens, justification)
	if err != nil {
		return store.QuotaRequest{}, err
	}
	a.svc.log.InfoContext(ctx, "quota request filed", slog.Int64("quota_request_id", r.ID), slog.Int64("user_id", userID))
	return r, nil
}

// ListQuotaRequests lists quota requests.
func (a *Accounts) ListQuotaRequests(ctx context.Context, f store.QuotaRequestFilter) ([]store.QuotaRequest, error) {
	return a.st.ListQuotaRequests(ctx, f)
}

// ReviewQuotaRequest approves or denies a pending request. On approval the
// granted tokens (the requested ones when granted is nil) become the user's
// token budget override, and the user's cached principals go stale so that the
// next request is admitted against the new budget.
func (a *Accounts) ReviewQuotaRequest(ctx context.Context, reviewer, id int64, approved bool, notes string, granted *int64) (store.QuotaRequest, error) {
	op := fmt.Sprintf("review quota request %d", id)
	if len(notes) > maxJustificationLen || !utf8.ValidString(notes) {
		return store.QuotaRequest{}, invalidInput(op, fmt.Errorf("notes must be at most %d characters", maxJustificationLen))
	}
	if granted != nil && (*granted < 0 || *granted > maxRequestedTokens) {
		return store.QuotaRequest{}, invalidInput(op, fmt.Errorf("granted_tokens must be between 0 and %d", int64(maxRequestedTokens)))
	}
	rv := store.QuotaReview{ReviewerID: reviewer, Approved: approved, Notes: notes, GrantedTokens: granted, At: a.svc.now()}
	r, err := a.st.ReviewQuotaRequest(ctx, id, rv)
	if err != nil {
		return store.QuotaRequest{}, err
	}
	if approved {
		a.svc.cache.expireUser(r.UserID)
	}
	a.svc.log.InfoContext(ctx, "quota request reviewed", slog.Int64("quota_request_id", id), slog.Bool("approved", approved),
		slog.Int64("user_id", r.UserID))
	return r, nil
}

// validateGroup checks a new group's name and limits.
func validateGroup(g store.Group) error {
	if g.Name == "" || len(g.Name) > 50 {
		return errors.New("name must be 1 to 50 characters")
	}
	for _, c := range g.Name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && !strings.ContainsRune("-_.", c) {
			return errors.New("name may contain only lower-case letters, digits, '-', '_' and '.'")
		}
	}
	switch {
	case utf8.RuneCountInString(g.DisplayName) > 100:
		return errors.New("display_name is longer than 100 characters")
	case utf8.RuneCountInString(g.Description) > 1000:
		return errors.New("description is longer than 1000 characters")
	case g.TokenBudget < 0:
		return errors.New("token_budget must not be negative (0 means unlimited)")
	case g.RPMLimit < 0:
		return errors.New("rpm_limit must not be negative (0 means unlimited)")
	case g.SchedulerWeight < 1:
		return errors.New("scheduler_weight must be at least 1")
	case g.APIKeyExpiryDays < 0:
		return errors.New("api_key_expiry_days must not be negative (0 means keys do not expire)")
	case g.MaxAPIKeys < 0:
		return errors.New("max_api_keys must not be negative (0 means no limit)")
	}
	return nil
}
