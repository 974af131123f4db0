package identity

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func TestVerifyCachesAfterOneArgon2(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "ann", store.GroupFaculty)
	k, full := f.key(t, u.ID, ScopeInference)

	p, err := f.svc.Verify(ctx, full)
	require.NoError(t, err)
	assert.Equal(t, Principal{
		UserID: u.ID, Username: "ann", APIKeyID: k.ID, KeyPrefix: full[:12], GroupID: u.GroupID, Group: store.GroupFaculty,
		Scopes: []string{ScopeInference}, Weight: 3, RPMLimit: 60, TokenBudget: 1_000_000,
	}, p)
	require.Equal(t, 1, f.argon2Count())
	require.Equal(t, int64(1), f.st.lookups.Load())

	for range 10 {
		_, err := f.svc.Verify(ctx, full)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, f.argon2Count(), "a cache hit performs no Argon2 verification")
	assert.Equal(t, int64(1), f.st.lookups.Load(), "a cache hit does not touch the store")

	f.clock.Advance(61 * time.Second)
	_, err = f.svc.Verify(ctx, full)
	require.NoError(t, err)
	assert.Equal(t, 1, f.argon2Count(), "an expired entry re-reads the row but does not hash the same key again")
	assert.Equal(t, int64(2), f.st.lookups.Load(), "an expired entry re-reads the key's row")

	// After a revocation evicted the entry, a later sighting is verified from scratch.
	_, err = f.svc.Revoke(ctx, k.ID)
	require.NoError(t, err)
	_, err = f.svc.Verify(ctx, full)
	require.ErrorIs(t, err, ErrCredentialRevoked)
	assert.Equal(t, 2, f.argon2Count(), "no stale entry survives a revocation")
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name   string
		setup  func(t *testing.T, f *fixture, u store.User, k store.APIKey)
		want   error
		reason string
	}{
		{"revoked", func(t *testing.T, f *fixture, _ store.User, k store.APIKey) {
			_, err := f.svc.Revoke(ctx, k.ID)
			require.NoError(t, err)
		}, ErrCredentialRevoked, reasonRevoked},
		{"revoked behind the service's back, after the TTL", func(t *testing.T, f *fixture, _ store.User, k store.APIKey) {
			_, err := f.st.RevokeAPIKey(ctx, k.ID)
			require.NoError(t, err)
			f.clock.Advance(2 * time.Minute)
		}, ErrCredentialRevoked, reasonRevoked},
		{"expired by the clock, while cached", func(t *testing.T, f *fixture, _ store.User, _ store.APIKey) {
			f.clock.Advance(46 * 24 * time.Hour) // student keys live 45 days
		}, ErrCredentialExpired, reasonExpired},
		{"expired by maintenance", func(t *testing.T, f *fixture, _ store.User, _ store.APIKey) {
			_, err := f.st.ExpireKeys(ctx, f.clock.Now().Add(50*24*time.Hour))
			require.NoError(t, err)
			f.clock.Advance(2 * time.Minute)
		}, ErrCredentialExpired, reasonExpired},
		{"user disabled", func(t *testing.T, f *fixture, u store.User, _ store.APIKey) {
			_, err := f.st.SetUserActive(ctx, u.ID, false)
			require.NoError(t, err)
			f.clock.Advance(2 * time.Minute)
		}, ErrUserInactive, reasonUserInactive},
		{"user deleted", func(t *testing.T, f *fixture, u store.User, _ store.APIKey) {
			require.NoError(t, f.st.SoftDeleteUser(ctx, u.ID, f.clock.Now()))
			f.clock.Advance(2 * time.Minute)
		}, ErrUserInactive, reasonUserInactive},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			u := f.user(t, "bob", store.GroupStudent)
			k, full := f.key(t, u.ID)
			_, err := f.svc.Verify(ctx, full)
			require.NoError(t, err, "valid before the change")
			tc.setup(t, f, u, k)
			for range 2 { // the refusal is cached too
				_, err = f.svc.Verify(ctx, full)
				require.ErrorIs(t, err, tc.want)
			}
			assert.Equal(t, 2, f.rejections(tc.reason))
		})
	}
}

func TestVerifyUnknownKeyIsRememberedBriefly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	unknown, err := NewKey()
	require.NoError(t, err)
	for range 5 {
		_, err := f.svc.Verify(ctx, unknown)
		require.ErrorIs(t, err, ErrInvalidCredential)
	}
	assert.Equal(t, int64(1), f.st.lookups.Load(), "unknown keys are remembered")
	assert.Zero(t, f.argon2Count())
	f.clock.Advance(6 * time.Second)
	_, err = f.svc.Verify(ctx, unknown)
	require.ErrorIs(t, err, ErrInvalidCredential)
	assert.Equal(t, int64(2), f.st.lookups.Load(), "for 5 seconds")
}

func TestVerifyHashMismatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "eve", store.GroupStudent)
	key, err := NewKey()
	require.NoError(t, err)
	other, err := hashArgon2id("something else", fastParams)
	require.NoError(t, err)
	_, err = f.st.CreateAPIKey(ctx, store.APIKeySpec{UserID: u.ID, Name: "forged", Prefix: DisplayPrefix(key), SHA256: KeyDigest(key), Hash: other})
	require.NoError(t, err)
	_, err = f.svc.Verify(ctx, key)
	require.ErrorIs(t, err, ErrInvalidCredential)
	assert.Equal(t, 1, f.rejections(reasonHashMismatch))
}

func TestVerifyMalformedNeverReachesStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, k := range []string{"", "sk-abc", "mr2_short", "mr2_" + string(make([]byte, 43)), "Bearer mr2_x"} {
		_, err := f.svc.Verify(context.Background(), k)
		require.ErrorIs(t, err, ErrInvalidCredential)
	}
	assert.Zero(t, f.st.lookups.Load())
	assert.Equal(t, 5, f.rejections(reasonMalformed))
}

func TestRevokeEvictsAndNotifies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "cy", store.GroupStaff)
	k, full := f.key(t, u.ID)
	_, err := f.svc.Verify(ctx, full)
	require.NoError(t, err)

	ch, cancel := f.svc.Revocations()
	ch2, cancel2 := f.svc.Revocations()
	defer cancel2()
	for range 2 { // idempotent; subscribers hear each call
		got, err := f.svc.Revoke(ctx, k.ID)
		require.NoError(t, err)
		assert.Equal(t, store.KeyRevoked, got.Status)
		assert.Equal(t, k.Prefix, <-ch)
		assert.Equal(t, k.Prefix, <-ch2)
	}
	_, err = f.svc.Verify(ctx, full)
	require.ErrorIs(t, err, ErrCredentialRevoked, "revocation takes effect at once, not after the TTL")

	cancel()
	cancel() // twice is harmless
	_, open := <-ch
	assert.False(t, open, "cancel closes the channel")
	_, err = f.svc.Revoke(ctx, 424242)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestRevocationFanOutNeverBlocks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, cancel := f.svc.Revocations() // never read
	defer cancel()
	for range revocationBuffer + 10 {
		f.svc.notify("mr2_abcdefgh")
	}
	assert.Equal(t, 10.0, testutil.ToFloat64(f.svc.metrics.revocationDrops))
}

func TestConcurrentVerifyDedupesArgon2(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "dan", store.GroupStudent)
	_, full := f.key(t, u.ID)
	f.st.gate = make(chan struct{})
	f.st.entered = make(chan struct{}, 1)

	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := f.svc.Verify(ctx, full)
			errs <- err
		})
	}
	<-f.st.entered // one lookup is in flight and held
	close(f.st.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 1, f.argon2Count(), "one Argon2 verification for %d concurrent callers", n)
	assert.Equal(t, int64(1), f.st.lookups.Load())
}

func TestRevokeDuringLookupIsNotCachedAsActive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "fay", store.GroupStudent)
	k, full := f.key(t, u.ID)
	f.st.gate = make(chan struct{})
	f.st.entered = make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { _, err := f.svc.Verify(ctx, full); done <- err }()
	<-f.st.entered // the lookup has read the key as active
	_, err := f.svc.Revoke(ctx, k.ID)
	require.NoError(t, err)
	close(f.st.gate)
	require.ErrorIs(t, <-done, ErrCredentialRevoked, "a lookup fenced off by the revocation reads the row again")
	_, err = f.svc.Verify(ctx, full)
	require.ErrorIs(t, err, ErrCredentialRevoked)
	assert.Equal(t, int64(2), f.st.lookups.Load(), "one read before the revocation, one after")
}

func TestRevokeDuringRefreshAnswersJoinedRequestsFromTheNewRow(t *testing.T) {
	t.Parallel()
	// In a bubble, synctest.Wait returns once the late Verify is blocked on the
	// refresh it joined, instead of sleeping and hoping.
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		ctx := context.Background()
		u := f.user(t, "gus", store.GroupFaculty)
		k, full := f.key(t, u.ID, ScopeInference)
		_, err := f.svc.Verify(ctx, full)
		require.NoError(t, err)

		f.st.gate = make(chan struct{})
		f.st.entered = make(chan struct{}, 1)
		f.clock.Advance(55 * time.Second)
		_, err = f.svc.Verify(ctx, full) // answered from the cache; starts the refresh
		require.NoError(t, err)
		<-f.st.entered // the refresh has read the key as active and is held

		_, err = f.svc.Revoke(ctx, k.ID) // evicts the entry while the refresh is in flight
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { _, err := f.svc.Verify(ctx, full); done <- err }() // misses, joins the refresh
		synctest.Wait()                                                // it waits on the refresh
		close(f.st.gate)
		require.ErrorIs(t, <-done, ErrCredentialRevoked, "no request after Revoke returned is answered from the old row")
		_, err = f.svc.Verify(ctx, full)
		require.ErrorIs(t, err, ErrCredentialRevoked)
	})
}

func TestRefreshThatFindsTheKeyGoneForgetsItWithoutCountingARejection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "hal", store.GroupFaculty)
	_, full := f.key(t, u.ID, ScopeInference)
	_, err := f.svc.Verify(ctx, full)
	require.NoError(t, err)

	f.st.gone.Store(true) // the row is deleted outside this process
	f.clock.Advance(55 * time.Second)
	_, err = f.svc.Verify(ctx, full) // still within the entry's lifetime; starts the refresh
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(f.svc.metrics.refreshOK) == 1
	}, 5*time.Second, 5*time.Millisecond)
	assert.Zero(t, f.rejections(reasonUnknown), "the refresh refused no request")

	_, err = f.svc.Verify(ctx, full)
	require.ErrorIs(t, err, ErrInvalidCredential, "the entry is forgotten before it would have expired")
	assert.Equal(t, 1, f.rejections(reasonUnknown), "the request that is refused is counted once")
	assert.Equal(t, int64(2), f.st.lookups.Load(), "refused from the negative cache, without another lookup")
}

func TestVerifyHonoursCallerContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := f.user(t, "gus", store.GroupStudent)
	_, full := f.key(t, u.ID)
	f.st.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.svc.Verify(ctx, full)
	require.ErrorIs(t, err, context.Canceled)
	close(f.st.gate)
	_, err = f.svc.Verify(context.Background(), full) // joins or follows the detached lookup
	require.NoError(t, err)
}

func TestActiveKeyIsRefreshedBeforeItExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "rae", store.GroupFaculty)
	k, full := f.key(t, u.ID, ScopeInference)
	_, err := f.svc.Verify(ctx, full)
	require.NoError(t, err)
	require.Equal(t, int64(1), f.st.lookups.Load())

	// Before the refresh window nothing is re-read.
	f.clock.Advance(49 * time.Second)
	_, err = f.svc.Verify(ctx, full)
	require.NoError(t, err)
	assert.Equal(t, int64(1), f.st.lookups.Load())

	// In the last 10 s of the entry, a request is answered from the cache at
	// once and the row is re-read behind it, without Argon2id.
	f.clock.Advance(2 * time.Second)
	_, err = f.svc.Verify(ctx, full)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(f.svc.metrics.refreshOK) == 1
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, int64(2), f.st.lookups.Load())
	assert.Equal(t, 1, f.argon2Count())

	// The refreshed entry outlives the first one: past the first expiry, a
	// request costs no lookup.
	f.clock.Advance(20 * time.Second)
	_, err = f.svc.Verify(ctx, full)
	require.NoError(t, err)
	assert.Equal(t, int64(2), f.st.lookups.Load(), "the refreshed entry is fresh")

	// A revocation made outside this process (in the database directly) is
	// seen by the next refresh, before the entry would have expired.
	_, err = f.st.RevokeAPIKey(ctx, k.ID)
	require.NoError(t, err)
	f.clock.Advance(35 * time.Second) // the refreshed entry expires at 111 s; now 106 s
	_, err = f.svc.Verify(ctx, full)
	require.NoError(t, err, "still within the entry's lifetime")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(f.svc.metrics.refreshOK) == 2
	}, 5*time.Second, 5*time.Millisecond)
	_, err = f.svc.Verify(ctx, full)
	require.ErrorIs(t, err, ErrCredentialRevoked)
	assert.Equal(t, int64(3), f.st.lookups.Load())
}
