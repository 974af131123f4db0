package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/predicate"
	"github.com/mindrouter/mindrouter/ent/user"
)

// User is a person or service account.
type User struct {
	ID       int64
	Username string
	Email    string
	// PasswordHash is an Argon2id PHC string, empty without a local password. Never
	// expose it.
	PasswordHash string
	FullName     string
	// College, Department and IntendedUse are the reference's profile fields.
	College     string
	Department  string
	IntendedUse string
	IsActive    bool
	GroupID     int64
	GroupName   string
	// RPMLimit overrides the group's requests per minute when not nil.
	RPMLimit *int
	// WeightOverride overrides the group's scheduler weight when not nil.
	WeightOverride *int
	// TokenBudget overrides the group's tokens per budget period when not nil; 0
	// means unlimited.
	TokenBudget *int64
	// DeletedAt is set on soft-deleted users, whose keys no longer work.
	DeletedAt *time.Time
	// OIDCIssuer and OIDCSubject identify a single-sign-on account; empty for
	// local accounts.
	OIDCIssuer  string
	OIDCSubject string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// UserSpec describes a new user.
type UserSpec struct {
	Username     string
	Email        string
	PasswordHash string
	FullName     string
	College      string
	Department   string
	IntendedUse  string
	GroupID      int64
	// Inactive creates the user disabled.
	Inactive       bool
	RPMLimit       *int
	WeightOverride *int
	TokenBudget    *int64
	// OIDCIssuer and OIDCSubject, both set, make a single-sign-on account.
	OIDCIssuer  string
	OIDCSubject string
}

// UserPatch changes some of a user's fields; nil fields keep their values. Each
// override can be set (a non-nil value) or cleared back to the group's value (its
// Clear flag), not both.
type UserPatch struct {
	GroupID     *int64
	FullName    *string
	College     *string
	Department  *string
	IntendedUse *string
	IsActive    *bool

	RPMLimit            *int
	ClearRPMLimit       bool
	WeightOverride      *int
	ClearWeightOverride bool
	TokenBudget         *int64
	ClearTokenBudget    bool
}

// UserFilter selects users for ListUsers.
type UserFilter struct {
	// GroupID limits the list to one group when not 0.
	GroupID int64
	// Search matches username, email, full name, college or department,
	// case-insensitively.
	Search string
	Skip   int
	// Limit is the page size: 0 means 100, at most 1000.
	Limit int
}

// Page sizes of ListUsers.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// CreateUser inserts a user. A duplicate username or email is ErrConflict, an unknown
// group ErrNotFound.
func (s *Store) CreateUser(ctx context.Context, spec UserSpec) (User, error) {
	op := fmt.Sprintf("create user %q", spec.Username)
	g, err := s.c(ctx).Group.Get(ctx, int(spec.GroupID))
	if err != nil {
		return User{}, dbErr(fmt.Sprintf("%s: group %d", op, spec.GroupID), err)
	}
	c := s.c(ctx).User.Create().
		SetUsername(spec.Username).
		SetEmail(spec.Email).
		SetFullName(spec.FullName).
		SetCollege(spec.College).
		SetDepartment(spec.Department).
		SetIntendedUse(spec.IntendedUse).
		SetIsActive(!spec.Inactive).
		SetGroupID(g.ID).
		SetNillableRpmLimit(spec.RPMLimit).
		SetNillableWeightOverride(spec.WeightOverride).
		SetNillableTokenBudget(spec.TokenBudget)
	if spec.PasswordHash != "" {
		c.SetPasswordHash(spec.PasswordHash)
	}
	if spec.OIDCIssuer != "" || spec.OIDCSubject != "" {
		c.SetOidcIssuer(spec.OIDCIssuer).SetOidcSubject(spec.OIDCSubject)
	}
	u, err := c.Save(ctx)
	if err != nil {
		return User{}, dbErr(op, err)
	}
	u.Edges.Group = g
	return toUser(u), nil
}

// GetUser returns the user with the given id, deleted or not.
func (s *Store) GetUser(ctx context.Context, id int64) (User, error) {
	u, err := s.c(ctx).User.Query().Where(user.ID(int(id))).WithGroup().Only(ctx)
	if err != nil {
		return User{}, dbErr(fmt.Sprintf("get user %d", id), err)
	}
	return toUser(u), nil
}

// GetUserByUsername returns the user with the given username, deleted or not.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (User, error) {
	u, err := s.c(ctx).User.Query().Where(user.Username(username)).WithGroup().Only(ctx)
	if err != nil {
		return User{}, dbErr(fmt.Sprintf("get user %q", username), err)
	}
	return toUser(u), nil
}

// GetUserByOIDC returns the user with the given OpenID Connect identity.
func (s *Store) GetUserByOIDC(ctx context.Context, issuer, subject string) (User, error) {
	u, err := s.c(ctx).User.Query().Where(user.OidcIssuer(issuer), user.OidcSubject(subject)).WithGroup().Only(ctx)
	if err != nil {
		return User{}, dbErr("get user by OIDC identity", err)
	}
	return toUser(u), nil
}

// ListUsers returns one page of users that are not deleted, ordered by id, and the
// number of users matching the filter.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]User, int64, error) {
	where := []predicate.User{user.DeletedAtIsNil()}
	if f.GroupID != 0 {
		where = append(where, user.GroupID(int(f.GroupID)))
	}
	if q := strings.TrimSpace(f.Search); q != "" {
		where = append(where, user.Or(
			user.UsernameContainsFold(q),
			user.EmailContainsFold(q),
			user.FullNameContainsFold(q),
			user.CollegeContainsFold(q),
			user.DepartmentContainsFold(q),
		))
	}
	total, err := s.c(ctx).User.Query().Where(where...).Count(ctx)
	if err != nil {
		return nil, 0, dbErr("count users", err)
	}
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = defaultPageSize
	case limit > maxPageSize:
		limit = maxPageSize
	}
	rows, err := s.c(ctx).User.Query().
		Where(where...).
		WithGroup().
		Order(ent.Asc(user.FieldID)).
		Offset(max(f.Skip, 0)).
		Limit(limit).
		All(ctx)
	if err != nil {
		return nil, 0, dbErr("list users", err)
	}
	out := make([]User, len(rows))
	for i, u := range rows {
		out[i] = toUser(u)
	}
	return out, int64(total), nil
}

// CountUsers returns the number of users, deleted ones included.
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	n, err := s.c(ctx).User.Query().Count(ctx)
	if err != nil {
		return 0, dbErr("count users", err)
	}
	return int64(n), nil
}

// SetUserActive enables or disables a user.
func (s *Store) SetUserActive(ctx context.Context, id int64, active bool) (User, error) {
	op := fmt.Sprintf("set user %d active=%t", id, active)
	if err := s.c(ctx).User.UpdateOneID(int(id)).SetIsActive(active).Exec(ctx); err != nil {
		return User{}, dbErr(op, err)
	}
	return s.GetUser(ctx, id)
}

// UpdateUser applies a patch to a user, deleted or not, and returns the result.
// An unknown user or group is ErrNotFound; an override both set and cleared, or
// out of range, is ErrInvalid.
func (s *Store) UpdateUser(ctx context.Context, id int64, p UserPatch) (User, error) {
	op := fmt.Sprintf("update user %d", id)
	switch {
	case p.RPMLimit != nil && p.ClearRPMLimit:
		return User{}, invalid(op, "rpm_limit both set and cleared")
	case p.WeightOverride != nil && p.ClearWeightOverride:
		return User{}, invalid(op, "weight_override both set and cleared")
	case p.TokenBudget != nil && p.ClearTokenBudget:
		return User{}, invalid(op, "token_budget both set and cleared")
	}
	u := s.c(ctx).User.UpdateOneID(int(id)).
		SetNillableFullName(p.FullName).
		SetNillableCollege(p.College).
		SetNillableDepartment(p.Department).
		SetNillableIntendedUse(p.IntendedUse).
		SetNillableIsActive(p.IsActive).
		SetNillableRpmLimit(p.RPMLimit).
		SetNillableWeightOverride(p.WeightOverride).
		SetNillableTokenBudget(p.TokenBudget)
	if p.GroupID != nil {
		// Checked first so that an unknown group reads as not found, not as a
		// foreign-key conflict.
		g, err := s.c(ctx).Group.Get(ctx, int(*p.GroupID))
		if err != nil {
			return User{}, dbErr(fmt.Sprintf("%s: group %d", op, *p.GroupID), err)
		}
		u.SetGroupID(g.ID)
	}
	if p.ClearRPMLimit {
		u.ClearRpmLimit()
	}
	if p.ClearWeightOverride {
		u.ClearWeightOverride()
	}
	if p.ClearTokenBudget {
		u.ClearTokenBudget()
	}
	if err := u.Exec(ctx); err != nil {
		return User{}, dbErr(op, err)
	}
	return s.GetUser(ctx, id)
}

// SoftDeleteUser marks a user deleted at the given time; the user's keys stop
// working and the user leaves ListUsers.
func (s *Store) SoftDeleteUser(ctx context.Context, id int64, at time.Time) error {
	err := s.c(ctx).User.UpdateOneID(int(id)).SetDeletedAt(at.UTC()).Exec(ctx)
	return dbErr(fmt.Sprintf("delete user %d", id), err)
}

func toUser(u *ent.User) User {
	if u == nil {
		return User{}
	}
	out := User{
		ID:             int64(u.ID),
		Username:       u.Username,
		Email:          u.Email,
		PasswordHash:   u.PasswordHash,
		FullName:       u.FullName,
		College:        u.College,
		Department:     u.Department,
		IntendedUse:    u.IntendedUse,
		IsActive:       u.IsActive,
		GroupID:        int64(u.GroupID),
		RPMLimit:       intPtr(u.RpmLimit),
		WeightOverride: intPtr(u.WeightOverride),
		TokenBudget:    int64Ptr(u.TokenBudget),
		DeletedAt:      utcPtr(u.DeletedAt),
		OIDCIssuer:     deref(u.OidcIssuer),
		OIDCSubject:    deref(u.OidcSubject),
		CreatedAt:      utc(u.CreatedAt),
		UpdatedAt:      utc(u.UpdatedAt),
	}
	if g := u.Edges.Group; g != nil {
		out.GroupName = g.Name
	}
	return out
}

func int64Ptr(p *int64) *int64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
