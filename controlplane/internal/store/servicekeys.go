package store

import (
	"context"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/apikey"
	"github.com/mindrouter/mindrouter/ent/predicate"
	"github.com/mindrouter/mindrouter/ent/servicekeyrequest"
)

// Kinds of service-key request.
const (
	// ServiceKeyIssue asks for a new service key.
	ServiceKeyIssue = "issue"
	// ServiceKeyRevocation asks for the revocation of the owner's service key.
	ServiceKeyRevocation = "revocation"
)

// ServiceKeyRequest is a user's request about a service key. Statuses are those
// of a quota request (QuotaRequestPending, ...).
type ServiceKeyRequest struct {
	ID     int64
	UserID int64
	// Kind is ServiceKeyIssue or ServiceKeyRevocation.
	Kind          string
	Username      string
	ServiceName   string
	Justification string
	Status        string
	// The compliance answers of an issue request.
	AlternativeContacts []string
	DataRiskLevel       string
	ComplianceTags      []string
	ComplianceOther     string
	// ReviewerID is the reviewing admin's user id, 0 while pending.
	ReviewerID  int64
	ReviewNotes string
	ReviewedAt  *time.Time
	// APIKeyID is, for an issue request, the key minted when the requester
	// collected it (0 until then); for a revocation request, the key to revoke.
	APIKeyID    int64
	CollectedAt *time.Time
	CreatedAt   time.Time
}

// ServiceKeyRequestFilter selects service-key requests; zero fields match
// everything.
type ServiceKeyRequestFilter struct {
	UserID int64
	Status string
	Kind   string
}

// ServiceKeyRequestSpec is a new issue request.
type ServiceKeyRequestSpec struct {
	UserID                     int64
	ServiceName, Justification string
	AlternativeContacts        []string
	DataRiskLevel              string
	ComplianceTags             []string
	ComplianceOther            string
}

// ServiceKeyReview decides a pending service-key request.
type ServiceKeyReview struct {
	ReviewerID int64
	Approved   bool
	Notes      string
	At         time.Time
}

// CreateServiceKeyRequest files a pending issue request. An unknown user is
// ErrNotFound.
func (s *Store) CreateServiceKeyRequest(ctx context.Context, spec ServiceKeyRequestSpec) (ServiceKeyRequest, error) {
	op := fmt.Sprintf("file service-key request of user %d", spec.UserID)
	u, err := s.c(ctx).User.Get(ctx, int(spec.UserID))
	if err != nil {
		return ServiceKeyRequest{}, dbErr(op, err)
	}
	r, err := s.c(ctx).ServiceKeyRequest.Create().
		SetUserID(u.ID).
		SetKind(servicekeyrequest.KindIssue).
		SetServiceName(spec.ServiceName).
		SetJustification(spec.Justification).
		SetAlternativeContacts(spec.AlternativeContacts).
		SetDataRiskLevel(spec.DataRiskLevel).
		SetComplianceTags(spec.ComplianceTags).
		SetComplianceOther(spec.ComplianceOther).
		Save(ctx)
	if err != nil {
		return ServiceKeyRequest{}, dbErr(op, err)
	}
	r.Edges.User = u
	return toServiceKeyRequest(r), nil
}

// ListServiceKeyRequests returns the requests matching f, oldest first.
func (s *Store) ListServiceKeyRequests(ctx context.Context, f ServiceKeyRequestFilter) ([]ServiceKeyRequest, error) {
	var where []predicate.ServiceKeyRequest
	if f.UserID != 0 {
		where = append(where, servicekeyrequest.UserID(int(f.UserID)))
	}
	if f.Status != "" {
		st := servicekeyrequest.Status(f.Status)
		if err := servicekeyrequest.StatusValidator(st); err != nil {
			return nil, invalid("list service-key requests", "unknown status %q (want pending, approved or denied)", f.Status)
		}
		where = append(where, servicekeyrequest.StatusEQ(st))
	}
	if f.Kind != "" {
		k := servicekeyrequest.Kind(f.Kind)
		if err := servicekeyrequest.KindValidator(k); err != nil {
			return nil, invalid("list service-key requests", "unknown kind %q (want issue or revocation)", f.Kind)
		}
		where = append(where, servicekeyrequest.KindEQ(k))
	}
	rows, err := s.c(ctx).ServiceKeyRequest.Query().Where(where...).WithUser().
		Order(ent.Asc(servicekeyrequest.FieldID)).All(ctx)
	if err != nil {
		return nil, dbErr("list service-key requests", err)
	}
	out := make([]ServiceKeyRequest, len(rows))
	for i, r := range rows {
		out[i] = toServiceKeyRequest(r)
	}
	return out, nil
}

// GetServiceKeyRequest returns one request; ErrNotFound when there is none.
func (s *Store) GetServiceKeyRequest(ctx context.Context, id int64) (ServiceKeyRequest, error) {
	r, err := s.c(ctx).ServiceKeyRequest.Query().Where(servicekeyrequest.ID(int(id))).WithUser().Only(ctx)
	if err != nil {
		return ServiceKeyRequest{}, dbErr(fmt.Sprintf("get service-key request %d", id), err)
	}
	return toServiceKeyRequest(r), nil
}

// CreateServiceKeyRevocationRequest files userID's pending request to revoke
// their service key keyID, reason its justification. A key of another user, or
// none, is ErrNotFound; a key that is not an active service key ErrInvalid; a
// key with a pending revocation request already ErrConflict.
func (s *Store) CreateServiceKeyRevocationRequest(ctx context.Context, userID, keyID int64, reason string) (ServiceKeyRequest, error) {
	op := fmt.Sprintf("file revocation request of API key %d", keyID)
	var id int
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		q := tx.APIKey.Query().Where(apikey.ID(int(keyID)), apikey.UserID(int(userID)))
		if s.driver == dialectMySQL {
			// Locks the key's row so that two filings cannot both see no
			// pending request (SQLite has one writer at a time anyway).
			q = q.ForUpdate()
		}
		k, err := q.Only(ctx)
		if err != nil {
			return err
		}
		switch {
		case !k.IsService:
			return fmt.Errorf("not a service key (revoke it directly): %w", ErrInvalid)
		case k.Status != apikey.StatusActive:
			return fmt.Errorf("the key is %s already: %w", k.Status, ErrInvalid)
		}
		n, err := tx.ServiceKeyRequest.Query().Where(servicekeyrequest.APIKeyID(k.ID),
			servicekeyrequest.KindEQ(servicekeyrequest.KindRevocation),
			servicekeyrequest.StatusEQ(servicekeyrequest.StatusPending)).Count(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("a revocation request of this key is pending already: %w", ErrConflict)
		}
		r, err := tx.ServiceKeyRequest.Create().
			SetUserID(k.UserID).
			SetKind(servicekeyrequest.KindRevocation).
			SetServiceName(k.ServiceName).
			SetJustification(reason).
			SetAPIKeyID(k.ID).
			Save(ctx)
		if err != nil {
			return err
		}
		id = r.ID
		return nil
	})
	if err != nil {
		return ServiceKeyRequest{}, dbErr(op, err)
	}
	return s.GetServiceKeyRequest(ctx, int64(id))
}

// ReviewServiceKeyRequest decides a pending request. A request already decided
// is ErrConflict, an unknown one ErrNotFound.
func (s *Store) ReviewServiceKeyRequest(ctx context.Context, id int64, rv ServiceKeyReview) (ServiceKeyRequest, error) {
	op := fmt.Sprintf("review service-key request %d", id)
	status := servicekeyrequest.StatusDenied
	if rv.Approved {
		status = servicekeyrequest.StatusApproved
	}
	n, err := s.c(ctx).ServiceKeyRequest.Update().
		Where(servicekeyrequest.ID(int(id)), servicekeyrequest.StatusEQ(servicekeyrequest.StatusPending)).
		SetStatus(status).
		SetReviewerID(int(rv.ReviewerID)).
		SetReviewNotes(rv.Notes).
		SetReviewedAt(rv.At.UTC()).
		Save(ctx)
	if err != nil {
		return ServiceKeyRequest{}, dbErr(op, err)
	}
	r, err := s.GetServiceKeyRequest(ctx, id)
	if err != nil {
		return ServiceKeyRequest{}, err
	}
	if n == 0 {
		return ServiceKeyRequest{}, fmt.Errorf("%s: already %s: %w", op, r.Status, ErrConflict)
	}
	return r, nil
}

// CollectServiceKey stores the service key of an approved request of userID
// and records it on the request, in one transaction, so that a request yields
// one key at most. A request of another user, or none, is ErrNotFound; one not
// approved is ErrInvalid; one collected already is ErrConflict.
func (s *Store) CollectServiceKey(ctx context.Context, id, userID int64, spec APIKeySpec, at time.Time) (ServiceKeyRequest, APIKey, error) {
	op := fmt.Sprintf("collect service key of request %d", id)
	var key APIKey
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		r, err := tx.ServiceKeyRequest.Query().
			Where(servicekeyrequest.ID(int(id)), servicekeyrequest.UserID(int(userID))).Only(ctx)
		if err != nil {
			return err
		}
		switch {
		case r.Kind != servicekeyrequest.KindIssue:
			return fmt.Errorf("a %s request yields no key: %w", r.Kind, ErrInvalid)
		case r.Status != servicekeyrequest.StatusApproved:
			return fmt.Errorf("the request is %s, not approved: %w", r.Status, ErrInvalid)
		case r.APIKeyID != nil:
			return fmt.Errorf("the key was collected already: %w", ErrConflict)
		}
		k, err := tx.APIKey.Create().
			SetUserID(r.UserID).
			SetName(r.ServiceName).
			SetKeyPrefix(spec.Prefix).
			SetKeySha256(spec.SHA256).
			SetKeyHash(spec.Hash).
			SetScopes(spec.Scopes).
			SetIsService(true).
			SetServiceName(r.ServiceName).
			Save(ctx)
		if err != nil {
			return err
		}
		n, err := tx.ServiceKeyRequest.Update().
			Where(servicekeyrequest.ID(r.ID), servicekeyrequest.APIKeyIDIsNil()).
			SetAPIKeyID(k.ID).
			SetCollectedAt(at.UTC()).
			Save(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("the key was collected meanwhile: %w", ErrConflict)
		}
		k.Edges.User, err = tx.User.Get(ctx, r.UserID)
		key = toAPIKey(k)
		return err
	})
	if err != nil {
		return ServiceKeyRequest{}, APIKey{}, dbErr(op, err)
	}
	r, err := s.GetServiceKeyRequest(ctx, id)
	if err != nil {
		return ServiceKeyRequest{}, APIKey{}, err
	}
	return r, key, nil
}

func toServiceKeyRequest(r *ent.ServiceKeyRequest) ServiceKeyRequest {
	out := ServiceKeyRequest{
		ID:                  int64(r.ID),
		UserID:              int64(r.UserID),
		Kind:                string(r.Kind),
		ServiceName:         r.ServiceName,
		Justification:       r.Justification,
		Status:              string(r.Status),
		AlternativeContacts: r.AlternativeContacts,
		DataRiskLevel:       r.DataRiskLevel,
		ComplianceTags:      r.ComplianceTags,
		ComplianceOther:     r.ComplianceOther,
		ReviewNotes:         r.ReviewNotes,
		ReviewedAt:          utcPtr(r.ReviewedAt),
		CollectedAt:         utcPtr(r.CollectedAt),
		CreatedAt:           utc(r.CreatedAt),
	}
	if r.ReviewerID != nil {
		out.ReviewerID = int64(*r.ReviewerID)
	}
	if r.APIKeyID != nil {
		out.APIKeyID = int64(*r.APIKeyID)
	}
	if u := r.Edges.User; u != nil {
		out.Username = u.Username
	}
	return out
}
