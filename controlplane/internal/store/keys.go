package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/apikey"
	"github.com/mindrouter/mindrouter/ent/predicate"
	"github.com/mindrouter/mindrouter/ent/user"
)

// Statuses of an API key.
const (
	KeyActive  = "active"
	KeyRevoked = "revoked"
	KeyExpired = "expired"
)

// APIKey is a stored API key. SHA256 and Hash are the at-rest forms of the secret;
// they must never leave the control plane.
type APIKey struct {
	ID       int64
	UserID   int64
	Username string
	Name     string
	// Prefix is "mr2_" and the first 8 characters of the secret part.
	Prefix string
	// SHA256 is the hex SHA-256 digest of the full key.
	SHA256 string
	// Hash is the Argon2id PHC string of the full key.
	Hash       string
	Status     string
	Scopes     []string
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	UsageCount int64
	// RPMLimit is the key's own requests per minute when not nil: a limit on this
	// key alone, applied besides its owner's (0 means none of its own).
	RPMLimit *int
	// IsService marks a service key: named for a system, never expiring, not
	// counted against the owner's key limit.
	IsService   bool
	ServiceName string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// APIKeySpec describes a new key; the caller mints the secret and its at-rest forms.
type APIKeySpec struct {
	UserID    int64
	Name      string
	Prefix    string
	SHA256    string
	Hash      string
	Scopes    []string
	ExpiresAt *time.Time
	RPMLimit  *int
	// ServiceName, when not empty, makes a service key.
	ServiceName string
}

// KeyRecord is a key with its owner and the owner's group, everything needed to
// authenticate a request.
type KeyRecord struct {
	Key   APIKey
	User  User
	Group Group
}

// APIKeyFilter selects keys for ListAPIKeys; zero fields match everything.
type APIKeyFilter struct {
	UserID int64
	Status string
	// Search matches the key's name or prefix or its owner's username,
	// case-insensitively.
	Search string
}

// KeyUse is the usage of one key since the last flush.
type KeyUse struct {
	Count    int64
	LastUsed time.Time
}

// CreateAPIKey stores a new active key. An unknown user is ErrNotFound, a digest
// that exists already ErrConflict.
func (s *Store) CreateAPIKey(ctx context.Context, spec APIKeySpec) (APIKey, error) {
	op := fmt.Sprintf("create API key %q for user %d", spec.Name, spec.UserID)
	u, err := s.c(ctx).User.Get(ctx, int(spec.UserID))
	if err != nil {
		return APIKey{}, dbErr(op, err)
	}
	k, err := s.c(ctx).APIKey.Create().
		SetUserID(u.ID).
		SetName(spec.Name).
		SetKeyPrefix(spec.Prefix).
		SetKeySha256(spec.SHA256).
		SetKeyHash(spec.Hash).
		SetScopes(slices.Clone(spec.Scopes)).
		SetNillableExpiresAt(utcPtr(spec.ExpiresAt)).
		SetNillableRpmLimit(spec.RPMLimit).
		SetIsService(spec.ServiceName != "").
		SetServiceName(spec.ServiceName).
		Save(ctx)
	if err != nil {
		return APIKey{}, dbErr(op, err)
	}
	k.Edges.User = u
	return toAPIKey(k), nil
}

// KeyByDigest returns the key whose hex SHA-256 digest is given, with its user and
// group, whatever its status; ErrNotFound when there is none.
func (s *Store) KeyByDigest(ctx context.Context, sha256hex string) (KeyRecord, error) {
	k, err := s.c(ctx).APIKey.Query().
		Where(apikey.KeySha256(sha256hex)).
		WithUser(func(q *ent.UserQuery) { q.WithGroup() }).
		Only(ctx)
	if err != nil {
		return KeyRecord{}, dbErr("look up API key", err)
	}
	u := k.Edges.User
	if u == nil || u.Edges.Group == nil {
		return KeyRecord{}, fmt.Errorf("look up API key %d: owner or group missing: %w", k.ID, ErrNotFound)
	}
	return KeyRecord{Key: toAPIKey(k), User: toUser(u), Group: toGroup(u.Edges.Group)}, nil
}

// GetAPIKey returns the key with the given id.
func (s *Store) GetAPIKey(ctx context.Context, id int64) (APIKey, error) {
	k, err := s.c(ctx).APIKey.Query().Where(apikey.ID(int(id))).WithUser().Only(ctx)
	if err != nil {
		return APIKey{}, dbErr(fmt.Sprintf("get API key %d", id), err)
	}
	return toAPIKey(k), nil
}

// ListAPIKeys returns the keys matching f, ordered by id.
func (s *Store) ListAPIKeys(ctx context.Context, f APIKeyFilter) ([]APIKey, error) {
	var where []predicate.APIKey
	if f.UserID != 0 {
		where = append(where, apikey.UserID(int(f.UserID)))
	}
	if f.Status != "" {
		st := apikey.Status(f.Status)
		if err := apikey.StatusValidator(st); err != nil {
			return nil, invalid("list API keys", "unknown status %q (want active, revoked or expired)", f.Status)
		}
		where = append(where, apikey.StatusEQ(st))
	}
	if q := strings.TrimSpace(f.Search); q != "" {
		where = append(where, apikey.Or(
			apikey.NameContainsFold(q),
			apikey.KeyPrefixContainsFold(q),
			apikey.HasUserWith(user.UsernameContainsFold(q)),
		))
	}
	rows, err := s.c(ctx).APIKey.Query().Where(where...).WithUser().Order(ent.Asc(apikey.FieldID)).All(ctx)
	if err != nil {
		return nil, dbErr("list API keys", err)
	}
	out := make([]APIKey, len(rows))
	for i, k := range rows {
		out[i] = toAPIKey(k)
	}
	return out, nil
}

// CountActiveKeys returns how many active personal (not service) keys a user holds.
func (s *Store) CountActiveKeys(ctx context.Context, userID int64) (int, error) {
	n, err := s.c(ctx).APIKey.Query().
		Where(apikey.UserID(int(userID)), apikey.StatusEQ(apikey.StatusActive), apikey.IsService(false)).
		Count(ctx)
	if err != nil {
		return 0, dbErr(fmt.Sprintf("count keys of user %d", userID), err)
	}
	return n, nil
}

// RevokeAPIKey marks a key revoked and returns it. Revoking a revoked key succeeds
// and changes nothing.
func (s *Store) RevokeAPIKey(ctx context.Context, id int64) (APIKey, error) {
	op := fmt.Sprintf("revoke API key %d", id)
	_, err := s.c(ctx).APIKey.Update().
		Where(apikey.ID(int(id)), apikey.StatusNEQ(apikey.StatusRevoked)).
		SetStatus(apikey.StatusRevoked).
		Save(ctx)
	if err != nil {
		return APIKey{}, dbErr(op, err)
	}
	k, err := s.GetAPIKey(ctx, id)
	if err != nil {
		return APIKey{}, fmt.Errorf("%s: %w", op, err)
	}
	return k, nil
}

// DeleteAPIKey removes a key and returns it as it was, so that the caller can
// announce its revocation. An unknown key is ErrNotFound.
func (s *Store) DeleteAPIKey(ctx context.Context, id int64) (APIKey, error) {
	op := fmt.Sprintf("delete API key %d", id)
	var out APIKey
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		k, err := tx.APIKey.Query().Where(apikey.ID(int(id))).WithUser().Only(ctx)
		if err != nil {
			return err
		}
		out = toAPIKey(k)
		return tx.APIKey.DeleteOneID(k.ID).Exec(ctx)
	})
	if err != nil {
		return APIKey{}, dbErr(op, err)
	}
	return out, nil
}

// ExpireKeys marks active keys whose expiry is at or before now as expired and
// returns how many it changed.
func (s *Store) ExpireKeys(ctx context.Context, now time.Time) (int, error) {
	n, err := s.c(ctx).APIKey.Update().
		Where(apikey.StatusEQ(apikey.StatusActive), apikey.ExpiresAtNotNil(), apikey.ExpiresAtLTE(now.UTC())).
		SetStatus(apikey.StatusExpired).
		Save(ctx)
	if err != nil {
		return 0, dbErr("expire API keys", err)
	}
	return n, nil
}

// RecordKeyUse adds usage counts and moves last-used times forward for many keys
// in one transaction. Keys that no longer exist are skipped.
func (s *Store) RecordKeyUse(ctx context.Context, uses map[int64]KeyUse) error {
	if len(uses) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(uses)) // a fixed order keeps concurrent flushes from deadlocking
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		for _, id := range ids {
			u := uses[id]
			if u.Count > 0 {
				if err := tx.APIKey.Update().Where(apikey.ID(int(id))).AddUsageCount(u.Count).Exec(ctx); err != nil {
					return err
				}
			}
			if u.LastUsed.IsZero() {
				continue
			}
			t := u.LastUsed.UTC()
			err := tx.APIKey.Update().
				Where(apikey.ID(int(id)), apikey.Or(apikey.LastUsedAtIsNil(), apikey.LastUsedAtLT(t))).
				SetLastUsedAt(t).
				Exec(ctx)
			if err != nil {
				return err
			}
		}
		return nil
	})
	return dbErr(fmt.Sprintf("record use of %d API keys", len(uses)), err)
}

func toAPIKey(k *ent.APIKey) APIKey {
	out := APIKey{
		ID:          int64(k.ID),
		UserID:      int64(k.UserID),
		Name:        k.Name,
		Prefix:      k.KeyPrefix,
		SHA256:      k.KeySha256,
		Hash:        k.KeyHash,
		Status:      string(k.Status),
		Scopes:      k.Scopes,
		ExpiresAt:   utcPtr(k.ExpiresAt),
		LastUsedAt:  utcPtr(k.LastUsedAt),
		UsageCount:  k.UsageCount,
		RPMLimit:    intPtr(k.RpmLimit),
		IsService:   k.IsService,
		ServiceName: k.ServiceName,
		CreatedAt:   utc(k.CreatedAt),
		UpdatedAt:   utc(k.UpdatedAt),
	}
	if u := k.Edges.User; u != nil {
		out.Username = u.Username
	}
	return out
}
