package store

import (
	"context"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/predicate"
	"github.com/mindrouter/mindrouter/ent/quotarequest"
)

// Statuses of a quota request.
const (
	QuotaRequestPending  = "pending"
	QuotaRequestApproved = "approved"
	QuotaRequestDenied   = "denied"
)

// QuotaRequest is a user's request for a larger token budget.
type QuotaRequest struct {
	ID              int64
	UserID          int64
	Username        string
	RequestedTokens int64
	Justification   string
	Status          string
	// ReviewerID is the reviewing admin's user id, 0 while pending.
	ReviewerID    int64
	ReviewNotes   string
	GrantedTokens *int64
	ReviewedAt    *time.Time
	CreatedAt     time.Time
}

// QuotaRequestFilter selects quota requests; zero fields match everything.
type QuotaRequestFilter struct {
	UserID int64
	Status string
}

// QuotaReview decides a pending request.
type QuotaReview struct {
	ReviewerID int64
	Approved   bool
	Notes      string
	// GrantedTokens becomes the user's token budget override on approval; nil
	// grants the tokens requested.
	GrantedTokens *int64
	At            time.Time
}

// CreateQuotaRequest files a pending request. An unknown user is ErrNotFound, a
// value out of range ErrInvalid.
func (s *Store) CreateQuotaRequest(ctx context.Context, userID, tokens int64, justification string) (QuotaRequest, error) {
	op := fmt.Sprintf("file quota request of user %d", userID)
	u, err := s.c(ctx).User.Get(ctx, int(userID))
	if err != nil {
		return QuotaRequest{}, dbErr(op, err)
	}
	r, err := s.c(ctx).QuotaRequest.Create().
		SetUserID(u.ID).
		SetRequestedTokens(tokens).
		SetJustification(justification).
		Save(ctx)
	if err != nil {
		return QuotaRequest{}, dbErr(op, err)
	}
	r.Edges.User = u
	return toQuotaRequest(r), nil
}

// ListQuotaRequests returns the requests matching f, oldest first.
func (s *Store) ListQuotaRequests(ctx context.Context, f QuotaRequestFilter) ([]QuotaRequest, error) {
	var where []predicate.QuotaRequest
	if f.UserID != 0 {
		where = append(where, quotarequest.UserID(int(f.UserID)))
	}
	if f.Status != "" {
		st := quotarequest.Status(f.Status)
		if err := quotarequest.StatusValidator(st); err != nil {
			return nil, invalid("list quota requests", "unknown status %q (want pending, approved or denied)", f.Status)
		}
		where = append(where, quotarequest.StatusEQ(st))
	}
	rows, err := s.c(ctx).QuotaRequest.Query().Where(where...).WithUser().Order(ent.Asc(quotarequest.FieldID)).All(ctx)
	if err != nil {
		return nil, dbErr("list quota requests", err)
	}
	out := make([]QuotaRequest, len(rows))
	for i, r := range rows {
		out[i] = toQuotaRequest(r)
	}
	return out, nil
}

// ReviewQuotaRequest decides a pending request; on approval the granted tokens
// become the user's token budget override, in the same transaction. A request
// already decided is ErrConflict, an unknown one ErrNotFound.
func (s *Store) ReviewQuotaRequest(ctx context.Context, id int64, rv QuotaReview) (QuotaRequest, error) {
	op := fmt.Sprintf("review quota request %d", id)
	status := quotarequest.StatusDenied
	if rv.Approved {
		status = quotarequest.StatusApproved
	}
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		r, err := tx.QuotaRequest.Get(ctx, int(id))
		if err != nil {
			return err
		}
		upd := tx.QuotaRequest.Update().
			Where(quotarequest.ID(r.ID), quotarequest.StatusEQ(quotarequest.StatusPending)).
			SetStatus(status).
			SetReviewerID(int(rv.ReviewerID)).
			SetReviewNotes(rv.Notes).
			SetReviewedAt(rv.At.UTC())
		granted := r.RequestedTokens
		if rv.GrantedTokens != nil {
			granted = *rv.GrantedTokens
		}
		if rv.Approved {
			upd.SetGrantedTokens(granted)
		}
		n, err := upd.Save(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("already %s: %w", r.Status, ErrConflict)
		}
		if !rv.Approved {
			return nil
		}
		return tx.User.UpdateOneID(r.UserID).SetTokenBudget(granted).Exec(ctx)
	})
	if err != nil {
		return QuotaRequest{}, dbErr(op, err)
	}
	r, err := s.c(ctx).QuotaRequest.Query().Where(quotarequest.ID(int(id))).WithUser().Only(ctx)
	if err != nil {
		return QuotaRequest{}, dbErr(op, err)
	}
	return toQuotaRequest(r), nil
}

func toQuotaRequest(r *ent.QuotaRequest) QuotaRequest {
	out := QuotaRequest{
		ID:              int64(r.ID),
		UserID:          int64(r.UserID),
		RequestedTokens: r.RequestedTokens,
		Justification:   r.Justification,
		Status:          string(r.Status),
		ReviewNotes:     r.ReviewNotes,
		GrantedTokens:   int64Ptr(r.GrantedTokens),
		ReviewedAt:      utcPtr(r.ReviewedAt),
		CreatedAt:       utc(r.CreatedAt),
	}
	if r.ReviewerID != nil {
		out.ReviewerID = int64(*r.ReviewerID)
	}
	if u := r.Edges.User; u != nil {
		out.Username = u.Username
	}
	return out
}
