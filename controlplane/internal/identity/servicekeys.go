package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// maxServiceNameLen bounds a service key's service name (and so its name).
const maxServiceNameLen = 100

// FileServiceKeyRequest files a user's request for a service key named for
// serviceName.
func (a *Accounts) FileServiceKeyRequest(ctx context.Context, userID int64, serviceName, justification string) (store.ServiceKeyRequest, error) {
	op := fmt.Sprintf("file service-key request of user %d", userID)
	serviceName, justification = strings.TrimSpace(serviceName), strings.TrimSpace(justification)
	switch {
	case serviceName == "" || utf8.RuneCountInString(serviceName) > maxServiceNameLen || !utf8.ValidString(serviceName):
		return store.ServiceKeyRequest{}, invalidInput(op, fmt.Errorf("service_name must be 1 to %d characters", maxServiceNameLen))
	case justification == "" || len(justification) > maxJustificationLen || !utf8.ValidString(justification):
		return store.ServiceKeyRequest{}, invalidInput(op, fmt.Errorf("justification must be 1 to %d characters", maxJustificationLen))
	}
	r, err := a.st.CreateServiceKeyRequest(ctx, userID, serviceName, justification)
	if err != nil {
		return store.ServiceKeyRequest{}, err
	}
	a.svc.log.InfoContext(ctx, "service-key request filed", slog.Int64("service_key_request_id", r.ID), slog.Int64("user_id", userID))
	return r, nil
}

// ListServiceKeyRequests lists service-key requests.
func (a *Accounts) ListServiceKeyRequests(ctx context.Context, f store.ServiceKeyRequestFilter) ([]store.ServiceKeyRequest, error) {
	return a.st.ListServiceKeyRequests(ctx, f)
}

// ReviewServiceKeyRequest approves or denies a pending request. Approval mints
// nothing yet: the requester collects the key (CollectServiceKey), so that its
// secret is shown to them alone and never stored.
func (a *Accounts) ReviewServiceKeyRequest(ctx context.Context, reviewer, id int64, approved bool, notes string) (store.ServiceKeyRequest, error) {
	op := fmt.Sprintf("review service-key request %d", id)
	if len(notes) > maxJustificationLen || !utf8.ValidString(notes) {
		return store.ServiceKeyRequest{}, invalidInput(op, fmt.Errorf("notes must be at most %d characters", maxJustificationLen))
	}
	r, err := a.st.ReviewServiceKeyRequest(ctx, id, store.ServiceKeyReview{ReviewerID: reviewer, Approved: approved, Notes: notes, At: a.svc.now()})
	if err != nil {
		return store.ServiceKeyRequest{}, err
	}
	a.svc.log.InfoContext(ctx, "service-key request reviewed", slog.Int64("service_key_request_id", id), slog.Bool("approved", approved),
		slog.Int64("user_id", r.UserID))
	return r, nil
}

// CollectServiceKey mints the service key of an approved request of userID and
// returns it with the full key, which exists nowhere else afterwards. The key
// is owned by the requester, named for the service, has the inference scope,
// never expires and does not count against the group's key limit. A request
// yields one key: a second collection is store.ErrConflict; a request not
// approved is store.ErrInvalid; another user's request reads as not found.
func (a *Accounts) CollectServiceKey(ctx context.Context, userID, id int64) (store.ServiceKeyRequest, store.APIKey, string, error) {
	op := fmt.Sprintf("collect service key of request %d", id)
	u, err := a.st.GetUser(ctx, userID)
	if err != nil {
		return store.ServiceKeyRequest{}, store.APIKey{}, "", fmt.Errorf("%s: %w", op, err)
	}
	if !u.IsActive || u.DeletedAt != nil {
		return store.ServiceKeyRequest{}, store.APIKey{}, "", fmt.Errorf("%s: %w", op, ErrUserInactive)
	}
	key, err := NewKey()
	if err != nil {
		return store.ServiceKeyRequest{}, store.APIKey{}, "", err
	}
	h, err := a.svc.hash(ctx, key, a.svc.keyParams)
	if err != nil {
		return store.ServiceKeyRequest{}, store.APIKey{}, "", fmt.Errorf("%s: %w", op, err)
	}
	spec := store.APIKeySpec{Prefix: DisplayPrefix(key), SHA256: KeyDigest(key), Hash: h, Scopes: []string{ScopeInference}}
	r, k, err := a.st.CollectServiceKey(ctx, id, userID, spec, a.svc.now())
	if err != nil {
		return store.ServiceKeyRequest{}, store.APIKey{}, "", err
	}
	a.svc.log.InfoContext(ctx, "service key collected", slog.Int64("service_key_request_id", id),
		slog.Int64("api_key_id", k.ID), slog.String("key_prefix", k.Prefix), slog.Int64("user_id", userID))
	return r, k, key, nil
}

// DeleteKey deletes a key; it is forgotten and announced as revoked first, so
// that data planes refuse it at once.
func (a *Accounts) DeleteKey(ctx context.Context, id int64) (store.APIKey, error) {
	k, err := a.st.DeleteAPIKey(ctx, id)
	if err != nil {
		return store.APIKey{}, err
	}
	a.svc.cache.evict(k.SHA256)
	if k.Status != store.KeyRevoked {
		a.svc.notify(k.Prefix)
	}
	a.svc.log.InfoContext(ctx, "API key deleted", slog.Int64("api_key_id", k.ID), slog.String("key_prefix", k.Prefix))
	return k, nil
}

// ListServiceKeyRequests lists service-key requests, pending ones by default.
func (a *AdminServer) ListServiceKeyRequests(ctx context.Context, req *adminv1.ListServiceKeyRequestsRequest) (*adminv1.ListServiceKeyRequestsResponse, error) {
	st, err := requestFilter(req.GetStatus(), req.GetUserId())
	if err != nil {
		return nil, err
	}
	reqs, err := a.acct.ListServiceKeyRequests(ctx, store.ServiceKeyRequestFilter{UserID: req.GetUserId(), Status: st})
	if err != nil {
		return nil, err
	}
	return &adminv1.ListServiceKeyRequestsResponse{ServiceKeyRequests: serviceKeyRequestsToProto(reqs)}, nil
}

// ReviewServiceKeyRequest approves or denies a pending service-key request.
func (a *AdminServer) ReviewServiceKeyRequest(ctx context.Context, req *adminv1.ReviewServiceKeyRequestRequest) (*adminv1.ReviewServiceKeyRequestResponse, error) {
	if req.GetId() <= 0 {
		return nil, firstInvalid(errors.New("id is required"))
	}
	p, _ := FromContext(ctx)
	r, err := a.acct.ReviewServiceKeyRequest(ctx, p.UserID, req.GetId(), req.GetApproved(), req.GetNotes())
	if err != nil {
		return nil, serviceErr(err)
	}
	return &adminv1.ReviewServiceKeyRequestResponse{ServiceKeyRequest: serviceKeyRequestToProto(r)}, nil
}

// CreateServiceKeyRequest files a service-key request for the caller.
func (s *AccountServer) CreateServiceKeyRequest(ctx context.Context, req *accountv1.CreateServiceKeyRequestRequest) (*accountv1.CreateServiceKeyRequestResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.acct.FileServiceKeyRequest(ctx, p.UserID, req.GetServiceName(), req.GetJustification())
	if err != nil {
		return nil, serviceErr(err)
	}
	return &accountv1.CreateServiceKeyRequestResponse{ServiceKeyRequest: serviceKeyRequestToProto(r)}, nil
}

// ListMyServiceKeyRequests lists the caller's service-key requests, newest first.
func (s *AccountServer) ListMyServiceKeyRequests(ctx context.Context, _ *accountv1.ListMyServiceKeyRequestsRequest) (*accountv1.ListMyServiceKeyRequestsResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	reqs, err := s.acct.ListServiceKeyRequests(ctx, store.ServiceKeyRequestFilter{UserID: p.UserID})
	if err != nil {
		return nil, err
	}
	out := serviceKeyRequestsToProto(reqs)
	slices.Reverse(out)
	return &accountv1.ListMyServiceKeyRequestsResponse{ServiceKeyRequests: out}, nil
}

// CollectServiceKey mints the key of one of the caller's approved requests.
func (s *AccountServer) CollectServiceKey(ctx context.Context, req *accountv1.CollectServiceKeyRequest) (*accountv1.CollectServiceKeyResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetId() <= 0 {
		return nil, firstInvalid(errors.New("id is required"))
	}
	r, k, full, err := s.acct.CollectServiceKey(ctx, p.UserID, req.GetId())
	if err != nil {
		return nil, serviceErr(err)
	}
	return &accountv1.CollectServiceKeyResponse{
		ApiKey: s.svc.keyToProto(k), FullKey: full, ServiceKeyRequest: serviceKeyRequestToProto(r),
	}, nil
}

func serviceKeyRequestsToProto(reqs []store.ServiceKeyRequest) []*adminv1.ServiceKeyRequest {
	out := make([]*adminv1.ServiceKeyRequest, len(reqs))
	for i, r := range reqs {
		out[i] = serviceKeyRequestToProto(r)
	}
	return out
}

func serviceKeyRequestToProto(r store.ServiceKeyRequest) *adminv1.ServiceKeyRequest {
	return &adminv1.ServiceKeyRequest{
		Id:            r.ID,
		UserId:        r.UserID,
		Username:      r.Username,
		ServiceName:   r.ServiceName,
		Justification: r.Justification,
		Status:        r.Status,
		ReviewerId:    r.ReviewerID,
		ReviewNotes:   r.ReviewNotes,
		CreatedAt:     ts(r.CreatedAt),
		ReviewedAt:    tsPtr(r.ReviewedAt),
		ApiKeyId:      r.APIKeyID,
		CollectedAt:   tsPtr(r.CollectedAt),
	}
}
