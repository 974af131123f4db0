package identity

import (
	"context"
	"errors"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// Defaults of a new group, as in the original.
const (
	defaultGroupTokenBudget = 100_000
	defaultGroupRPM         = 30
	defaultGroupWeight      = 1
	defaultGroupKeyDays     = 45
	defaultGroupMaxKeys     = 16
)

// CreateGroup creates a group.
func (a *AdminServer) CreateGroup(ctx context.Context, req *adminv1.CreateGroupRequest) (*adminv1.CreateGroupResponse, error) {
	g := store.Group{
		Name:             req.GetName(),
		DisplayName:      req.GetDisplayName(),
		Description:      req.GetDescription(),
		TokenBudget:      defaultGroupTokenBudget,
		RPMLimit:         defaultGroupRPM,
		SchedulerWeight:  defaultGroupWeight,
		APIKeyExpiryDays: defaultGroupKeyDays,
		MaxAPIKeys:       defaultGroupMaxKeys,
		IsAdmin:          req.GetIsAdmin(),
		IsAuditor:        req.GetIsAuditor(),
	}
	if req.TokenBudget != nil {
		g.TokenBudget = req.GetTokenBudget()
	}
	if req.RpmLimit != nil {
		g.RPMLimit = int(req.GetRpmLimit())
	}
	if req.SchedulerWeight != nil {
		g.SchedulerWeight = int(req.GetSchedulerWeight())
	}
	if req.ApiKeyExpiryDays != nil {
		g.APIKeyExpiryDays = int(req.GetApiKeyExpiryDays())
	}
	if req.MaxApiKeys != nil {
		g.MaxAPIKeys = int(req.GetMaxApiKeys())
	}
	if err := validateGroup(g); err != nil {
		return nil, firstInvalid(err)
	}
	out, err := a.acct.CreateGroup(ctx, g)
	if err != nil {
		return nil, serviceErr(err)
	}
	return &adminv1.CreateGroupResponse{Group: groupToProto(out)}, nil
}

// DeleteGroup deletes a group without members.
func (a *AdminServer) DeleteGroup(ctx context.Context, req *adminv1.DeleteGroupRequest) (*adminv1.DeleteGroupResponse, error) {
	if req.GetId() <= 0 {
		return nil, firstInvalid(errors.New("id is required"))
	}
	if err := a.acct.DeleteGroup(ctx, req.GetId()); err != nil {
		return nil, err
	}
	return &adminv1.DeleteGroupResponse{}, nil
}

// DeleteUser deletes a user and what belongs only to them.
func (a *AdminServer) DeleteUser(ctx context.Context, req *adminv1.DeleteUserRequest) (*adminv1.DeleteUserResponse, error) {
	if req.GetId() <= 0 {
		return nil, firstInvalid(errors.New("id is required"))
	}
	p, _ := FromContext(ctx)
	del, err := a.acct.DeleteUser(ctx, p.UserID, req.GetId())
	if err != nil {
		return nil, serviceErr(err)
	}
	return &adminv1.DeleteUserResponse{ApiKeysDeleted: int32(len(del.Keys)), SessionsEnded: int32(del.Sessions)}, nil
}

// ResetPassword sets a local account's password and ends its sessions.
func (a *AdminServer) ResetPassword(ctx context.Context, req *adminv1.ResetPasswordRequest) (*adminv1.ResetPasswordResponse, error) {
	checks := []error{validatePassword(req.GetNewPassword())}
	if req.GetId() <= 0 {
		checks = append(checks, errors.New("id is required"))
	}
	if err := firstInvalid(checks...); err != nil {
		return nil, err
	}
	n, err := a.acct.ResetPassword(ctx, req.GetId(), req.GetNewPassword())
	if err != nil {
		return nil, serviceErr(err)
	}
	return &adminv1.ResetPasswordResponse{SessionsEnded: int32(n)}, nil
}

// RenewAPIKey gives any key a new expiry.
func (a *AdminServer) RenewAPIKey(ctx context.Context, req *adminv1.RenewAPIKeyRequest) (*adminv1.RenewAPIKeyResponse, error) {
	if req.GetId() <= 0 {
		return nil, firstInvalid(errors.New("id is required"))
	}
	k, err := a.acct.RenewKey(ctx, 0, req.GetId())
	if err != nil {
		return nil, serviceErr(err)
	}
	return &adminv1.RenewAPIKeyResponse{ApiKey: a.keyToProto(k)}, nil
}

// Statuses ListQuotaRequests accepts besides the stored ones.
const quotaStatusAll = "all"

// ListQuotaRequests lists quota requests, pending ones by default.
func (a *AdminServer) ListQuotaRequests(ctx context.Context, req *adminv1.ListQuotaRequestsRequest) (*adminv1.ListQuotaRequestsResponse, error) {
	f := store.QuotaRequestFilter{UserID: req.GetUserId(), Status: req.GetStatus()}
	switch f.Status {
	case "":
		f.Status = store.QuotaRequestPending
	case quotaStatusAll:
		f.Status = ""
	case store.QuotaRequestPending, store.QuotaRequestApproved, store.QuotaRequestDenied:
	default:
		return nil, invalidf("status %q is not one of pending, approved, denied, all", f.Status)
	}
	if f.UserID < 0 {
		return nil, invalidError("user_id must not be negative")
	}
	reqs, err := a.acct.ListQuotaRequests(ctx, f)
	if err != nil {
		return nil, err
	}
	return &adminv1.ListQuotaRequestsResponse{QuotaRequests: quotaRequestsToProto(reqs)}, nil
}

// ReviewQuotaRequest approves or denies a pending request.
func (a *AdminServer) ReviewQuotaRequest(ctx context.Context, req *adminv1.ReviewQuotaRequestRequest) (*adminv1.ReviewQuotaRequestResponse, error) {
	if req.GetId() <= 0 {
		return nil, firstInvalid(errors.New("id is required"))
	}
	if req.GrantedTokens != nil && !req.GetApproved() {
		return nil, firstInvalid(errors.New("granted_tokens is only for an approval"))
	}
	p, _ := FromContext(ctx)
	r, err := a.acct.ReviewQuotaRequest(ctx, p.UserID, req.GetId(), req.GetApproved(), req.GetNotes(), req.GrantedTokens)
	if err != nil {
		return nil, serviceErr(err)
	}
	return &adminv1.ReviewQuotaRequestResponse{QuotaRequest: quotaRequestToProto(r)}, nil
}

func quotaRequestsToProto(reqs []store.QuotaRequest) []*adminv1.QuotaRequest {
	out := make([]*adminv1.QuotaRequest, len(reqs))
	for i, r := range reqs {
		out[i] = quotaRequestToProto(r)
	}
	return out
}

func quotaRequestToProto(r store.QuotaRequest) *adminv1.QuotaRequest {
	return &adminv1.QuotaRequest{
		Id:              r.ID,
		UserId:          r.UserID,
		Username:        r.Username,
		RequestedTokens: r.RequestedTokens,
		Justification:   r.Justification,
		Status:          r.Status,
		ReviewerId:      r.ReviewerID,
		ReviewNotes:     r.ReviewNotes,
		GrantedTokens:   r.GrantedTokens,
		CreatedAt:       ts(r.CreatedAt),
		ReviewedAt:      tsPtr(r.ReviewedAt),
	}
}
