package store

import (
	"context"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/ent/storedresponse"
)

// StoredResponse is a stored response of the Responses API; the documents
// are the data plane's JSON.
type StoredResponse struct {
	ID                 string
	UserID             int64
	PreviousResponseID string
	Model              string
	ResponseJSON       string
	InputItemsJSON     string
	HistoryJSON        string
	CreatedAt          time.Time
}

// PutResponse stores r for its user, replacing a response of the same id of
// the same user. A response id of another user is ErrNotFound (ids are
// random; a clash means a forged id).
func (s *Store) PutResponse(ctx context.Context, r StoredResponse) error {
	op := fmt.Sprintf("store response %q", r.ID)
	existing, err := s.c(ctx).StoredResponse.Query().Where(storedresponse.ResponseID(r.ID)).Only(ctx)
	switch {
	case err == nil && int64(existing.UserID) != r.UserID:
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case err == nil:
		_, err = existing.Update().SetModel(r.Model).SetPreviousResponseID(r.PreviousResponseID).
			SetResponseJSON(r.ResponseJSON).SetInputItemsJSON(r.InputItemsJSON).SetHistoryJSON(r.HistoryJSON).Save(ctx)
		return dbErr(op, err)
	}
	c := s.c(ctx).StoredResponse.Create().SetResponseID(r.ID).SetUserID(int(r.UserID)).SetModel(r.Model).
		SetPreviousResponseID(r.PreviousResponseID).SetResponseJSON(r.ResponseJSON).
		SetInputItemsJSON(r.InputItemsJSON).SetHistoryJSON(r.HistoryJSON)
	if !r.CreatedAt.IsZero() {
		c.SetCreatedAt(r.CreatedAt.UTC())
	}
	return dbErr(op, c.Exec(ctx))
}

// GetResponse returns userID's response id, or ErrNotFound (also when it
// belongs to someone else: its existence is not revealed).
func (s *Store) GetResponse(ctx context.Context, userID int64, id string) (StoredResponse, error) {
	r, err := s.c(ctx).StoredResponse.Query().
		Where(storedresponse.ResponseID(id), storedresponse.UserID(int(userID))).Only(ctx)
	if err != nil {
		return StoredResponse{}, dbErr(fmt.Sprintf("get response %q", id), err)
	}
	return StoredResponse{ID: r.ResponseID, UserID: int64(r.UserID), PreviousResponseID: r.PreviousResponseID, Model: r.Model,
		ResponseJSON: r.ResponseJSON, InputItemsJSON: r.InputItemsJSON, HistoryJSON: r.HistoryJSON, CreatedAt: r.CreatedAt}, nil
}

// DeleteResponse deletes userID's response id, or returns ErrNotFound.
func (s *Store) DeleteResponse(ctx context.Context, userID int64, id string) error {
	n, err := s.c(ctx).StoredResponse.Delete().
		Where(storedresponse.ResponseID(id), storedresponse.UserID(int(userID))).Exec(ctx)
	if err == nil && n == 0 {
		return fmt.Errorf("delete response %q: %w", id, ErrNotFound)
	}
	return dbErr(fmt.Sprintf("delete response %q", id), err)
}

// PurgeResponses deletes up to batch responses created before cutoff, oldest
// first, and returns how many it deleted.
func (s *Store) PurgeResponses(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	ids, err := s.c(ctx).StoredResponse.Query().Where(storedresponse.CreatedAtLT(cutoff.UTC())).
		Order(storedresponse.ByID()).Limit(batch).IDs(ctx)
	if err != nil || len(ids) == 0 {
		return 0, dbErr("purge responses", err)
	}
	n, err := s.c(ctx).StoredResponse.Delete().Where(storedresponse.IDIn(ids...)).Exec(ctx)
	return n, dbErr("purge responses", err)
}
