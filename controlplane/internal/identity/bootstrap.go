package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// BootstrapUser is the administrator Bootstrap creates.
const BootstrapUser = "admin"

// BootstrapResult says what Bootstrap did.
type BootstrapResult struct {
	// Created is true when a user or key was created.
	Created  bool
	Username string
	// Key is the full key, only when one was created now.
	Key string
}

// Bootstrap makes a fresh installation usable. With no users at all it creates the
// user "admin" in group "admin" and a key with scopes inference and admin: seedKey
// when given (it must be a well-formed mr2_ key), else a random one. With users
// present it only adds seedKey to an existing admin user when that key is not
// stored yet. It is idempotent, also when several control planes start together.
func (s *Service) Bootstrap(ctx context.Context, seedKey string) (BootstrapResult, error) {
	if seedKey != "" && !WellFormedKey(seedKey) {
		return BootstrapResult{}, fmt.Errorf("bootstrap: seed key must be %q followed by 43 base64url characters (mint one with NewKey)", KeyPrefix)
	}
	res := BootstrapResult{Username: BootstrapUser}
	admin, err := s.st.GetUserByUsername(ctx, BootstrapUser)
	switch {
	case errors.Is(err, store.ErrNotFound):
		n, err := s.st.CountUsers(ctx)
		if err != nil {
			return res, fmt.Errorf("bootstrap: %w", err)
		}
		if n > 0 {
			if seedKey != "" {
				s.log.WarnContext(ctx, "bootstrap: users exist but none is called admin; seed key not stored")
			}
			return res, nil
		}
		admin, err = s.createAdmin(ctx)
		if errors.Is(err, store.ErrConflict) {
			// Another control plane bootstrapped at the same moment.
			return s.Bootstrap(ctx, seedKey)
		}
		if err != nil {
			return res, err
		}
		res.Created = true
	case err != nil:
		return res, fmt.Errorf("bootstrap: %w", err)
	case seedKey == "":
		return res, nil
	}

	key := seedKey
	if key != "" {
		rec, err := s.st.KeyByDigest(ctx, KeyDigest(key))
		switch {
		case err == nil && rec.User.ID == admin.ID:
			return res, nil // already stored
		case err == nil:
			return res, fmt.Errorf("bootstrap: seed key belongs to user %q: %w", rec.User.Username, store.ErrConflict)
		case !errors.Is(err, store.ErrNotFound):
			return res, fmt.Errorf("bootstrap: %w", err)
		}
	} else if key, err = NewKey(); err != nil {
		return res, fmt.Errorf("bootstrap: %w", err)
	}
	k, err := s.storeKey(ctx, key, KeySpec{UserID: admin.ID, Name: "bootstrap", Scopes: []string{ScopeInference, ScopeAdmin}})
	if errors.Is(err, store.ErrConflict) && seedKey != "" {
		return res, nil // stored by a concurrent bootstrap
	}
	if err != nil {
		return res, fmt.Errorf("bootstrap: %w", err)
	}
	s.log.InfoContext(ctx, "bootstrap API key stored", slog.String("user", BootstrapUser), slog.String("key_prefix", k.Prefix))
	res.Created, res.Key = true, key
	return res, nil
}

// createAdmin creates the bootstrap administrator, without a password.
func (s *Service) createAdmin(ctx context.Context) (store.User, error) {
	g, err := s.st.GetGroupByName(ctx, store.GroupAdmin)
	if err != nil {
		return store.User{}, fmt.Errorf("bootstrap: %w", err)
	}
	u, err := s.st.CreateUser(ctx, store.UserSpec{
		Username: BootstrapUser, Email: "admin@localhost", FullName: "Administrator", GroupID: g.ID,
	})
	if err != nil {
		return store.User{}, fmt.Errorf("bootstrap: %w", err)
	}
	s.log.InfoContext(ctx, "bootstrap administrator created", slog.String("user", BootstrapUser))
	return u, nil
}
