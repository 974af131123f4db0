package identity

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// invalidInput wraps a validation failure so that callers see store.ErrInvalid.
func invalidInput(op string, err error) error {
	return fmt.Errorf("%s: %w: %v", op, store.ErrInvalid, err)
}

// CreateAPIKey mints a key for a user and returns it with the full key, which
// exists nowhere else afterwards. Without expiresAt the key expires after the
// group's api_key_expiry_days (never, when that is 0). Empty scopes mean inference
// only. A user at the group's max_api_keys active keys gets ErrKeyLimit.
func (s *Service) CreateAPIKey(ctx context.Context, userID int64, name string, expiresAt *time.Time, scopes []string) (store.APIKey, string, error) {
	key, err := NewKey()
	if err != nil {
		return store.APIKey{}, "", err
	}
	k, err := s.storeKey(ctx, userID, name, key, expiresAt, scopes)
	if err != nil {
		return store.APIKey{}, "", err
	}
	return k, key, nil
}

// storeKey stores a given, well-formed key for a user.
func (s *Service) storeKey(ctx context.Context, userID int64, name, key string, expiresAt *time.Time, scopes []string) (store.APIKey, error) {
	op := fmt.Sprintf("create API key for user %d", userID)
	name = strings.TrimSpace(name)
	if err := validateKeyName(name); err != nil {
		return store.APIKey{}, invalidInput(op, err)
	}
	scopes, err := normalizeScopes(scopes)
	if err != nil {
		return store.APIKey{}, invalidInput(op, err)
	}
	now := s.now()
	if err := validateExpiry(expiresAt, now); err != nil {
		return store.APIKey{}, invalidInput(op, err)
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
	if g.MaxAPIKeys > 0 {
		n, err := s.st.CountActiveKeys(ctx, userID)
		if err != nil {
			return store.APIKey{}, fmt.Errorf("%s: %w", op, err)
		}
		if n >= g.MaxAPIKeys {
			return store.APIKey{}, fmt.Errorf("%s: %w: group %q allows %d active keys", op, ErrKeyLimit, g.Name, g.MaxAPIKeys)
		}
	}
	if expiresAt == nil && g.APIKeyExpiryDays > 0 {
		exp := now.Add(time.Duration(g.APIKeyExpiryDays) * 24 * time.Hour)
		expiresAt = &exp
	}
	h, err := s.hash(ctx, key, s.keyParams)
	if err != nil {
		return store.APIKey{}, fmt.Errorf("%s: %w", op, err)
	}
	k, err := s.st.CreateAPIKey(ctx, store.APIKeySpec{
		UserID:    userID,
		Name:      name,
		Prefix:    DisplayPrefix(key),
		SHA256:    KeyDigest(key),
		Hash:      h,
		Scopes:    scopes,
		ExpiresAt: expiresAt,
	})
	if err != nil {
		return store.APIKey{}, err
	}
	s.log.InfoContext(ctx, "API key created", slog.Int64("api_key_id", k.ID), slog.String("key_prefix", k.Prefix),
		slog.String("user", u.Username))
	return k, nil
}

// CreateUser creates an active local user with an Argon2id-hashed password of at
// least 8 characters. A taken username or email is store.ErrConflict, an unknown
// group store.ErrNotFound, bad input store.ErrInvalid.
func (s *Service) CreateUser(ctx context.Context, username, email, password string, groupID int64, fullName string) (store.User, error) {
	op := fmt.Sprintf("create user %q", username)
	for _, err := range []error{validateUsername(username), validateEmail(email), validatePassword(password), validateFullName(fullName)} {
		if err != nil {
			return store.User{}, invalidInput(op, err)
		}
	}
	h, err := s.hash(ctx, password, s.pwParams)
	if err != nil {
		return store.User{}, fmt.Errorf("%s: %w", op, err)
	}
	u, err := s.st.CreateUser(ctx, store.UserSpec{
		Username: username, Email: email, PasswordHash: h, FullName: fullName, GroupID: groupID,
	})
	if err != nil {
		return store.User{}, err
	}
	s.log.InfoContext(ctx, "user created", slog.Int64("user_id", u.ID), slog.String("user", u.Username))
	return u, nil
}
