package store

import (
	"context"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/requestusage"
)

// RequestUsage is one settled request as the energy attribution needs it.
type RequestUsage struct {
	ID               int64
	RequestID        string
	BackendID        int64
	Model            string
	UserID           int64
	Username         string
	Group            string
	Outcome          string
	StartedAt        time.Time
	FirstTokenAt     time.Time
	EndedAt          time.Time
	QueueWait        time.Duration
	PromptTokens     int64
	CompletionTokens int64
	// EnergyJoules is nil until the attribution has run for the request.
	EnergyJoules *float64
}

// InsertRequestUsages stores settled requests in batches.
func (s *Store) InsertRequestUsages(ctx context.Context, us []RequestUsage) error {
	const op = "store request usage"
	for _, u := range us {
		switch {
		case u.RequestID == "":
			return invalid(op, "request_id is required")
		case u.EndedAt.Before(u.StartedAt) || u.FirstTokenAt.Before(u.StartedAt) || u.EndedAt.Before(u.FirstTokenAt):
			return invalid(op, "request %q: times must satisfy started ≤ first token ≤ ended", u.RequestID)
		case u.PromptTokens < 0 || u.CompletionTokens < 0 || u.QueueWait < 0:
			return invalid(op, "request %q: negative tokens or queue wait", u.RequestID)
		}
	}
	for start := 0; start < len(us); start += historyBatch {
		chunk := us[start:min(start+historyBatch, len(us))]
		builders := make([]*ent.RequestUsageCreate, len(chunk))
		for i, u := range chunk {
			builders[i] = s.client.RequestUsage.Create().
				SetRequestID(truncate(u.RequestID, 128)).
				SetBackendID(int(u.BackendID)).
				SetModel(truncate(u.Model, 255)).
				SetUserID(u.UserID).
				SetUsername(truncate(u.Username, 100)).
				SetGroupName(truncate(u.Group, 100)).
				SetOutcome(truncate(u.Outcome, 32)).
				SetStartedAt(utc(u.StartedAt)).
				SetFirstTokenAt(utc(u.FirstTokenAt)).
				SetEndedAt(utc(u.EndedAt)).
				SetQueueWaitMs(u.QueueWait.Milliseconds()).
				SetPromptTokens(u.PromptTokens).
				SetCompletionTokens(u.CompletionTokens).
				SetNillableEnergyJoules(u.EnergyJoules)
		}
		if err := s.client.RequestUsage.CreateBulk(builders...).Exec(ctx); err != nil {
			return dbErr(op, err)
		}
	}
	return nil
}

// RequestUsagesOverlapping returns the requests of backend (every backend when 0)
// that ran at some time in [from, to], ordered by start.
func (s *Store) RequestUsagesOverlapping(ctx context.Context, backendID int64, from, to time.Time) ([]RequestUsage, error) {
	q := s.c(ctx).RequestUsage.Query().
		Where(requestusage.EndedAtGTE(utc(from)), requestusage.StartedAtLTE(utc(to)))
	if backendID != 0 {
		q.Where(requestusage.BackendID(int(backendID)))
	}
	rows, err := q.Order(ent.Asc(requestusage.FieldStartedAt), ent.Asc(requestusage.FieldID)).All(ctx)
	if err != nil {
		return nil, dbErr("list request usage", err)
	}
	return requestUsages(rows), nil
}

// UnattributedRequestUsages returns up to limit requests that ended before before
// and have no energy yet, oldest first.
func (s *Store) UnattributedRequestUsages(ctx context.Context, before time.Time, limit int) ([]RequestUsage, error) {
	rows, err := s.c(ctx).RequestUsage.Query().
		Where(requestusage.EnergyJoulesIsNil(), requestusage.EndedAtLT(utc(before))).
		Order(ent.Asc(requestusage.FieldEndedAt), ent.Asc(requestusage.FieldID)).
		Limit(limit).
		All(ctx)
	if err != nil {
		return nil, dbErr("list unattributed requests", err)
	}
	return requestUsages(rows), nil
}

// SetRequestEnergy records the energy attributed to the request usage row id.
func (s *Store) SetRequestEnergy(ctx context.Context, id int64, joules float64) error {
	err := s.c(ctx).RequestUsage.UpdateOneID(int(id)).SetEnergyJoules(joules).Exec(ctx)
	return dbErr("set request energy", err)
}

// DeleteRequestUsagesBefore removes requests that ended before before.
func (s *Store) DeleteRequestUsagesBefore(ctx context.Context, before time.Time) (int, error) {
	n, err := s.c(ctx).RequestUsage.Delete().Where(requestusage.EndedAtLT(utc(before))).Exec(ctx)
	return n, dbErr("prune request usage", err)
}

func requestUsages(rows []*ent.RequestUsage) []RequestUsage {
	out := make([]RequestUsage, len(rows))
	for i, r := range rows {
		out[i] = RequestUsage{
			ID: int64(r.ID), RequestID: r.RequestID, BackendID: int64(r.BackendID), Model: r.Model,
			UserID: r.UserID, Username: r.Username, Group: r.GroupName, Outcome: r.Outcome,
			StartedAt: utc(r.StartedAt), FirstTokenAt: utc(r.FirstTokenAt), EndedAt: utc(r.EndedAt),
			QueueWait:    time.Duration(r.QueueWaitMs) * time.Millisecond,
			PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
			EnergyJoules: r.EnergyJoules,
		}
	}
	return out
}

// RequestUsagesEnded returns the requests that ended in [from, to), oldest first.
func (s *Store) RequestUsagesEnded(ctx context.Context, from, to time.Time) ([]RequestUsage, error) {
	rows, err := s.c(ctx).RequestUsage.Query().
		Where(requestusage.EndedAtGTE(utc(from)), requestusage.EndedAtLT(utc(to))).
		Order(ent.Asc(requestusage.FieldEndedAt), ent.Asc(requestusage.FieldID)).
		All(ctx)
	if err != nil {
		return nil, dbErr("list request usage", err)
	}
	return requestUsages(rows), nil
}
