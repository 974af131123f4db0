package cpclient

import (
	"context"
	"time"

	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// GetUser returns one user.
func (w *Web) GetUser(ctx context.Context, c Caller, id int64) (User, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.identity.GetUser(ctx, &adminv1.GetUserRequest{Id: id})
	if err != nil {
		return User{}, webError(err)
	}
	return user(r.GetUser()), nil
}

// UserChange is an edit of a user's group and limits. A nil limit goes back
// to the group's value (it is cleared); a set one overrides it (0: unlimited).
type UserChange struct {
	GroupID                  int64
	FullName                 string
	RPMLimit, WeightOverride *int
	TokenBudget              *int64
}

// UpdateUser applies ch to a user.
func (w *Web) UpdateUser(ctx context.Context, c Caller, id int64, ch UserChange) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	req := &adminv1.UpdateUserRequest{Id: id, FullName: &ch.FullName}
	if ch.GroupID > 0 {
		req.GroupId = &ch.GroupID
	}
	if ch.RPMLimit != nil {
		n := int32(*ch.RPMLimit)
		req.RpmLimit = &n
	} else {
		req.Clear = append(req.Clear, "rpm_limit")
	}
	if ch.WeightOverride != nil {
		n := int32(*ch.WeightOverride)
		req.WeightOverride = &n
	} else {
		req.Clear = append(req.Clear, "weight_override")
	}
	if ch.TokenBudget != nil {
		req.TokenBudget = ch.TokenBudget
	} else {
		req.Clear = append(req.Clear, "token_budget")
	}
	_, err := w.identity.UpdateUser(ctx, req)
	return webError(err)
}

// DeleteUser deletes a user with their keys and sessions (an admin cannot
// delete themself: the control plane refuses).
func (w *Web) DeleteUser(ctx context.Context, c Caller, id int64) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.identity.DeleteUser(ctx, &adminv1.DeleteUserRequest{Id: id})
	return webError(err)
}

// SaveGroup creates a group (id 0) or replaces every setting of one; it
// returns the group's id.
func (w *Web) SaveGroup(ctx context.Context, c Caller, id int64, g Group) (int64, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	budget, rpm, weight := g.TokenBudget, int32(g.RPMLimit), int32(g.Weight)
	expiry, maxKeys := int32(g.KeyExpiryDays), int32(g.MaxKeys)
	if id == 0 {
		r, err := w.identity.CreateGroup(ctx, &adminv1.CreateGroupRequest{Name: g.Name, DisplayName: g.DisplayName,
			Description: g.Description, TokenBudget: &budget, RpmLimit: &rpm, SchedulerWeight: &weight,
			ApiKeyExpiryDays: &expiry, MaxApiKeys: &maxKeys, IsAdmin: g.IsAdmin, IsAuditor: g.IsAuditor})
		if err != nil {
			return 0, webError(err)
		}
		return r.GetGroup().GetId(), nil
	}
	_, err := w.identity.UpdateGroup(ctx, &adminv1.UpdateGroupRequest{Id: id, DisplayName: &g.DisplayName,
		Description: &g.Description, TokenBudget: &budget, RpmLimit: &rpm, SchedulerWeight: &weight,
		ApiKeyExpiryDays: &expiry, MaxApiKeys: &maxKeys, IsAdmin: &g.IsAdmin, IsAuditor: &g.IsAuditor,
		AuditPrompts: &g.AuditPrompts, AuditResponses: &g.AuditResponses})
	return id, webError(err)
}

// DeleteGroup deletes a group; the control plane refuses (409) while it has members.
func (w *Web) DeleteGroup(ctx context.Context, c Caller, id int64) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.identity.DeleteGroup(ctx, &adminv1.DeleteGroupRequest{Id: id})
	return webError(err)
}

// RegisterNode registers a GPU node whose agent presents secret.
func (w *Web) RegisterNode(ctx context.Context, c Caller, name, hostname, secret string) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.registry.RegisterNode(ctx, &adminv1.RegisterNodeRequest{Name: name, Hostname: hostname, AgentSecret: secret})
	return webError(err)
}

// DeleteNode removes a node no backend references.
func (w *Web) DeleteNode(ctx context.Context, c Caller, id int64) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.registry.DeleteNode(ctx, &adminv1.DeleteNodeRequest{Id: id})
	return webError(err)
}

// ServiceKeyRequest is a user's request for a service key, as reviewers see it.
type ServiceKeyRequest struct {
	ID                                 int64
	Username, ServiceName              string
	Justification, Status, ReviewNotes string
	// ReviewedAt and CollectedAt are zero until they happen.
	CreatedAt, ReviewedAt, CollectedAt time.Time
}

// ServiceKeyRequests lists service-key requests by status (pending, approved, denied, all).
func (w *Web) ServiceKeyRequests(ctx context.Context, c Caller, status string) ([]ServiceKeyRequest, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.identity.ListServiceKeyRequests(ctx, &adminv1.ListServiceKeyRequestsRequest{Status: status})
	if err != nil {
		return nil, webError(err)
	}
	out := make([]ServiceKeyRequest, len(r.GetServiceKeyRequests()))
	for i, q := range r.GetServiceKeyRequests() {
		out[i] = ServiceKeyRequest{ID: q.GetId(), Username: q.GetUsername(), ServiceName: q.GetServiceName(),
			Justification: q.GetJustification(), Status: q.GetStatus(), ReviewNotes: q.GetReviewNotes(),
			CreatedAt: ts(q.GetCreatedAt()), ReviewedAt: ts(q.GetReviewedAt()), CollectedAt: ts(q.GetCollectedAt())}
	}
	return out, nil
}

// ReviewServiceKeyRequest approves or denies a service-key request.
func (w *Web) ReviewServiceKeyRequest(ctx context.Context, c Caller, id int64, approve bool, notes string) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.identity.ReviewServiceKeyRequest(ctx, &adminv1.ReviewServiceKeyRequestRequest{Id: id, Approved: approve, Notes: notes})
	return webError(err)
}
