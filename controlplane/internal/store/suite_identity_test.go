package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func testDefaultGroups(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	require.NoError(t, s.EnsureDefaultGroups(ctx), "seeding twice is harmless")
	groups, err := s.ListGroups(ctx)
	require.NoError(t, err)
	byName := map[string]store.Group{}
	for _, g := range groups {
		byName[g.Name] = g
	}
	require.Len(t, byName, 5)
	admin := byName[store.GroupAdmin]
	assert.True(t, admin.IsAdmin)
	assert.Equal(t, 10, admin.SchedulerWeight)
	assert.Zero(t, admin.TokenBudget)
	assert.Zero(t, admin.RPMLimit)
	assert.True(t, byName[store.GroupAuditor].IsAuditor)
	assert.False(t, byName[store.GroupAuditor].IsAdmin)
	assert.Equal(t, 1, byName[store.GroupStudent].SchedulerWeight)
	assert.Equal(t, int64(100_000), byName[store.GroupStudent].TokenBudget)
	assert.Equal(t, 30, byName[store.GroupStudent].RPMLimit)
	assert.Equal(t, 3, byName[store.GroupFaculty].SchedulerWeight)

	seedUser(t, s, "ann", store.GroupStudent)
	seedUser(t, s, "bob", store.GroupStudent)
	groups, err = s.ListGroups(ctx)
	require.NoError(t, err)
	for _, g := range groups {
		want := 0
		if g.Name == store.GroupStudent {
			want = 2
		}
		assert.Equal(t, want, g.UserCount, g.Name)
	}

	got, err := s.GetGroup(ctx, admin.ID)
	require.NoError(t, err)
	require.Equal(t, store.GroupAdmin, got.Name)
	_, err = s.GetGroup(ctx, 999999)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetGroupByName(ctx, "nobody")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testUsers(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	staff, err := s.GetGroupByName(ctx, store.GroupStaff)
	require.NoError(t, err)
	rpm := 5
	u, err := s.CreateUser(ctx, store.UserSpec{
		Username: "carol", Email: "carol@example.edu", PasswordHash: "$argon2id$x", FullName: "Carol C",
		GroupID: staff.ID, RPMLimit: &rpm,
	})
	require.NoError(t, err)
	assert.Equal(t, store.GroupStaff, u.GroupName)
	assert.True(t, u.IsActive)
	require.NotNil(t, u.RPMLimit)
	assert.Equal(t, 5, *u.RPMLimit)
	assert.Nil(t, u.WeightOverride)

	tests := []struct {
		name string
		spec store.UserSpec
		want error
	}{
		{"duplicate username", store.UserSpec{Username: "carol", Email: "other@example.edu", GroupID: staff.ID}, store.ErrConflict},
		{"duplicate email", store.UserSpec{Username: "carol2", Email: "carol@example.edu", GroupID: staff.ID}, store.ErrConflict},
		{"unknown group", store.UserSpec{Username: "dave", Email: "dave@example.edu", GroupID: 424242}, store.ErrNotFound},
		{"empty username", store.UserSpec{Username: "", Email: "e@example.edu", GroupID: staff.ID}, store.ErrInvalid},
	}
	for _, tc := range tests {
		_, err := s.CreateUser(ctx, tc.spec)
		require.ErrorIs(t, err, tc.want, tc.name)
	}

	got, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, "$argon2id$x", got.PasswordHash)
	assert.Equal(t, store.GroupStaff, got.GroupName)
	got, err = s.GetUserByUsername(ctx, "carol")
	require.NoError(t, err)
	assert.Equal(t, u.ID, got.ID)
	_, err = s.GetUserByUsername(ctx, "nobody")
	require.ErrorIs(t, err, store.ErrNotFound)

	off, err := s.SetUserActive(ctx, u.ID, false)
	require.NoError(t, err)
	assert.False(t, off.IsActive)
	n, err := s.CountUsers(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)

	t.Run("Update", func(t *testing.T) { testUpdateUser(t, s) })
}

func testUpdateUser(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	fac, err := s.GetGroupByName(ctx, store.GroupFaculty)
	require.NoError(t, err)
	rpm, budget := 5, int64(1000)
	u, err := s.CreateUser(ctx, store.UserSpec{
		Username: "ivy", Email: "ivy@example.edu", GroupID: fac.ID, RPMLimit: &rpm, TokenBudget: &budget,
	})
	require.NoError(t, err)
	require.NotNil(t, u.TokenBudget)
	assert.Equal(t, int64(1000), *u.TokenBudget)
	seedKey(t, s, u.ID, "ivy-1")

	staff, err := s.GetGroupByName(ctx, store.GroupStaff)
	require.NoError(t, err)
	name, active, weight, unlimited := "Ivy I", false, 4, int64(0)
	got, err := s.UpdateUser(ctx, u.ID, store.UserPatch{
		GroupID: &staff.ID, FullName: &name, IsActive: &active,
		ClearRPMLimit: true, WeightOverride: &weight, TokenBudget: &unlimited,
	})
	require.NoError(t, err)
	assert.Equal(t, store.GroupStaff, got.GroupName)
	assert.Equal(t, "Ivy I", got.FullName)
	assert.False(t, got.IsActive)
	assert.Nil(t, got.RPMLimit, "cleared back to the group's limit")
	require.NotNil(t, got.WeightOverride)
	assert.Equal(t, 4, *got.WeightOverride)
	require.NotNil(t, got.TokenBudget, "0 is an override (unlimited), not a clear")
	assert.Zero(t, *got.TokenBudget)

	same, err := s.UpdateUser(ctx, u.ID, store.UserPatch{})
	require.NoError(t, err, "an empty patch changes nothing")
	assert.Equal(t, got.GroupID, same.GroupID)
	assert.Equal(t, got.WeightOverride, same.WeightOverride)
	assert.Equal(t, got.TokenBudget, same.TokenBudget)

	got, err = s.UpdateUser(ctx, u.ID, store.UserPatch{ClearWeightOverride: true, ClearTokenBudget: true, RPMLimit: &rpm})
	require.NoError(t, err)
	assert.Nil(t, got.WeightOverride)
	assert.Nil(t, got.TokenBudget)
	require.NotNil(t, got.RPMLimit)
	assert.Equal(t, 5, *got.RPMLimit)
	rec, err := s.KeyByDigest(ctx, digest("ivy-1"))
	require.NoError(t, err)
	assert.Equal(t, got.RPMLimit, rec.User.RPMLimit, "the key's record carries the owner's overrides")
	assert.Nil(t, rec.User.TokenBudget)
	assert.Equal(t, store.GroupStaff, rec.Group.Name)

	negative, zero, negBudget, unknown := -1, 0, int64(-1), int64(424242)
	tests := []struct {
		name string
		id   int64
		p    store.UserPatch
		want error
	}{
		{"unknown user", 999999, store.UserPatch{FullName: &name}, store.ErrNotFound},
		{"unknown group", u.ID, store.UserPatch{GroupID: &unknown}, store.ErrNotFound},
		{"set and clear", u.ID, store.UserPatch{RPMLimit: &rpm, ClearRPMLimit: true}, store.ErrInvalid},
		{"negative rpm", u.ID, store.UserPatch{RPMLimit: &negative}, store.ErrInvalid},
		{"zero weight", u.ID, store.UserPatch{WeightOverride: &zero}, store.ErrInvalid},
		{"negative budget", u.ID, store.UserPatch{TokenBudget: &negBudget}, store.ErrInvalid},
	}
	for _, tc := range tests {
		_, err := s.UpdateUser(ctx, tc.id, tc.p)
		require.ErrorIs(t, err, tc.want, tc.name)
	}
	after, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, got.RPMLimit, after.RPMLimit, "refused patches change nothing")
	assert.Equal(t, store.GroupStaff, after.GroupName)
}

func testListUsers(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	for _, name := range []string{"alice", "albert", "bruno", "carla"} {
		seedUser(t, s, name, store.GroupStudent)
	}
	fac := seedUser(t, s, "alfred", store.GroupFaculty)
	gone := seedUser(t, s, "algernon", store.GroupStudent)
	require.NoError(t, s.SoftDeleteUser(ctx, gone.ID, time.Now()))

	tests := []struct {
		name      string
		f         store.UserFilter
		wantNames []string
		wantTotal int64
	}{
		{"all", store.UserFilter{}, []string{"alice", "albert", "bruno", "carla", "alfred"}, 5},
		{"search is case-insensitive", store.UserFilter{Search: "AL"}, []string{"alice", "albert", "alfred"}, 3},
		{"by group", store.UserFilter{GroupID: fac.GroupID}, []string{"alfred"}, 1},
		{"paged", store.UserFilter{Skip: 1, Limit: 2}, []string{"albert", "bruno"}, 5},
		{"search by full name", store.UserFilter{Search: "user car"}, []string{"carla"}, 1},
		{"like wildcards are literal", store.UserFilter{Search: "%"}, nil, 0},
	}
	for _, tc := range tests {
		users, total, err := s.ListUsers(ctx, tc.f)
		require.NoError(t, err, tc.name)
		var names []string
		for _, u := range users {
			names = append(names, u.Username)
		}
		assert.Equal(t, tc.wantNames, names, tc.name)
		assert.Equal(t, tc.wantTotal, total, tc.name)
	}
}

func testAPIKeys(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	u := seedUser(t, s, "erin", store.GroupFaculty)
	other := seedUser(t, s, "frank", store.GroupStudent)
	exp := time.Now().Add(48 * time.Hour).Truncate(time.Microsecond)
	k, err := s.CreateAPIKey(ctx, store.APIKeySpec{
		UserID: u.ID, Name: "laptop", Prefix: "mr2_abcdefgh", SHA256: digest("erin-1"), Hash: "$argon2id$h",
		Scopes: []string{"inference", "admin"}, ExpiresAt: &exp,
	})
	require.NoError(t, err)
	assert.Equal(t, store.KeyActive, k.Status)
	assert.Equal(t, "erin", k.Username)
	require.NotNil(t, k.ExpiresAt)
	assert.True(t, exp.Equal(*k.ExpiresAt), "expiry keeps microseconds: %v vs %v", exp, *k.ExpiresAt)
	seedKey(t, s, other.ID, "frank-1")
	keyRPM := 3
	limited, err := s.CreateAPIKey(ctx, store.APIKeySpec{
		UserID: other.ID, Name: "limited", Prefix: "mr2_limited", SHA256: digest("frank-2"), Hash: "h", RPMLimit: &keyRPM,
	})
	require.NoError(t, err)
	require.NotNil(t, limited.RPMLimit)
	assert.Equal(t, 3, *limited.RPMLimit)
	rec, err := s.KeyByDigest(ctx, digest("frank-2"))
	require.NoError(t, err)
	require.NotNil(t, rec.Key.RPMLimit)
	assert.Equal(t, 3, *rec.Key.RPMLimit)

	rec, err = s.KeyByDigest(ctx, digest("erin-1"))
	require.NoError(t, err)
	assert.Nil(t, rec.Key.RPMLimit)
	assert.Equal(t, k.ID, rec.Key.ID)
	assert.Equal(t, "$argon2id$h", rec.Key.Hash)
	assert.Equal(t, []string{"inference", "admin"}, rec.Key.Scopes)
	assert.Equal(t, "erin", rec.User.Username)
	assert.Equal(t, store.GroupFaculty, rec.Group.Name)
	assert.Equal(t, 3, rec.Group.SchedulerWeight)
	require.NotNil(t, rec.Key.ExpiresAt)
	assert.True(t, exp.Equal(*rec.Key.ExpiresAt))

	_, err = s.KeyByDigest(ctx, digest("nobody"))
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.CreateAPIKey(ctx, store.APIKeySpec{UserID: u.ID, Name: "dup", Prefix: "mr2_x", SHA256: digest("erin-1"), Hash: "h"})
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = s.CreateAPIKey(ctx, store.APIKeySpec{UserID: 98765, Name: "orphan", Prefix: "mr2_x", SHA256: digest("orphan"), Hash: "h"})
	require.ErrorIs(t, err, store.ErrNotFound)

	all, err := s.ListAPIKeys(ctx, store.APIKeyFilter{})
	require.NoError(t, err)
	require.Len(t, all, 3)
	mine, err := s.ListAPIKeys(ctx, store.APIKeyFilter{UserID: u.ID, Status: store.KeyActive})
	require.NoError(t, err)
	require.Len(t, mine, 1)
	assert.Equal(t, "laptop", mine[0].Name)
	_, err = s.ListAPIKeys(ctx, store.APIKeyFilter{Status: "bogus"})
	require.ErrorIs(t, err, store.ErrInvalid)
	n, err := s.CountActiveKeys(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func testRevokeAndExpire(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	u := seedUser(t, s, "gina", store.GroupStudent)
	k := seedKey(t, s, u.ID, "gina-1")
	for range 2 { // idempotent
		got, err := s.RevokeAPIKey(ctx, k.ID)
		require.NoError(t, err)
		assert.Equal(t, store.KeyRevoked, got.Status)
		assert.Equal(t, k.SHA256, got.SHA256)
	}
	_, err := s.RevokeAPIKey(ctx, 777777)
	require.ErrorIs(t, err, store.ErrNotFound)
	revoked, err := s.ListAPIKeys(ctx, store.APIKeyFilter{Status: store.KeyRevoked})
	require.NoError(t, err)
	require.Len(t, revoked, 1)

	past := time.Now().Add(-time.Hour)
	_, err = s.CreateAPIKey(ctx, store.APIKeySpec{UserID: u.ID, Name: "old", Prefix: "mr2_old", SHA256: digest("gina-old"), Hash: "h", ExpiresAt: &past})
	require.NoError(t, err)
	seedKey(t, s, u.ID, "gina-forever")
	n, err := s.ExpireKeys(ctx, time.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	rec, err := s.KeyByDigest(ctx, digest("gina-old"))
	require.NoError(t, err)
	assert.Equal(t, store.KeyExpired, rec.Key.Status)
}

func testRecordKeyUse(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	u := seedUser(t, s, "hank", store.GroupStudent)
	a := seedKey(t, s, u.ID, "hank-a")
	b := seedKey(t, s, u.ID, "hank-b")
	t1 := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	t2 := t1.Add(30 * time.Second)
	require.NoError(t, s.RecordKeyUse(ctx, map[int64]store.KeyUse{
		a.ID:   {Count: 3, LastUsed: t2},
		b.ID:   {Count: 1, LastUsed: t1},
		999999: {Count: 5, LastUsed: t1}, // deleted meanwhile: skipped
	}))
	require.NoError(t, s.RecordKeyUse(ctx, map[int64]store.KeyUse{a.ID: {Count: 2, LastUsed: t1}}))
	require.NoError(t, s.RecordKeyUse(ctx, nil))

	ga, err := s.GetAPIKey(ctx, a.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(5), ga.UsageCount)
	require.NotNil(t, ga.LastUsedAt)
	assert.True(t, t2.Equal(*ga.LastUsedAt), "last use never moves backwards: %v", *ga.LastUsedAt)
	gb, err := s.GetAPIKey(ctx, b.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(1), gb.UsageCount)
}
