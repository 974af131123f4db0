package identity

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func (f *fixture) staleServed() int { return int(testutil.ToFloat64(f.svc.metrics.staleServed)) }
func (f *fixture) staleTooOld() int { return int(testutil.ToFloat64(f.svc.metrics.staleTooOld)) }

// unreachableSeconds reads the exported gauge.
func (f *fixture) unreachableSeconds(t *testing.T) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "mindrouter_identity_database_unreachable_seconds" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("gauge mindrouter_identity_database_unreachable_seconds not registered")
	return 0
}

func TestOutageServesCachedKeysUpToMaxStale(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.maxStale = 10 * time.Minute
	ctx := context.Background()
	u := f.user(t, "oscar", store.GroupFaculty)
	_, known := f.key(t, u.ID, ScopeInference)
	_, idle := f.key(t, u.ID, ScopeInference)
	_, never := f.key(t, u.ID, ScopeInference)
	for _, k := range []string{known, idle} {
		_, err := f.svc.Verify(ctx, k)
		require.NoError(t, err)
	}
	assert.Zero(t, f.unreachableSeconds(t))

	f.st.down.Store(true)
	// In the refresh window the refresh fails: the outage starts here (55 s).
	f.clock.Advance(55 * time.Second)
	_, err := f.svc.Verify(ctx, known)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return testutil.ToFloat64(f.svc.metrics.refreshFailed) == 1 },
		5*time.Second, 5*time.Millisecond)

	// Past the TTL both cached keys keep working, without waiting for the
	// database: no lookup is made on the request path.
	f.clock.Advance(10 * time.Second)
	lookups := f.st.lookups.Load()
	for _, k := range []string{known, idle} {
		p, err := f.svc.Verify(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, u.ID, p.UserID)
	}
	assert.Equal(t, 2, f.staleServed())
	assert.InDelta(t, 10, f.unreachableSeconds(t), 0.001)
	// One background probe at most per interval, whichever key asked first.
	require.Eventually(t, func() bool { return testutil.ToFloat64(f.svc.metrics.refreshFailed) == 2 },
		5*time.Second, 5*time.Millisecond)
	assert.Equal(t, lookups+1, f.st.lookups.Load())

	// A key this process never read cannot be vouched for: the database's
	// unavailability, not a refusal of the key.
	_, err = f.svc.Verify(ctx, never)
	require.ErrorIs(t, err, store.ErrUnavailable)
	assert.Zero(t, f.rejections(reasonUnknown))

	// At the bound the cached entry is refused too, and counted.
	f.clock.Advance(10*time.Minute - 10*time.Second)
	_, err = f.svc.Verify(ctx, known)
	require.ErrorIs(t, err, store.ErrUnavailable)
	assert.Equal(t, 1, f.staleTooOld())
	assert.Equal(t, 2, f.staleServed())

	// The database comes back: the next read ends the outage.
	f.st.down.Store(false)
	_, err = f.svc.Verify(ctx, known)
	require.NoError(t, err)
	assert.Zero(t, f.unreachableSeconds(t))
	_, err = f.svc.Verify(ctx, never)
	require.NoError(t, err)
}

func TestOutageDiscoveredOnTheRequestPathServesTheStaleEntry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "dora", store.GroupFaculty)
	_, full := f.key(t, u.ID, ScopeInference)
	_, err := f.svc.Verify(ctx, full)
	require.NoError(t, err)

	// The key was idle through its refresh window, so the first request after
	// its expiry is the one that finds the database gone.
	f.st.down.Store(true)
	f.clock.Advance(2 * time.Minute)
	_, err = f.svc.Verify(ctx, full)
	require.NoError(t, err)
	assert.Equal(t, 1, f.staleServed())
	assert.Equal(t, 1, f.argon2Count(), "no second Argon2id run")
	assert.InDelta(t, 0, f.unreachableSeconds(t), 0.001, "the outage started now")
	f.clock.Advance(3 * time.Second)
	assert.InDelta(t, 3, f.unreachableSeconds(t), 0.001)
}

func TestOutageKeepsRevocationsAndUserChangesMadeBeforeIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	alice := f.user(t, "alice", store.GroupFaculty)
	bob := f.user(t, "bob", store.GroupFaculty)
	revokedKey, revoked := f.key(t, alice.ID, ScopeInference)
	_, revokedCached := f.key(t, alice.ID, ScopeInference)
	_, bobs := f.key(t, bob.ID, ScopeInference)
	for _, k := range []string{revoked, revokedCached, bobs} {
		_, err := f.svc.Verify(ctx, k)
		require.NoError(t, err)
	}

	// Revoked through this process: evicted and refused from then on.
	_, err := f.svc.Revoke(ctx, revokedKey.ID)
	require.NoError(t, err)
	// Revoked in the database directly and then read: cached as revoked.
	keys, err := f.st.ListAPIKeys(ctx, store.APIKeyFilter{UserID: alice.ID})
	require.NoError(t, err)
	for _, k := range keys {
		if k.ID != revokedKey.ID {
			_, err = f.st.RevokeAPIKey(ctx, k.ID)
			require.NoError(t, err)
		}
	}
	f.clock.Advance(61 * time.Second)
	_, err = f.svc.Verify(ctx, revokedCached)
	require.ErrorIs(t, err, ErrCredentialRevoked)
	// Bob is deactivated: his cached entries are invalidated.
	inactive := false
	_, err = f.svc.UpdateUser(ctx, bob.ID, store.UserPatch{IsActive: &inactive})
	require.NoError(t, err)

	f.st.down.Store(true)
	f.clock.Advance(2 * time.Minute)
	_, err = f.svc.Verify(ctx, revoked)
	require.ErrorIs(t, err, store.ErrUnavailable, "an evicted key is not served, whatever the database's state")
	_, err = f.svc.Verify(ctx, revokedCached)
	require.ErrorIs(t, err, ErrCredentialRevoked, "a stale entry keeps its revoked status")
	_, err = f.svc.Verify(ctx, bobs)
	require.ErrorIs(t, err, store.ErrUnavailable, "an invalidated entry is not served stale")
	assert.Equal(t, 1, f.staleServed(), "only the revoked entry was used, and refused")
}
