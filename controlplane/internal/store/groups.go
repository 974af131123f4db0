package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/group"
	"github.com/mindrouter/mindrouter/ent/user"
)

// Group is a role with its defaults: token budget, rate limit, scheduler weight and
// privileges.
type Group struct {
	ID          int64
	Name        string
	DisplayName string
	Description string
	// TokenBudget is tokens per budget period; 0 means unlimited.
	TokenBudget int64
	// RPMLimit is requests per minute; 0 means unlimited.
	RPMLimit        int
	SchedulerWeight int
	IsAdmin         bool
	IsAuditor       bool
	// APIKeyExpiryDays is the default lifetime of new keys; 0 means no expiry.
	APIKeyExpiryDays int
	// MaxAPIKeys is the most active keys a member may hold; 0 means no limit.
	MaxAPIKeys int
	// SkipAuditPrompts and SkipAuditResponses keep members' prompts (request
	// content) and responses out of the audit trail; metadata is always kept.
	SkipAuditPrompts   bool
	SkipAuditResponses bool
	// UserCount is the number of members not deleted (filled by ListGroups only).
	UserCount int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Names of the groups EnsureDefaultGroups seeds.
const (
	GroupAdmin   = "admin"
	GroupAuditor = "auditor"
	GroupFaculty = "faculty"
	GroupStaff   = "staff"
	GroupStudent = "student"
)

// DefaultGroups returns the groups seeded into an empty database.
func DefaultGroups() []Group {
	return []Group{
		{Name: GroupAdmin, DisplayName: "Administrators", Description: "Operators with full access.",
			TokenBudget: 0, RPMLimit: 0, SchedulerWeight: 10, IsAdmin: true, APIKeyExpiryDays: 0, MaxAPIKeys: 0},
		{Name: GroupAuditor, DisplayName: "Auditors", Description: "Read-only access to the admin API.",
			TokenBudget: 100_000, RPMLimit: 30, SchedulerWeight: 1, IsAuditor: true, APIKeyExpiryDays: 45, MaxAPIKeys: 8},
		{Name: GroupFaculty, DisplayName: "Faculty", Description: "Teaching and research staff.",
			TokenBudget: 1_000_000, RPMLimit: 60, SchedulerWeight: 3, APIKeyExpiryDays: 45, MaxAPIKeys: 8},
		{Name: GroupStaff, DisplayName: "Staff", Description: "Administrative and technical staff.",
			TokenBudget: 500_000, RPMLimit: 60, SchedulerWeight: 2, APIKeyExpiryDays: 45, MaxAPIKeys: 8},
		{Name: GroupStudent, DisplayName: "Students", Description: "Students.",
			TokenBudget: 100_000, RPMLimit: 30, SchedulerWeight: 1, APIKeyExpiryDays: 45, MaxAPIKeys: 8},
	}
}

// EnsureDefaultGroups inserts the default groups that are missing. Existing groups,
// edited or not, are left alone.
func (s *Store) EnsureDefaultGroups(ctx context.Context) error {
	existing, err := s.c(ctx).Group.Query().Select(group.FieldName).Strings(ctx)
	if err != nil {
		return dbErr("seed groups", err)
	}
	have := make(map[string]bool, len(existing))
	for _, n := range existing {
		have[n] = true
	}
	for _, g := range DefaultGroups() {
		if have[g.Name] {
			continue
		}
		// Another instance seeding at the same moment is fine.
		if _, err := s.CreateGroup(ctx, g); err != nil && !errors.Is(err, ErrConflict) {
			return fmt.Errorf("seed groups: %w", err)
		}
	}
	return nil
}

// ListGroups returns every group, ordered by name, with its member count.
func (s *Store) ListGroups(ctx context.Context) ([]Group, error) {
	rows, err := s.c(ctx).Group.Query().Order(ent.Asc(group.FieldName)).All(ctx)
	if err != nil {
		return nil, dbErr("list groups", err)
	}
	var counts []struct {
		GroupID int `json:"group_id"`
		Count   int `json:"count"`
	}
	err = s.c(ctx).User.Query().
		Where(user.DeletedAtIsNil()).
		GroupBy(user.FieldGroupID).
		Aggregate(ent.Count()).
		Scan(ctx, &counts)
	if err != nil {
		return nil, dbErr("count group members", err)
	}
	byGroup := make(map[int]int, len(counts))
	for _, c := range counts {
		byGroup[c.GroupID] = c.Count
	}
	out := make([]Group, len(rows))
	for i, g := range rows {
		out[i] = toGroup(g)
		out[i].UserCount = byGroup[g.ID]
	}
	return out, nil
}

// GetGroup returns the group with the given id.
func (s *Store) GetGroup(ctx context.Context, id int64) (Group, error) {
	g, err := s.c(ctx).Group.Get(ctx, int(id))
	if err != nil {
		return Group{}, dbErr(fmt.Sprintf("get group %d", id), err)
	}
	return toGroup(g), nil
}

// GroupPatch changes a group's defaults and privileges; nil fields keep their
// values. A group's name is fixed.
type GroupPatch struct {
	DisplayName      *string
	Description      *string
	TokenBudget      *int64
	RPMLimit         *int
	SchedulerWeight  *int
	APIKeyExpiryDays *int
	MaxAPIKeys       *int
	IsAdmin          *bool
	IsAuditor        *bool
	AuditPrompts     *bool
	AuditResponses   *bool
}

// UpdateGroup applies p to a group and returns it with its member count. An
// unknown group is ErrNotFound; a value out of range is ErrInvalid.
func (s *Store) UpdateGroup(ctx context.Context, id int64, p GroupPatch) (Group, error) {
	op := fmt.Sprintf("update group %d", id)
	err := s.c(ctx).Group.UpdateOneID(int(id)).
		SetNillableDisplayName(p.DisplayName).
		SetNillableDescription(p.Description).
		SetNillableTokenBudget(p.TokenBudget).
		SetNillableRpmLimit(p.RPMLimit).
		SetNillableSchedulerWeight(p.SchedulerWeight).
		SetNillableAPIKeyExpiryDays(p.APIKeyExpiryDays).
		SetNillableMaxAPIKeys(p.MaxAPIKeys).
		SetNillableIsAdmin(p.IsAdmin).
		SetNillableIsAuditor(p.IsAuditor).
		SetNillableAuditPrompts(p.AuditPrompts).
		SetNillableAuditResponses(p.AuditResponses).
		Exec(ctx)
	if err != nil {
		return Group{}, dbErr(op, err)
	}
	g, err := s.GetGroup(ctx, id)
	if err != nil {
		return Group{}, err
	}
	n, err := s.c(ctx).User.Query().Where(user.GroupID(int(id)), user.DeletedAtIsNil()).Count(ctx)
	if err != nil {
		return Group{}, dbErr(op, err)
	}
	g.UserCount = n
	return g, nil
}

// GetGroupByName returns the group with the given name.
func (s *Store) GetGroupByName(ctx context.Context, name string) (Group, error) {
	g, err := s.c(ctx).Group.Query().Where(group.Name(name)).Only(ctx)
	if err != nil {
		return Group{}, dbErr(fmt.Sprintf("get group %q", name), err)
	}
	return toGroup(g), nil
}

func toGroup(g *ent.Group) Group {
	if g == nil {
		return Group{}
	}
	return Group{
		ID:                 int64(g.ID),
		Name:               g.Name,
		DisplayName:        g.DisplayName,
		Description:        g.Description,
		TokenBudget:        g.TokenBudget,
		RPMLimit:           g.RpmLimit,
		SchedulerWeight:    g.SchedulerWeight,
		IsAdmin:            g.IsAdmin,
		IsAuditor:          g.IsAuditor,
		APIKeyExpiryDays:   g.APIKeyExpiryDays,
		MaxAPIKeys:         g.MaxAPIKeys,
		SkipAuditPrompts:   !g.AuditPrompts,
		SkipAuditResponses: !g.AuditResponses,
		CreatedAt:          utc(g.CreatedAt),
		UpdatedAt:          utc(g.UpdatedAt),
	}
}
