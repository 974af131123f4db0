package identity

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func TestCreateUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	g, err := f.st.GetGroupByName(ctx, store.GroupStaff)
	require.NoError(t, err)
	u, err := f.svc.CreateUser(ctx, "hal", "hal@example.edu", "open the pod bay", g.ID, "Hal")
	require.NoError(t, err)
	assert.True(t, u.IsActive)
	assert.True(t, CheckPassword(u.PasswordHash, "open the pod bay"))
	assert.False(t, CheckPassword(u.PasswordHash, "open the pod bay doors"))

	tests := []struct {
		name                      string
		username, email, password string
		group                     int64
		want                      error
	}{
		{"short password", "ian", "ian@example.edu", "1234567", g.ID, store.ErrInvalid},
		{"bad username", "i an", "ian@example.edu", "12345678", g.ID, store.ErrInvalid},
		{"bad email", "ian", "ian.example.edu", "12345678", g.ID, store.ErrInvalid},
		{"taken username", "hal", "hal2@example.edu", "12345678", g.ID, store.ErrConflict},
		{"unknown group", "ian", "ian@example.edu", "12345678", 9999, store.ErrNotFound},
	}
	for _, tc := range tests {
		_, err := f.svc.CreateUser(ctx, tc.username, tc.email, tc.password, tc.group, "")
		require.ErrorIs(t, err, tc.want, tc.name)
	}
}

func TestCreateAPIKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "jo", store.GroupStudent)

	k, full, err := f.svc.CreateAPIKey(ctx, u.ID, "  laptop  ", nil, []string{ScopeInference, ScopeInference})
	require.NoError(t, err)
	require.True(t, WellFormedKey(full))
	assert.Equal(t, "laptop", k.Name)
	assert.Equal(t, DisplayPrefix(full), k.Prefix)
	assert.Equal(t, KeyDigest(full), k.SHA256)
	assert.NotContains(t, k.Hash, full)
	assert.Equal(t, []string{ScopeInference}, k.Scopes)
	require.NotNil(t, k.ExpiresAt, "the group's default expiry applies")
	assert.WithinDuration(t, f.clock.Now().Add(45*24*time.Hour), *k.ExpiresAt, time.Second)

	exp := f.clock.Now().Add(time.Hour)
	k2, _, err := f.svc.CreateAPIKey(ctx, u.ID, "short-lived", &exp, nil)
	require.NoError(t, err)
	assert.True(t, exp.Equal(*k2.ExpiresAt))

	past := f.clock.Now().Add(-time.Hour)
	tests := []struct {
		name   string
		user   int64
		key    string
		exp    *time.Time
		scopes []string
		want   error
	}{
		{"no name", u.ID, " ", nil, nil, store.ErrInvalid},
		{"long name", u.ID, strings.Repeat("n", 101), nil, nil, store.ErrInvalid},
		{"unknown scope", u.ID, "x", nil, []string{"apps:provision"}, store.ErrInvalid},
		{"past expiry", u.ID, "x", &past, nil, store.ErrInvalid},
		{"unknown user", 5151, "x", nil, nil, store.ErrNotFound},
	}
	for _, tc := range tests {
		_, _, err := f.svc.CreateAPIKey(ctx, tc.user, tc.key, tc.exp, tc.scopes)
		require.ErrorIs(t, err, tc.want, tc.name)
	}

	for i := 2; i < 8; i++ { // students may hold 8 active keys
		f.key(t, u.ID)
	}
	_, _, err = f.svc.CreateAPIKey(ctx, u.ID, "ninth", nil, nil)
	require.ErrorIs(t, err, ErrKeyLimit)
	_, err = f.svc.Revoke(ctx, k.ID)
	require.NoError(t, err)
	_, _, err = f.svc.CreateAPIKey(ctx, u.ID, "ninth", nil, nil)
	require.NoError(t, err, "revoked keys do not count")
}

func TestPrincipalLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rpm, zeroRPM, weight, keyRPM := 7, 0, 9, 3
	budget, unlimited := int64(42), int64(0)
	tests := []struct {
		name      string
		user      store.UserSpec
		keyRPM    *int
		wantRPM   int
		wantKey   int
		wantW     int
		wantToken int64
	}{
		{"the group's", store.UserSpec{}, nil, 60, 0, 2, 500_000},
		{"the user's overrides", store.UserSpec{RPMLimit: &rpm, WeightOverride: &weight, TokenBudget: &budget}, nil, 7, 0, 9, 42},
		{"0 overrides mean unlimited", store.UserSpec{RPMLimit: &zeroRPM, TokenBudget: &unlimited}, nil, 0, 0, 2, 0},
		{"a key's limit is its own window, not the user's", store.UserSpec{RPMLimit: &rpm}, &keyRPM, 7, 3, 2, 500_000},
		{"a key's limit leaves the group's user limit", store.UserSpec{}, &keyRPM, 60, 3, 2, 500_000},
		{"a key's 0 is no window of its own", store.UserSpec{}, &zeroRPM, 60, 0, 2, 500_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			g, err := f.st.GetGroupByName(ctx, store.GroupStaff)
			require.NoError(t, err)
			spec := tc.user
			spec.Username, spec.Email, spec.GroupID = "kim", "kim@example.edu", g.ID
			u, err := f.st.CreateUser(ctx, spec)
			require.NoError(t, err)
			k, full, err := f.svc.CreateKey(ctx, KeySpec{UserID: u.ID, Name: "k", RPMLimit: tc.keyRPM})
			require.NoError(t, err)
			assert.Equal(t, tc.keyRPM, k.RPMLimit)
			p, err := f.svc.Verify(ctx, full)
			require.NoError(t, err)
			assert.Equal(t, tc.wantRPM, p.RPMLimit, "user RPM")
			assert.Equal(t, tc.wantKey, p.KeyRPMLimit, "key RPM")
			assert.Equal(t, tc.wantW, p.Weight, "weight")
			assert.Equal(t, tc.wantToken, p.TokenBudget, "token budget")
		})
	}
}

func TestPrincipalScopesAndContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "kim", store.GroupStaff)
	_, full := f.key(t, u.ID)
	p, err := f.svc.Verify(ctx, full)
	require.NoError(t, err)
	assert.True(t, p.HasScope(ScopeInference), "no scopes: inference only")
	assert.False(t, p.HasScope(ScopeAdmin))

	admin := Principal{Scopes: []string{ScopeAdmin}}
	assert.True(t, admin.HasScope(ScopeAdmin))
	assert.False(t, admin.HasScope(ScopeInference), "scopes only narrow")

	got, ok := FromContext(NewContext(ctx, p))
	require.True(t, ok)
	assert.Equal(t, p.APIKeyID, got.APIKeyID)
	_, ok = FromContext(ctx)
	assert.False(t, ok)
}

func TestUpdateUserTakesEffectOnNextVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "lee", store.GroupStudent)
	_, a := f.key(t, u.ID)
	_, b := f.key(t, u.ID)
	other := f.user(t, "max", store.GroupStudent)
	_, c := f.key(t, other.ID)
	for _, key := range []string{a, b, c} {
		p, err := f.svc.Verify(ctx, key)
		require.NoError(t, err)
		require.Equal(t, 30, p.RPMLimit)
	}
	require.Equal(t, 3, f.argon2Count())
	lookups := f.st.lookups.Load()

	rpm, weight, budget := 5, 4, int64(7000)
	_, err := f.svc.UpdateUser(ctx, u.ID, store.UserPatch{RPMLimit: &rpm, WeightOverride: &weight, TokenBudget: &budget})
	require.NoError(t, err)
	for _, key := range []string{a, b} { // the clock has not moved: no cache TTL has passed
		p, err := f.svc.Verify(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, 5, p.RPMLimit)
		assert.Equal(t, 4, p.Weight)
		assert.Equal(t, int64(7000), p.TokenBudget)
	}
	assert.Equal(t, lookups+2, f.st.lookups.Load(), "each of the user's keys re-reads its row once")
	_, err = f.svc.Verify(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, lookups+2, f.st.lookups.Load(), "other users' keys stay cached")
	assert.Equal(t, 3, f.argon2Count(), "re-reading a row does not hash the key again")

	fac, err := f.st.GetGroupByName(ctx, store.GroupFaculty)
	require.NoError(t, err)
	_, err = f.svc.UpdateUser(ctx, u.ID, store.UserPatch{GroupID: &fac.ID, ClearRPMLimit: true, ClearTokenBudget: true})
	require.NoError(t, err)
	p, err := f.svc.Verify(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, store.GroupFaculty, p.Group)
	assert.Equal(t, 60, p.RPMLimit, "cleared: the new group's limit")
	assert.Equal(t, int64(1_000_000), p.TokenBudget)
	assert.Equal(t, 4, p.Weight, "an override not cleared stays")

	off := false
	_, err = f.svc.UpdateUser(ctx, u.ID, store.UserPatch{IsActive: &off})
	require.NoError(t, err)
	_, err = f.svc.Verify(ctx, b)
	require.ErrorIs(t, err, ErrUserInactive, "disabling a user stops their keys at once")
}

func TestUpdateUserDuringLookupIsNotCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "ned", store.GroupStudent)
	_, full := f.key(t, u.ID)
	f.st.gate = make(chan struct{})
	f.st.entered = make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { _, err := f.svc.Verify(ctx, full); done <- err }()
	<-f.st.entered // the lookup has read the old row
	rpm := 2
	_, err := f.svc.UpdateUser(ctx, u.ID, store.UserPatch{RPMLimit: &rpm})
	require.NoError(t, err)
	close(f.st.gate)
	require.NoError(t, <-done)
	p, err := f.svc.Verify(ctx, full)
	require.NoError(t, err)
	assert.Equal(t, 2, p.RPMLimit, "the lookup that read the old row must not have cached it")
}

func TestUpdateUserRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "oli", store.GroupStudent)
	gone := f.user(t, "pat", store.GroupStudent)
	require.NoError(t, f.st.SoftDeleteUser(ctx, gone.ID, f.clock.Now()))
	negative, zero, negBudget, unknown := -1, 0, int64(-5), int64(424242)
	long := strings.Repeat("x", 256)
	tests := []struct {
		name string
		id   int64
		p    store.UserPatch
		want error
	}{
		{"negative rpm", u.ID, store.UserPatch{RPMLimit: &negative}, store.ErrInvalid},
		{"zero weight", u.ID, store.UserPatch{WeightOverride: &zero}, store.ErrInvalid},
		{"negative budget", u.ID, store.UserPatch{TokenBudget: &negBudget}, store.ErrInvalid},
		{"long full name", u.ID, store.UserPatch{FullName: &long}, store.ErrInvalid},
		{"unknown group", u.ID, store.UserPatch{GroupID: &unknown}, store.ErrNotFound},
		{"unknown user", 999999, store.UserPatch{}, store.ErrNotFound},
		{"deleted user", gone.ID, store.UserPatch{}, store.ErrNotFound},
	}
	for _, tc := range tests {
		_, err := f.svc.UpdateUser(ctx, tc.id, tc.p)
		require.ErrorIs(t, err, tc.want, tc.name)
	}
}

func TestBootstrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("random key", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		res, err := f.svc.Bootstrap(ctx, "")
		require.NoError(t, err)
		require.True(t, res.Created)
		assert.Equal(t, "admin", res.Username)
		require.True(t, WellFormedKey(res.Key))
		p, err := f.svc.Verify(ctx, res.Key)
		require.NoError(t, err)
		assert.True(t, p.IsAdmin)
		assert.True(t, p.HasScope(ScopeAdmin))
		assert.True(t, p.HasScope(ScopeInference))
		assert.Equal(t, 10, p.Weight)

		again, err := f.svc.Bootstrap(ctx, "")
		require.NoError(t, err)
		assert.Equal(t, BootstrapResult{Username: "admin"}, again)
		keys, err := f.st.ListAPIKeys(ctx, store.APIKeyFilter{})
		require.NoError(t, err)
		assert.Len(t, keys, 1)
	})

	t.Run("seeded key", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		seed, err := NewKey()
		require.NoError(t, err)
		res, err := f.svc.Bootstrap(ctx, seed)
		require.NoError(t, err)
		assert.Equal(t, BootstrapResult{Created: true, Username: "admin", Key: seed}, res)
		res, err = f.svc.Bootstrap(ctx, seed)
		require.NoError(t, err)
		assert.False(t, res.Created, "the seed key is stored once")

		seed2, err := NewKey()
		require.NoError(t, err)
		res, err = f.svc.Bootstrap(ctx, seed2)
		require.NoError(t, err)
		assert.Equal(t, BootstrapResult{Created: true, Username: "admin", Key: seed2}, res, "a new seed key is added to the existing admin")
		p, err := f.svc.Verify(ctx, seed2)
		require.NoError(t, err)
		assert.Equal(t, "admin", p.Username)

		other := f.user(t, "lee", store.GroupStudent)
		_, foreign := f.key(t, other.ID)
		_, err = f.svc.Bootstrap(ctx, foreign)
		require.ErrorIs(t, err, store.ErrConflict)
		_, err = f.svc.Bootstrap(ctx, "mr2_too-short")
		require.ErrorContains(t, err, "seed key must be")
	})

	t.Run("users but no admin", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.user(t, "mo", store.GroupStudent)
		res, err := f.svc.Bootstrap(ctx, "")
		require.NoError(t, err)
		assert.False(t, res.Created)
	})
}

func TestUsageFlush(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "ned", store.GroupStudent)
	a, _ := f.key(t, u.ID)
	b, _ := f.key(t, u.ID)
	for range 3 {
		f.svc.RecordUse(a.ID)
	}
	f.svc.RecordUse(b.ID)
	f.st.failUses.Store(true)
	require.Error(t, f.svc.FlushUsage(ctx))
	f.clock.Advance(time.Second)
	f.svc.RecordUse(a.ID) // counted while the database was away
	f.st.failUses.Store(false)
	require.NoError(t, f.svc.FlushUsage(ctx))
	require.NoError(t, f.svc.FlushUsage(ctx), "nothing pending")

	ga, err := f.st.GetAPIKey(ctx, a.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(4), ga.UsageCount, "a failed flush loses nothing")
	require.NotNil(t, ga.LastUsedAt)
	assert.True(t, f.clock.Now().Equal(*ga.LastUsedAt))
	gb, err := f.st.GetAPIKey(ctx, b.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(1), gb.UsageCount)
}

func TestRunFlushesAtShutdown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := f.user(t, "oz", store.GroupStudent)
	k, _ := f.key(t, u.ID)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.svc.Run(ctx) }()
	f.svc.RecordUse(k.ID)
	f.svc.RecordUse(k.ID)
	cancel()
	require.NoError(t, <-done)
	got, err := f.st.GetAPIKey(context.Background(), k.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(2), got.UsageCount)
}

func BenchmarkVerifyCached(b *testing.B) {
	f := newFixture(b)
	u := f.user(b, "bench", store.GroupStudent)
	_, full := f.key(b, u.ID)
	ctx := context.Background()
	if _, err := f.svc.Verify(ctx, full); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.svc.Verify(ctx, full); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestUpdateGroupTakesEffectOnNextVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "ida", store.GroupStudent)
	_, key := f.key(t, u.ID)
	p, err := f.svc.Verify(ctx, key)
	require.NoError(t, err)
	require.Equal(t, 1, p.Weight)
	lookups := f.st.lookups.Load()

	g, err := f.st.GetGroupByName(ctx, store.GroupStudent)
	require.NoError(t, err)
	weight, rpm, budget := 4, 90, int64(250_000)
	got, err := f.svc.UpdateGroup(ctx, g.ID, store.GroupPatch{SchedulerWeight: &weight, RPMLimit: &rpm, TokenBudget: &budget})
	require.NoError(t, err)
	assert.Equal(t, 4, got.SchedulerWeight)
	assert.Equal(t, store.GroupStudent, got.Name, "the name is fixed")
	assert.Equal(t, 1, got.UserCount)

	p, err = f.svc.Verify(ctx, key) // no cache TTL has passed
	require.NoError(t, err)
	assert.Equal(t, 4, p.Weight)
	assert.Equal(t, 90, p.RPMLimit)
	assert.Equal(t, int64(250_000), p.TokenBudget)
	assert.Equal(t, lookups+1, f.st.lookups.Load(), "the key re-read its row once")
	assert.Equal(t, 1, f.argon2Count(), "without hashing it again")

	zero := 0
	_, err = f.svc.UpdateGroup(ctx, g.ID, store.GroupPatch{SchedulerWeight: &zero})
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = f.svc.UpdateGroup(ctx, 987654, store.GroupPatch{RPMLimit: &rpm})
	require.ErrorIs(t, err, store.ErrNotFound)
}
