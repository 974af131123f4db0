package store

import (
	"context"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/apikey"
	"github.com/mindrouter/mindrouter/ent/quota"
	"github.com/mindrouter/mindrouter/ent/quotarequest"
	"github.com/mindrouter/mindrouter/ent/servicekeyrequest"
	"github.com/mindrouter/mindrouter/ent/session"
	"github.com/mindrouter/mindrouter/ent/user"
)

// CreateGroup inserts a group described by g (ID, UserCount and the times are
// ignored). A taken name is ErrConflict, a value out of range ErrInvalid.
func (s *Store) CreateGroup(ctx context.Context, g Group) (Group, error) {
	row, err := s.c(ctx).Group.Create().
		SetName(g.Name).
		SetDisplayName(g.DisplayName).
		SetDescription(g.Description).
		SetTokenBudget(g.TokenBudget).
		SetRpmLimit(g.RPMLimit).
		SetSchedulerWeight(g.SchedulerWeight).
		SetIsAdmin(g.IsAdmin).
		SetIsAuditor(g.IsAuditor).
		SetAPIKeyExpiryDays(g.APIKeyExpiryDays).
		SetMaxAPIKeys(g.MaxAPIKeys).
		SetAuditPrompts(!g.SkipAuditPrompts).
		SetAuditResponses(!g.SkipAuditResponses).
		Save(ctx)
	if err != nil {
		return Group{}, dbErr(fmt.Sprintf("create group %q", g.Name), err)
	}
	return toGroup(row), nil
}

// DeleteGroup deletes a group without members. Any user row referencing it,
// deactivated or soft-deleted included, makes it ErrInUse; an unknown group is
// ErrNotFound.
func (s *Store) DeleteGroup(ctx context.Context, id int64) error {
	op := fmt.Sprintf("delete group %d", id)
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		n, err := tx.User.Query().Where(user.GroupID(int(id))).Count(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%d users are members; move them to another group first: %w", n, ErrInUse)
		}
		return tx.Group.DeleteOneID(int(id)).Exec(ctx)
	})
	return dbErr(op, err)
}

// UserDeletion is what DeleteUser removed.
type UserDeletion struct {
	// Keys are the user's keys as they were; the caller forgets and announces
	// them as revoked.
	Keys []APIKey
	// Sessions is the number of browser sessions ended.
	Sessions int
}

// DeleteUser removes a user and everything that belongs only to them: API keys,
// browser sessions, quota usage, quota and service-key requests, and (by the
// foreign keys' ON DELETE CASCADE) conversations with their messages and stored
// responses, in one transaction. Numeric ids are never reused (AUTOINCREMENT on
// SQLite, InnoDB's persistent counter on MariaDB), so the records kept under
// the user's id (audit records, request usage, admin actions) keep naming this
// tombstone and no later account. An unknown user is ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, id int64) (UserDeletion, error) {
	op := fmt.Sprintf("delete user %d", id)
	var out UserDeletion
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		u, err := tx.User.Get(ctx, int(id))
		if err != nil {
			return err
		}
		keys, err := tx.APIKey.Query().Where(apikey.UserID(u.ID)).All(ctx)
		if err != nil {
			return err
		}
		out.Keys = make([]APIKey, len(keys))
		for i, k := range keys {
			k.Edges.User = u
			out.Keys[i] = toAPIKey(k)
		}
		if out.Sessions, err = tx.Session.Delete().Where(session.UserID(u.ID)).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.QuotaRequest.Delete().Where(quotarequest.UserID(u.ID)).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.ServiceKeyRequest.Delete().Where(servicekeyrequest.UserID(u.ID)).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.APIKey.Delete().Where(apikey.UserID(u.ID)).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.Quota.Delete().Where(quota.UserID(u.ID)).Exec(ctx); err != nil {
			return err
		}
		return tx.User.DeleteOneID(u.ID).Exec(ctx)
	})
	if err != nil {
		return UserDeletion{}, dbErr(op, err)
	}
	return out, nil
}

// SetPasswordHash replaces a user's Argon2id password hash.
func (s *Store) SetPasswordHash(ctx context.Context, id int64, hash string) error {
	err := s.c(ctx).User.UpdateOneID(int(id)).SetPasswordHash(hash).Exec(ctx)
	return dbErr(fmt.Sprintf("set password of user %d", id), err)
}

// RenewAPIKey gives a key a new expiry (nil: none) and makes an expired key
// active again. A revoked key is ErrInvalid, an unknown one ErrNotFound.
func (s *Store) RenewAPIKey(ctx context.Context, id int64, expiresAt *time.Time) (APIKey, error) {
	op := fmt.Sprintf("renew API key %d", id)
	k, err := s.GetAPIKey(ctx, id)
	if err != nil {
		return APIKey{}, err
	}
	if k.Status == KeyRevoked {
		return APIKey{}, invalid(op, "a revoked key cannot be renewed")
	}
	u := s.c(ctx).APIKey.Update().
		Where(apikey.ID(int(id)), apikey.StatusNEQ(apikey.StatusRevoked)).
		SetStatus(apikey.StatusActive)
	if expiresAt == nil {
		u.ClearExpiresAt()
	} else {
		u.SetExpiresAt(expiresAt.UTC())
	}
	n, err := u.Save(ctx)
	if err != nil {
		return APIKey{}, dbErr(op, err)
	}
	if n == 0 {
		return APIKey{}, invalid(op, "the key was revoked meanwhile")
	}
	return s.GetAPIKey(ctx, id)
}
