package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func testQuotaUsage(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	ada := seedUser(t, s, "ada", store.GroupFaculty)
	bob := seedUser(t, s, "bob", store.GroupStudent)
	start := time.Date(2026, 11, 1, 8, 30, 15, 123456000, time.UTC)

	got, err := s.ListQuotaUsage(ctx)
	require.NoError(t, err)
	require.Empty(t, got)
	total, err := s.LifetimeTokens(ctx)
	require.NoError(t, err)
	require.Zero(t, total, "no rows: 0, not an error")

	require.NoError(t, s.UpsertQuotaUsage(ctx, []store.QuotaUsage{
		{UserID: ada.ID, TokensUsed: 1200, LifetimeTokensUsed: 5000, PeriodStart: start, PeriodDays: 30},
		{UserID: bob.ID, TokensUsed: 7, LifetimeTokensUsed: 7, PeriodStart: start},
		{UserID: 999_999, TokensUsed: 1, LifetimeTokensUsed: 1, PeriodStart: start}, // no such user: skipped
	}))
	// A second write replaces the row; writing the same values again is harmless.
	next := []store.QuotaUsage{{UserID: ada.ID, TokensUsed: 1300, LifetimeTokensUsed: 5100, PeriodStart: start, PeriodDays: 30}}
	require.NoError(t, s.UpsertQuotaUsage(ctx, next))
	require.NoError(t, s.UpsertQuotaUsage(ctx, next))

	got, err = s.ListQuotaUsage(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
	for i := range got {
		require.True(t, got[i].PeriodStart.Equal(start), "microsecond precision: %v", got[i].PeriodStart)
		got[i].PeriodStart = start
	}
	require.Equal(t, []store.QuotaUsage{
		{UserID: ada.ID, TokensUsed: 1300, LifetimeTokensUsed: 5100, PeriodStart: start, PeriodDays: 30},
		{UserID: bob.ID, TokensUsed: 7, LifetimeTokensUsed: 7, PeriodStart: start},
	}, got)
	total, err = s.LifetimeTokens(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(5107), total)

	require.ErrorIs(t, s.UpsertQuotaUsage(ctx, []store.QuotaUsage{{UserID: ada.ID, TokensUsed: -1}}), store.ErrInvalid)
	require.NoError(t, s.UpsertQuotaUsage(ctx, nil))
}

func testUpdateGroup(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	g, err := s.GetGroupByName(ctx, store.GroupStaff)
	require.NoError(t, err)
	seedUser(t, s, "sam", store.GroupStaff)
	weight, rpm, budget, desc := 5, 0, int64(0), "Research software engineers."
	got, err := s.UpdateGroup(ctx, g.ID, store.GroupPatch{SchedulerWeight: &weight, RPMLimit: &rpm, TokenBudget: &budget, Description: &desc})
	require.NoError(t, err)
	require.Equal(t, 5, got.SchedulerWeight)
	require.Zero(t, got.RPMLimit, "0 is a value (unlimited), not a missing field")
	require.Zero(t, got.TokenBudget)
	require.Equal(t, desc, got.Description)
	require.Equal(t, g.DisplayName, got.DisplayName, "fields left out keep their values")
	require.Equal(t, g.MaxAPIKeys, got.MaxAPIKeys)
	require.Equal(t, 1, got.UserCount)
	again, err := s.GetGroup(ctx, g.ID)
	require.NoError(t, err)
	require.Equal(t, 5, again.SchedulerWeight)

	bad := 0
	_, err = s.UpdateGroup(ctx, g.ID, store.GroupPatch{SchedulerWeight: &bad})
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = s.UpdateGroup(ctx, 987654, store.GroupPatch{SchedulerWeight: &weight})
	require.ErrorIs(t, err, store.ErrNotFound)
}
