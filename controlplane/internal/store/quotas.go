package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/quota"
	"github.com/mindrouter/mindrouter/ent/user"
)

// QuotaUsage is one user's token usage in the current budget period: one row of
// the quotas table.
type QuotaUsage struct {
	UserID int64
	// TokensUsed is the tokens charged in the current period.
	TokensUsed int64
	// LifetimeTokensUsed is every token ever charged.
	LifetimeTokensUsed int64
	// PeriodStart is when the current period began.
	PeriodStart time.Time
	// PeriodDays is the period's length in days; 0 means the control plane's
	// default.
	PeriodDays int
}

// ListQuotaUsage returns every user's stored usage, by user id.
func (s *Store) ListQuotaUsage(ctx context.Context) ([]QuotaUsage, error) {
	rows, err := s.c(ctx).Quota.Query().Order(ent.Asc(quota.FieldUserID)).All(ctx)
	if err != nil {
		return nil, dbErr("list quota usage", err)
	}
	out := make([]QuotaUsage, len(rows))
	for i, q := range rows {
		out[i] = QuotaUsage{
			UserID:             int64(q.UserID),
			TokensUsed:         q.TokensUsed,
			LifetimeTokensUsed: q.LifetimeTokensUsed,
			PeriodStart:        q.BudgetPeriodStart,
			PeriodDays:         q.BudgetPeriodDays,
		}
	}
	return out, nil
}

// LifetimeTokens returns every token ever charged to every user: the sum of
// the quotas table's lifetime_tokens_used (one row per user; 0 when empty).
func (s *Store) LifetimeTokens(ctx context.Context) (int64, error) {
	var v []struct {
		Sum sql.NullInt64 `json:"sum"`
	}
	if err := s.c(ctx).Quota.Query().Aggregate(ent.Sum(quota.FieldLifetimeTokensUsed)).Scan(ctx, &v); err != nil {
		return 0, dbErr("sum lifetime tokens", err)
	}
	if len(v) == 0 {
		return 0, nil
	}
	return v[0].Sum.Int64, nil
}

// UpsertQuotaUsage writes each record as its user's row, inserting or replacing
// it, in one transaction. The values are absolute, so writing a record twice is
// harmless. Records of users that do not exist are skipped (a user removed while
// their usage waited to be written): the rest are still written. Negative counts
// are ErrInvalid.
func (s *Store) UpsertQuotaUsage(ctx context.Context, records []QuotaUsage) error {
	const op = "store quota usage"
	if len(records) == 0 {
		return nil
	}
	ids := make([]int, 0, len(records))
	for _, r := range records {
		if r.TokensUsed < 0 || r.LifetimeTokensUsed < 0 || r.PeriodDays < 0 {
			return invalid(op, "negative usage for user %d", r.UserID)
		}
		ids = append(ids, int(r.UserID))
	}
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		existing, err := tx.User.Query().Where(user.IDIn(ids...)).IDs(ctx)
		if err != nil {
			return err
		}
		known := make(map[int]bool, len(existing))
		for _, id := range existing {
			known[id] = true
		}
		builders := make([]*ent.QuotaCreate, 0, len(records))
		for _, r := range records {
			if !known[int(r.UserID)] {
				continue
			}
			builders = append(builders, tx.Quota.Create().
				SetUserID(int(r.UserID)).
				SetTokensUsed(r.TokensUsed).
				SetLifetimeTokensUsed(r.LifetimeTokensUsed).
				SetBudgetPeriodStart(r.PeriodStart.UTC()).
				SetBudgetPeriodDays(r.PeriodDays))
		}
		if len(builders) == 0 {
			return nil
		}
		return tx.Quota.CreateBulk(builders...).
			OnConflictColumns(quota.FieldUserID).
			Update(func(u *ent.QuotaUpsert) {
				u.UpdateTokensUsed().UpdateLifetimeTokensUsed().UpdateBudgetPeriodStart().UpdateBudgetPeriodDays().UpdateUpdatedAt()
			}).
			Exec(ctx)
	})
	return dbErr(op, err)
}
