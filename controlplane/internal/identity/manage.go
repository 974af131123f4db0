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

// invalidInput wraps a validation failure so that callers see store.ErrInvalid.
func invalidInput(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, store.ErrInvalid, err)
}

// KeySpec describes a key to mint.
type KeySpec struct {
	UserID int64
	Name   string
	// ExpiresAt, when nil, defaults to the group's api_key_expiry_days from now
	// (never, when that is 0).
	ExpiresAt *time.Time
	// Scopes: empty means inference only.
	Scopes []string
	// RPMLimit, when not nil, is the key's own requests per minute, applied besides
	// its owner's; 0 means none of its own.
	RPMLimit *int
	// ServiceName, when not empty, makes a service key: it never expires and is
	// not counted against the group's max_api_keys.
	ServiceName string
}

// CreateAPIKey mints a key without a rate limit of its own; see CreateKey.
func (s *Service) CreateAPIKey(ctx context.Context, userID int64, name string, expiresAt *time.Time, scopes []string) (store.APIKey, string, error) {
	return s.CreateKey(ctx, KeySpec{UserID: userID, Name: name, ExpiresAt: expiresAt, Scopes: scopes})
}

// CreateKey mints a key for a user and returns it with the full key, which exists
// nowhere else afterwards. A user at the group's max_api_keys active keys gets
// ErrKeyLimit; bad input is store.ErrInvalid.
func (s *Service) CreateKey(ctx context.Context, spec KeySpec) (store.APIKey, string, error) {
	key, err := NewKey()
	if err != nil {
		return store.APIKey{}, "", err
	}
	k, err := s.storeKey(ctx, key, spec)
	if err != nil {
		return store.APIKey{}, "", err
	}
	return k, key, nil
}

// storeKey stores a given, well-formed key for a user.
func (s *Service) storeKey(ctx context.Context, key string, spec KeySpec) (store.APIKey, error) {
	userID, expiresAt := spec.UserID, spec.ExpiresAt
	op := fmt.Sprintf("create API key for user %d", userID)
	name := strings.TrimSpace(spec.Name)
	if err := validateKeyName(name); err != nil {
		return store.APIKey{}, invalidInput(op, err)
	}
	scopes, err := normalizeScopes(spec.Scopes)
	if err != nil {
		return store.APIKey{}, invalidInput(op, err)
	}
	if err := validateRPMLimit(spec.RPMLimit); err != nil {
		return store.APIKey{}, invalidInput(op, err)
	}
	now := s.now()
	if err := validateExpiry(expiresAt, now); err != nil {
		return store.APIKey{}, invalidInput(op, err)
	}
	service := strings.TrimSpace(spec.ServiceName)
	if err := validateServiceName(service, expiresAt); err != nil {
		return store.APIKey{}, invalidInput(op, err)
	}
	// Hash before the first read: inside an audited call that read begins the
	// transaction, which the Argon2 work would otherwise hold open.
	h, err := s.hash(ctx, key, s.keyParams)
	if err != nil {
		return store.APIKey{}, fmt.Errorf("%s: %w", op, err)
	}
	u, err := s.st.GetUser(ctx, userID)
	if err != nil {
		return store.APIKey{}, fmt.Errorf("%s: %w", op, err)
	}
	if u.DeletedAt != nil {
		return store.APIKey{}, fmt.Errorf("%s: user is deleted: %w", op, store.ErrNotFound)
	}
	g, err := s.st.GetGroup(ctx, u.GroupID)
	if err != nil {
		return store.APIKey{}, fmt.Errorf("%s: %w", op, err)
	}
	if g.MaxAPIKeys > 0 && service == "" {
		n, err := s.st.CountActiveKeys(ctx, userID)
		if err != nil {
			return store.APIKey{}, fmt.Errorf("%s: %w", op, err)
		}
		if n >= g.MaxAPIKeys {
			return store.APIKey{}, fmt.Errorf("%s: %w: group %q allows %d active keys", op, ErrKeyLimit, g.Name, g.MaxAPIKeys)
		}
	}
	if expiresAt == nil && service == "" {
		expiresAt = groupExpiry(g, now)
	}
	k, err := s.st.CreateAPIKey(ctx, store.APIKeySpec{
		UserID:    userID,
		Name:      name,
		Prefix:    DisplayPrefix(key),
		SHA256:    KeyDigest(key),
		Hash:      h,
		Scopes:    scopes,
		ExpiresAt: expiresAt,
		RPMLimit:  spec.RPMLimit,

		ServiceName: service,
	})
	if err != nil {
		return store.APIKey{}, err
	}
	s.log.InfoContext(ctx, "API key created", slog.Int64("api_key_id", k.ID), slog.String("key_prefix", k.Prefix),
		slog.String("user", u.Username))
	return k, nil
}

// CreateUser creates an active local user without profile fields; see
// CreateLocalUser.
func (s *Service) CreateUser(ctx context.Context, username, email, password string, groupID int64, fullName string) (store.User, error) {
	return s.CreateLocalUser(ctx, LocalUser{Username: username, Email: email, Password: password, GroupID: groupID, FullName: fullName})
}

// LocalUser describes a new local account.
type LocalUser struct {
	Username, Email, Password string
	GroupID                   int64
	// Profile fields, all optional.
	FullName, College, Department, IntendedUse string
}

// CreateLocalUser creates an active local user with an Argon2id-hashed password
// of at least 8 characters. A taken username or email is store.ErrConflict, an
// unknown group store.ErrNotFound, bad input store.ErrInvalid.
func (s *Service) CreateLocalUser(ctx context.Context, lu LocalUser) (store.User, error) {
	op := fmt.Sprintf("create user %q", lu.Username)
	for _, err := range []error{
		validateUsername(lu.Username), validateEmail(lu.Email), validatePassword(lu.Password), validateFullName(lu.FullName),
		validateProfile(&lu.College, &lu.Department, &lu.IntendedUse),
	} {
		if err != nil {
			return store.User{}, invalidInput(op, err)
		}
	}
	h, err := s.hash(ctx, lu.Password, s.pwParams)
	if err != nil {
		return store.User{}, fmt.Errorf("%s: %w", op, err)
	}
	u, err := s.st.CreateUser(ctx, store.UserSpec{
		Username: lu.Username, Email: lu.Email, PasswordHash: h, FullName: lu.FullName, GroupID: lu.GroupID,
		College: lu.College, Department: lu.Department, IntendedUse: lu.IntendedUse,
	})
	if err != nil {
		return store.User{}, err
	}
	s.log.InfoContext(ctx, "user created", slog.Int64("user_id", u.ID), slog.String("user", u.Username))
	return u, nil
}

// UpdateUser applies a patch to a user that is not deleted. The user's keys see the
// change on their next Verify: their cached principals are made stale at once. An
// unknown or deleted user, or an unknown group, is store.ErrNotFound; bad input
// store.ErrInvalid.
func (s *Service) UpdateUser(ctx context.Context, id int64, p store.UserPatch) (store.User, error) {
	op := fmt.Sprintf("update user %d", id)
	checks := []error{
		validateRPMLimit(p.RPMLimit), validateWeight(p.WeightOverride), validateTokenBudget(p.TokenBudget),
		validateProfile(p.College, p.Department, p.IntendedUse),
	}
	if p.FullName != nil {
		checks = append(checks, validateFullName(*p.FullName))
	}
	for _, err := range checks {
		if err != nil {
			return store.User{}, invalidInput(op, err)
		}
	}
	u, err := s.st.GetUser(ctx, id)
	if err != nil {
		return store.User{}, fmt.Errorf("%s: %w", op, err)
	}
	if u.DeletedAt != nil {
		return store.User{}, fmt.Errorf("%s: user is deleted: %w", op, store.ErrNotFound)
	}
	u, err = s.st.UpdateUser(ctx, id, p)
	if err != nil {
		return store.User{}, err
	}
	// After the write: a lookup that read the old row is fenced off, and one that
	// starts now reads the new row.
	s.cache.expireUser(id)
	s.log.InfoContext(ctx, "user updated", slog.Int64("user_id", u.ID), slog.String("user", u.Username))
	return u, nil
}

// UpdateGroup changes a group's defaults. Every cached verification goes stale,
// so the members' next requests see the new budget, rate limit and weight.
func (s *Service) UpdateGroup(ctx context.Context, id int64, p store.GroupPatch) (store.Group, error) {
	op := fmt.Sprintf("update group %d", id)
	checks := []error{validateRPMLimit(p.RPMLimit), validateTokenBudget(p.TokenBudget)}
	if p.SchedulerWeight != nil && *p.SchedulerWeight < 1 {
		checks = append(checks, errors.New("scheduler_weight must be at least 1"))
	}
	if p.APIKeyExpiryDays != nil && *p.APIKeyExpiryDays < 0 {
		checks = append(checks, errors.New("api_key_expiry_days must not be negative (0 means keys do not expire)"))
	}
	if p.MaxAPIKeys != nil && *p.MaxAPIKeys < 0 {
		checks = append(checks, errors.New("max_api_keys must not be negative (0 means no limit)"))
	}
	if p.DisplayName != nil && utf8.RuneCountInString(*p.DisplayName) > 100 {
		checks = append(checks, errors.New("display_name is longer than 100 characters"))
	}
	if p.Description != nil && utf8.RuneCountInString(*p.Description) > 1000 {
		checks = append(checks, errors.New("description is longer than 1000 characters"))
	}
	for _, err := range checks {
		if err != nil {
			return store.Group{}, invalidInput(op, err)
		}
	}
	g, err := s.st.UpdateGroup(ctx, id, p)
	if err != nil {
		return store.Group{}, err
	}
	s.cache.expireAll()
	s.log.InfoContext(ctx, "group updated", slog.Int64("group_id", g.ID), slog.String("group", g.Name))
	return g, nil
}
