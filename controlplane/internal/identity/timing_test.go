package identity

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// hashWork records the Argon2id verifications a sign-in performs: how many,
// and the cost parameters of each (what decides how long it takes).
type hashWork struct {
	mu    sync.Mutex
	calls []argonParams
}

func (h *hashWork) observe(a *Accounts) {
	inner := a.verifyPassword
	a.verifyPassword = func(encoded, secret string) (bool, error) {
		p, err := parsePHC(encoded)
		h.mu.Lock()
		if err == nil {
			h.calls = append(h.calls, p.params)
		} else {
			h.calls = append(h.calls, argonParams{})
		}
		h.mu.Unlock()
		return inner(encoded, secret)
	}
}

func (h *hashWork) take() []argonParams {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.calls
	h.calls = nil
	return out
}

// TestPasswordLoginUnknownUserDoesTheSameHashWork proves, deterministically,
// that a sign-in for a username that does not exist (or has no password) runs
// exactly the Argon2id verification a known user with a wrong password runs:
// one verification, at the same cost parameters (memory, passes, lanes, salt
// and hash length), which is what its duration depends on. The fixture hashes
// passwords at parameters of their own here (not the fixture's cheap default),
// so the dummy hash's parameters are compared with a real stored password
// hash's.
func TestPasswordLoginUnknownUserDoesTheSameHashWork(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.pwParams = measuredParams
	var err error
	f.acct, err = NewAccounts(f.svc, f.st, AccountOptions{LoginAttempts: 1000})
	require.NoError(t, err)
	work := &hashWork{}
	work.observe(f.acct)
	ctx := context.Background()
	f.user(t, "alice", store.GroupStaff)
	g, err := f.st.GetGroupByName(ctx, store.GroupStaff)
	require.NoError(t, err)
	_, err = f.st.CreateUser(ctx, store.UserSpec{Username: "sso-only", Email: "sso@example.edu", GroupID: g.ID})
	require.NoError(t, err)

	_, err = login(f, "alice", "wrong horse", "192.0.2.1")
	require.ErrorIs(t, err, ErrLoginFailed)
	known := work.take()
	require.Len(t, known, 1, "a known user with a wrong password: one verification")
	assert.Equal(t, measuredParams, known[0], "the stored hash is at the password parameters")

	for _, name := range []string{"nobody", "NOBODY-else", "sso-only", ""} {
		_, err := login(f, name, "wrong horse", "192.0.2.1")
		require.ErrorIs(t, err, ErrLoginFailed, name)
		got := work.take()
		require.Len(t, got, 1, "%q: exactly one verification, as for a known user", name)
		assert.Equal(t, known[0], got[0], "%q: the same cost parameters as a known user's hash", name)
	}
}

// measuredParams cost a few milliseconds per hash (tens under the race
// detector): far more than the database lookup, far less than production's.
var measuredParams = argonParams{time: 3, memory: 4 * 1024, threads: 2, keyLen: 32, saltLen: 16}

// TestPasswordLoginTimingDoesNotTellUsersApart measures it too: the median
// time of a failed sign-in for an unknown user is within a factor of two of a
// known user's with a wrong password. Skipping the verification would make it
// many times faster (a lookup against a hash), so the generous bound still
// catches the leak.
func TestPasswordLoginTimingDoesNotTellUsersApart(t *testing.T) {
	f := newFixture(t)
	f.svc.pwParams = measuredParams
	var err error
	f.acct, err = NewAccounts(f.svc, f.st, AccountOptions{LoginAttempts: 1000})
	require.NoError(t, err)
	f.user(t, "alice", store.GroupStaff)

	const tries = 9
	var known, unknown []time.Duration
	timed := func(user string) time.Duration {
		start := time.Now()
		_, err := login(f, user, "wrong horse", "192.0.2.1")
		require.ErrorIs(t, err, ErrLoginFailed)
		return time.Since(start)
	}
	timed("alice") // warm up: the first Argon2id run pays for its allocation
	for range tries {
		known = append(known, timed("alice"))
		unknown = append(unknown, timed("nobody"))
	}
	mk, mu := median(known), median(unknown)
	t.Logf("median failed sign-in: known user %v, unknown user %v", mk, mu)
	assert.Greater(t, mu, mk/2, "an unknown user's failed sign-in must not be measurably faster")
	assert.Less(t, mu, mk*2, "an unknown user's failed sign-in must not be measurably slower")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
