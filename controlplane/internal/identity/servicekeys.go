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

// ServiceKeyForm is the form a user fills in to ask for a service key.
type ServiceKeyForm struct {
	ServiceName, Justification string
	// AlternativeContacts are e-mail addresses of people to reach about the
	// service besides the owner.
	AlternativeContacts []string
	// DataRiskLevel is one of DataRiskLevels.
	DataRiskLevel string
	// ComplianceTags are among ComplianceTags; ComplianceOther says what
	// "other" means.
	ComplianceTags  []string
	ComplianceOther string
}

// DataRiskLevels are the impact levels of FIPS 199 (and of most universities'
// data classification), from least to most sensitive.
var DataRiskLevels = []string{"low", "moderate", "high"}

// ComplianceTags name the rules that can apply to a service's data; "none"
// stands alone and "other" needs ServiceKeyForm.ComplianceOther.
var ComplianceTags = []string{"ferpa", "hipaa", "cui", "itar", "ear", "gdpr", "pci", "irb", "export_controlled", "none", "other"}

// Limits of the service-key form.
const (
	maxAlternativeContacts = 5
	maxComplianceOtherLen  = 500
)

// validate normalizes f (trimmed, lower-cased tags and level, duplicates
// dropped) and returns the first problem.
func (f *ServiceKeyForm) validate() error {
	f.ServiceName, f.Justification = strings.TrimSpace(f.ServiceName), strings.TrimSpace(f.Justification)
	f.DataRiskLevel = strings.ToLower(strings.TrimSpace(f.DataRiskLevel))
	f.ComplianceOther = strings.TrimSpace(f.ComplianceOther)
	switch {
	case f.ServiceName == "" || utf8.RuneCountInString(f.ServiceName) > maxServiceNameLen || !utf8.ValidString(f.ServiceName):
		return fmt.Errorf("service_name must be 1 to %d characters", maxServiceNameLen)
	case f.Justification == "" || len(f.Justification) > maxJustificationLen || !utf8.ValidString(f.Justification):
		return fmt.Errorf("justification must be 1 to %d characters", maxJustificationLen)
	case !slices.Contains(DataRiskLevels, f.DataRiskLevel):
		return fmt.Errorf("data_risk_level must be one of %s", strings.Join(DataRiskLevels, ", "))
	}
	contacts, err := normalizeContacts(f.AlternativeContacts)
	if err != nil {
		return err
	}
	f.AlternativeContacts = contacts
	tags, err := normalizeTags(f.ComplianceTags)
	if err != nil {
		return err
	}
	f.ComplianceTags = tags
	other := slices.Contains(tags, "other")
	switch {
	case other && f.ComplianceOther == "":
		return errors.New(`compliance_other is required when compliance_tags has "other"`)
	case !other && f.ComplianceOther != "":
		return errors.New(`compliance_other is only for compliance_tags with "other"`)
	case len(f.ComplianceOther) > maxComplianceOtherLen || !utf8.ValidString(f.ComplianceOther):
		return fmt.Errorf("compliance_other must be at most %d characters", maxComplianceOtherLen)
	}
	return nil
}

func normalizeContacts(in []string) ([]string, error) {
	var out []string
	for _, c := range in {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if err := validateEmail(c); err != nil {
			return nil, fmt.Errorf("alternative_contacts: %q: %w", c, err)
		}
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, c) }) {
			out = append(out, c)
		}
	}
	if len(out) > maxAlternativeContacts {
		return nil, fmt.Errorf("alternative_contacts: at most %d addresses", maxAlternativeContacts)
	}
	return out, nil
}

func normalizeTags(in []string) ([]string, error) {
	var out []string
	for _, t := range in {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" {
			continue
		}
		if !slices.Contains(ComplianceTags, t) {
			return nil, fmt.Errorf("compliance_tags: unknown tag %q (want %s)", t, strings.Join(ComplianceTags, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	switch {
	case len(out) == 0:
		return nil, errors.New(`compliance_tags needs at least one tag ("none" when no rule applies)`)
	case slices.Contains(out, "none") && len(out) > 1:
		return nil, errors.New(`compliance_tags: "none" cannot be combined with other tags`)
	}
	return out, nil
}

// FileServiceKeyRequest files a user's request for a service key.
func (a *Accounts) FileServiceKeyRequest(ctx context.Context, userID int64, f ServiceKeyForm) (store.ServiceKeyRequest, error) {
	op := fmt.Sprintf("file service-key request of user %d", userID)
	if err := f.validate(); err != nil {
		return store.ServiceKeyRequest{}, invalidInput(op, err)
	}
	r, err := a.st.CreateServiceKeyRequest(ctx, store.ServiceKeyRequestSpec{
		UserID: userID, ServiceName: f.ServiceName, Justification: f.Justification,
		AlternativeContacts: f.AlternativeContacts, DataRiskLevel: f.DataRiskLevel,
		ComplianceTags: f.ComplianceTags, ComplianceOther: f.ComplianceOther,
	})
	if err != nil {
		return store.ServiceKeyRequest{}, err
	}
	a.svc.log.InfoContext(ctx, "service-key request filed", slog.Int64("service_key_request_id", r.ID), slog.Int64("user_id", userID),
		slog.String("data_risk_level", r.DataRiskLevel))
	return r, nil
}

// FileServiceKeyRevocation files userID's request that the admins revoke their
// service key keyID. A key of another user reads as not found; a key that is
// not an active service key is store.ErrInvalid; a second pending request for
// the same key store.ErrConflict.
func (a *Accounts) FileServiceKeyRevocation(ctx context.Context, userID, keyID int64, reason string) (store.ServiceKeyRequest, error) {
	op := fmt.Sprintf("file revocation request of API key %d", keyID)
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > maxJustificationLen || !utf8.ValidString(reason) {
		return store.ServiceKeyRequest{}, invalidInput(op, fmt.Errorf("reason must be 1 to %d characters", maxJustificationLen))
	}
	r, err := a.st.CreateServiceKeyRevocationRequest(ctx, userID, keyID, reason)
	if err != nil {
		return store.ServiceKeyRequest{}, err
	}
	a.svc.log.InfoContext(ctx, "service-key revocation requested", slog.Int64("service_key_request_id", r.ID),
		slog.Int64("api_key_id", keyID), slog.Int64("user_id", userID))
	return r, nil
}

// ListServiceKeyRequests lists service-key requests.
func (a *Accounts) ListServiceKeyRequests(ctx context.Context, f store.ServiceKeyRequestFilter) ([]store.ServiceKeyRequest, error) {
	return a.st.ListServiceKeyRequests(ctx, f)
}

// ReviewServiceKeyRequest approves or denies a pending request. Approving an
// issue request mints nothing yet: the requester collects the key
// (CollectServiceKey), so that its secret is shown to them alone and never
// stored. Approving a revocation request revokes the key at once (within the
// caller's audited transaction, so the decision and the revocation commit
// together) and tells every data plane.
func (a *Accounts) ReviewServiceKeyRequest(ctx context.Context, reviewer, id int64, approved bool, notes string) (store.ServiceKeyRequest, error) {
	op := fmt.Sprintf("review service-key request %d", id)
	if len(notes) > maxJustificationLen || !utf8.ValidString(notes) {
		return store.ServiceKeyRequest{}, invalidInput(op, fmt.Errorf("notes must be at most %d characters", maxJustificationLen))
	}
	r, err := a.st.ReviewServiceKeyRequest(ctx, id, store.ServiceKeyReview{ReviewerID: reviewer, Approved: approved, Notes: notes, At: a.svc.now()})
	if err != nil {
		return store.ServiceKeyRequest{}, err
	}
	if approved && r.Kind == store.ServiceKeyRevocation {
		if _, err := a.svc.Revoke(ctx, r.APIKeyID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.ServiceKeyRequest{}, fmt.Errorf("%s: revoke API key %d: %w", op, r.APIKeyID, err)
		}
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
	key, err := NewKey()
	if err != nil {
		return store.ServiceKeyRequest{}, store.APIKey{}, "", err
	}
	// Hash before the first read, which begins the audited transaction.
	h, err := a.svc.hash(ctx, key, a.svc.keyParams)
	if err != nil {
		return store.ServiceKeyRequest{}, store.APIKey{}, "", fmt.Errorf("%s: %w", op, err)
	}
	u, err := a.st.GetUser(ctx, userID)
	if err != nil {
		return store.ServiceKeyRequest{}, store.APIKey{}, "", fmt.Errorf("%s: %w", op, err)
	}
	if !u.IsActive || u.DeletedAt != nil {
		return store.ServiceKeyRequest{}, store.APIKey{}, "", fmt.Errorf("%s: %w", op, ErrUserInactive)
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
	reqs, err := a.acct.ListServiceKeyRequests(ctx, store.ServiceKeyRequestFilter{UserID: req.GetUserId(), Status: st, Kind: req.GetKind()})
	if err != nil {
		return nil, serviceErr(err)
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
	r, err := s.acct.FileServiceKeyRequest(ctx, p.UserID, ServiceKeyForm{
		ServiceName: req.GetServiceName(), Justification: req.GetJustification(),
		AlternativeContacts: req.GetAlternativeContacts(), DataRiskLevel: req.GetDataRiskLevel(),
		ComplianceTags: req.GetComplianceTags(), ComplianceOther: req.GetComplianceOther(),
	})
	if err != nil {
		return nil, serviceErr(err)
	}
	return &accountv1.CreateServiceKeyRequestResponse{ServiceKeyRequest: serviceKeyRequestToProto(r)}, nil
}

// RequestServiceKeyRevocation asks the admins to revoke one of the caller's
// service keys.
func (s *AccountServer) RequestServiceKeyRevocation(ctx context.Context, req *accountv1.RequestServiceKeyRevocationRequest) (*accountv1.RequestServiceKeyRevocationResponse, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetId() <= 0 {
		return nil, firstInvalid(errors.New("id is required"))
	}
	r, err := s.acct.FileServiceKeyRevocation(ctx, p.UserID, req.GetId(), req.GetReason())
	if err != nil {
		return nil, serviceErr(err)
	}
	return &accountv1.RequestServiceKeyRevocationResponse{ServiceKeyRequest: serviceKeyRequestToProto(r)}, nil
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

		Kind:                r.Kind,
		AlternativeContacts: r.AlternativeContacts,
		DataRiskLevel:       r.DataRiskLevel,
		ComplianceTags:      r.ComplianceTags,
		ComplianceOther:     r.ComplianceOther,
	}
}
