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

	require.ErrorIs(t, s.UpsertQuotaUsage(ctx, []store.QuotaUsage{{UserID: ada.ID, TokensUsed: -1}}), store.ErrInvalid)
	require.NoError(t, s.UpsertQuotaUsage(ctx, nil))
}
