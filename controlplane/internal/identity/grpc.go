package identity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/refusal"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// AdminServer implements adminv1.IdentityServiceServer over a Service and its
// store. Who may call it is the server interceptor's decision; this layer validates
// input and converts messages. Hashes and digests never leave it; the full key
// appears only in CreateAPIKeyResponse.
type AdminServer struct {
	adminv1.UnimplementedIdentityServiceServer
	svc  *Service
	st   Store
	acct *Accounts
}

var _ adminv1.IdentityServiceServer = (*AdminServer)(nil)

// NewAdminServer returns the IdentityService handlers.
func NewAdminServer(svc *Service, st Store, acct *Accounts) *AdminServer {
	return &AdminServer{svc: svc, st: st, acct: acct}
}

// ListGroups lists groups with their user counts.
func (a *AdminServer) ListGroups(ctx context.Context, _ *adminv1.ListGroupsRequest) (*adminv1.ListGroupsResponse, error) {
	groups, err := a.st.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*adminv1.Group, len(groups))
	for i, g := range groups {
		out[i] = groupToProto(g)
	}
	return &adminv1.ListGroupsResponse{Groups: out}, nil
}

// UpdateGroup changes a group's defaults.
func (a *AdminServer) UpdateGroup(ctx context.Context, req *adminv1.UpdateGroupRequest) (*adminv1.UpdateGroupResponse, error) {
	if req.GetId() <= 0 {
		return nil, firstInvalid(errors.New("id is required"))
	}
	g, err := a.svc.UpdateGroup(ctx, req.GetId(), store.GroupPatch{
		DisplayName:      req.DisplayName,
		Description:      req.Description,
		TokenBudget:      req.TokenBudget,
		RPMLimit:         intOf(req.RpmLimit),
		SchedulerWeight:  intOf(req.SchedulerWeight),
		APIKeyExpiryDays: intOf(req.ApiKeyExpiryDays),
		MaxAPIKeys:       intOf(req.MaxApiKeys),
		IsAdmin:          req.IsAdmin,
		IsAuditor:        req.IsAuditor,
		AuditPrompts:     req.AuditPrompts,
		AuditResponses:   req.AuditResponses,
	})
	if err != nil {
		return nil, serviceErr(err)
	}
	return &adminv1.UpdateGroupResponse{Group: groupToProto(g)}, nil
}

// CreateUser creates a local user.
func (a *AdminServer) CreateUser(ctx context.Context, req *adminv1.CreateUserRequest) (*adminv1.CreateUserResponse, error) {
	checks := []error{
		validateUsername(req.GetUsername()), validateEmail(req.GetEmail()),
		validatePassword(req.GetPassword()), validateFullName(req.GetFullName()),
		validateProfile(&req.College, &req.Department, &req.IntendedUse),
	}
	if req.GetGroupId() <= 0 {
		checks = append(checks, errors.New("group_id is required"))
	}
	if err := firstInvalid(checks...); err != nil {
		return nil, err
	}
	u, err := a.svc.CreateLocalUser(ctx, LocalUser{
		Username: req.GetUsername(), Email: req.GetEmail(), Password: req.GetPassword(), GroupID: req.GetGroupId(),
		FullName: req.GetFullName(), College: req.GetCollege(), Department: req.GetDepartment(), IntendedUse: req.GetIntendedUse(),
	})
	if err != nil {
		return nil, serviceErr(err)
	}
	return &adminv1.CreateUserResponse{User: userToProto(u)}, nil
}

// ListUsers pages through users.
func (a *AdminServer) ListUsers(ctx context.Context, req *adminv1.ListUsersRequest) (*adminv1.ListUsersResponse, error) {
	switch {
	case req.GetSkip() < 0:
		return nil, invalidError("skip must not be negative")
	case req.GetLimit() < 0 || req.GetLimit() > 1000:
		return nil, invalidError("limit must be between 0 (default 100) and 1000")
	case req.GetGroupId() < 0:
		return nil, invalidError("group_id must not be negative")
	}
	users, total, err := a.st.ListUsers(ctx, store.UserFilter{
		GroupID: req.GetGroupId(), Search: req.GetSearch(), Skip: int(req.GetSkip()), Limit: int(req.GetLimit()),
	})
	if err != nil {
		return nil, err
	}
	out := make([]*adminv1.User, len(users))
	for i, u := range users {
		out[i] = userToProto(u)
	}
	return &adminv1.ListUsersResponse{Users: out, Total: total}, nil
}

// GetUser returns one user.
func (a *AdminServer) GetUser(ctx context.Context, req *adminv1.GetUserRequest) (*adminv1.GetUserResponse, error) {
	if req.GetId() <= 0 {
		return nil, invalidError("id is required")
	}
	u, err := a.st.GetUser(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &adminv1.GetUserResponse{User: userToProto(u)}, nil
}

// Overrides UpdateUserRequest.clear may name.
const (
	overrideRPMLimit    = "rpm_limit"
	overrideWeight      = "weight_override"
	overrideTokenBudget = "token_budget"
)

// UpdateUser changes a user's group, name, state or limit overrides.
func (a *AdminServer) UpdateUser(ctx context.Context, req *adminv1.UpdateUserRequest) (*adminv1.UpdateUserResponse, error) {
	p := store.UserPatch{
		GroupID:        req.GroupId,
		FullName:       req.FullName,
		College:        req.College,
		Department:     req.Department,
		IntendedUse:    req.IntendedUse,
		IsActive:       req.IsActive,
		RPMLimit:       intOf(req.RpmLimit),
		WeightOverride: intOf(req.WeightOverride),
		TokenBudget:    req.TokenBudget,
	}
	var checks []error
	if req.GetId() <= 0 {
		checks = append(checks, errors.New("id is required"))
	}
	if req.GroupId != nil && req.GetGroupId() <= 0 {
		checks = append(checks, errors.New("group_id must be positive"))
	}
	if p.FullName != nil {
		checks = append(checks, validateFullName(*p.FullName))
	}
	checks = append(checks, validateRPMLimit(p.RPMLimit), validateWeight(p.WeightOverride), validateTokenBudget(p.TokenBudget),
		validateProfile(p.College, p.Department, p.IntendedUse))
	for _, name := range req.GetClear() {
		var set bool
		switch name {
		case overrideRPMLimit:
			p.ClearRPMLimit, set = true, p.RPMLimit != nil
		case overrideWeight:
			p.ClearWeightOverride, set = true, p.WeightOverride != nil
		case overrideTokenBudget:
			p.ClearTokenBudget, set = true, p.TokenBudget != nil
		default:
			checks = append(checks, fmt.Errorf("clear: unknown override %q (want %s, %s or %s)",
				name, overrideRPMLimit, overrideWeight, overrideTokenBudget))
			continue
		}
		if set {
			checks = append(checks, fmt.Errorf("%s is both set and cleared", name))
		}
	}
	if err := firstInvalid(checks...); err != nil {
		return nil, err
	}
	u, err := a.svc.UpdateUser(ctx, req.GetId(), p)
	if err != nil {
		return nil, serviceErr(err)
	}
	return &adminv1.UpdateUserResponse{User: userToProto(u)}, nil
}

// CreateAPIKey mints a key; the full key is in the answer and nowhere else.
func (a *AdminServer) CreateAPIKey(ctx context.Context, req *adminv1.CreateAPIKeyRequest) (*adminv1.CreateAPIKeyResponse, error) {
	var expiresAt *time.Time
	checks := []error{validateKeyName(req.GetName())}
	if req.GetUserId() <= 0 {
		checks = append(checks, errors.New("user_id is required"))
	}
	if _, err := normalizeScopes(req.GetScopes()); err != nil {
		checks = append(checks, err)
	}
	rpm := intOf(req.RpmLimit)
	checks = append(checks, validateRPMLimit(rpm))
	if ts := req.GetExpiresAt(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			checks = append(checks, errors.New("expires_at is not a valid timestamp"))
		} else {
			t := ts.AsTime()
			expiresAt = &t
			checks = append(checks, validateExpiry(expiresAt, a.svc.now()))
		}
	}
	if err := firstInvalid(checks...); err != nil {
		return nil, err
	}
	k, full, err := a.svc.CreateKey(ctx, KeySpec{
		UserID: req.GetUserId(), Name: req.GetName(), ExpiresAt: expiresAt, Scopes: req.GetScopes(), RPMLimit: rpm,
		ServiceName: req.GetServiceName(),
	})
	if err != nil {
		return nil, serviceErr(err)
	}
	return &adminv1.CreateAPIKeyResponse{ApiKey: a.keyToProto(k), FullKey: full}, nil
}

// ListAPIKeys lists keys, optionally of one user and one status.
func (a *AdminServer) ListAPIKeys(ctx context.Context, req *adminv1.ListAPIKeysRequest) (*adminv1.ListAPIKeysResponse, error) {
	switch req.GetStatus() {
	case "", store.KeyActive, store.KeyRevoked, store.KeyExpired:
	default:
		return nil, invalidf("status %q is not one of active, revoked, expired", req.GetStatus())
	}
	if req.GetUserId() < 0 {
		return nil, invalidError("user_id must not be negative")
	}
	if len(req.GetSearch()) > 100 {
		return nil, invalidError("search is longer than 100 characters")
	}
	keys, err := a.st.ListAPIKeys(ctx, store.APIKeyFilter{UserID: req.GetUserId(), Status: req.GetStatus(), Search: req.GetSearch()})
	if err != nil {
		return nil, err
	}
	return &adminv1.ListAPIKeysResponse{ApiKeys: a.svc.keysToProto(keys)}, nil
}

// RevokeAPIKey revokes a key; revoking a revoked key succeeds.
func (a *AdminServer) RevokeAPIKey(ctx context.Context, req *adminv1.RevokeAPIKeyRequest) (*adminv1.RevokeAPIKeyResponse, error) {
	if req.GetId() <= 0 {
		return nil, invalidError("id is required")
	}
	k, err := a.svc.Revoke(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &adminv1.RevokeAPIKeyResponse{ApiKey: a.keyToProto(k)}, nil
}

// DeleteAPIKey revokes a key on every data plane and deletes it.
func (a *AdminServer) DeleteAPIKey(ctx context.Context, req *adminv1.DeleteAPIKeyRequest) (*adminv1.DeleteAPIKeyResponse, error) {
	if req.GetId() <= 0 {
		return nil, firstInvalid(errors.New("id is required"))
	}
	if _, err := a.acct.DeleteKey(ctx, req.GetId()); err != nil {
		return nil, err
	}
	return &adminv1.DeleteAPIKeyResponse{}, nil
}

// ErrInvalidArgument refuses a malformed admin or account call; the refusal's
// own message names the field. The server's error table maps it to
// InvalidArgument.
var ErrInvalidArgument = errors.New("invalid argument")

// invalidError is a malformed call: it maps like ErrInvalidArgument and reads
// as its own message.
func invalidError(msg string) error { return refusal.New(ErrInvalidArgument, msg) }

func invalidf(format string, args ...any) error { return invalidError(fmt.Sprintf(format, args...)) }

// firstInvalid returns the first failed check as an invalid argument.
func firstInvalid(checks ...error) error {
	for _, err := range checks {
		if err != nil {
			return invalidError(err.Error())
		}
	}
	return nil
}

// serviceErr reads the store's refusal of a value as an invalid argument, with
// the store's message; other errors (ErrKeyLimit, ErrSelfDelete, the store's
// other sentinels) pass on to the server's error table as they are.
func serviceErr(err error) error {
	if errors.Is(err, store.ErrInvalid) {
		return invalidError(err.Error())
	}
	return err
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tsPtr(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// intOf widens an optional proto int32.
func intOf(v *int32) *int {
	if v == nil {
		return nil
	}
	n := int(*v)
	return &n
}

// int32Of narrows an optional override for a proto message; overrides are
// validated to fit.
func int32Of(v *int) *int32 {
	if v == nil {
		return nil
	}
	n := int32(min(*v, math.MaxInt32))
	return &n
}

func groupToProto(g store.Group) *adminv1.Group {
	return &adminv1.Group{
		Id:               g.ID,
		Name:             g.Name,
		DisplayName:      g.DisplayName,
		Description:      g.Description,
		TokenBudget:      g.TokenBudget,
		RpmLimit:         int32(g.RPMLimit),
		SchedulerWeight:  int32(g.SchedulerWeight),
		IsAdmin:          g.IsAdmin,
		IsAuditor:        g.IsAuditor,
		UserCount:        int32(g.UserCount),
		ApiKeyExpiryDays: int32(g.APIKeyExpiryDays),
		MaxApiKeys:       int32(g.MaxAPIKeys),
		AuditPrompts:     !g.SkipAuditPrompts,
		AuditResponses:   !g.SkipAuditResponses,
	}
}

func userToProto(u store.User) *adminv1.User {
	return &adminv1.User{
		Id:             u.ID,
		Username:       u.Username,
		Email:          u.Email,
		FullName:       u.FullName,
		College:        u.College,
		Department:     u.Department,
		IntendedUse:    u.IntendedUse,
		GroupId:        u.GroupID,
		GroupName:      u.GroupName,
		IsActive:       u.IsActive && u.DeletedAt == nil,
		CreatedAt:      ts(u.CreatedAt),
		RpmLimit:       int32Of(u.RPMLimit),
		WeightOverride: int32Of(u.WeightOverride),
		TokenBudget:    u.TokenBudget,
	}
}

func (a *AdminServer) keyToProto(k store.APIKey) *adminv1.APIKey { return a.svc.keyToProto(k) }

func (s *Service) keysToProto(keys []store.APIKey) []*adminv1.APIKey {
	out := make([]*adminv1.APIKey, len(keys))
	for i, k := range keys {
		out[i] = s.keyToProto(k)
	}
	return out
}

// keyToProto converts a key; an active key past its expiry reads as expired even
// before the store's maintenance marks it so.
func (s *Service) keyToProto(k store.APIKey) *adminv1.APIKey {
	st := k.Status
	if st == store.KeyActive && k.ExpiresAt != nil && !s.now().Before(*k.ExpiresAt) {
		st = store.KeyExpired
	}
	return &adminv1.APIKey{
		Id:          k.ID,
		UserId:      k.UserID,
		Username:    k.Username,
		Name:        k.Name,
		KeyPrefix:   k.Prefix,
		Status:      st,
		ExpiresAt:   tsPtr(k.ExpiresAt),
		LastUsedAt:  tsPtr(k.LastUsedAt),
		UsageCount:  k.UsageCount,
		Scopes:      k.Scopes,
		CreatedAt:   ts(k.CreatedAt),
		RpmLimit:    int32Of(k.RPMLimit),
		IsService:   k.IsService,
		ServiceName: k.ServiceName,
	}
}
