package identity

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func login(f *fixture, user, pw, ip string) (Session, error) {
	return f.acct.PasswordLogin(context.Background(), LoginRequest{Username: user, Password: pw, ClientIP: ip, UserAgent: "test"})
}

func TestPasswordLoginRefusesAlikeWhateverTheReason(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.user(t, "alice", store.GroupStaff)
	off := f.user(t, "off", store.GroupStaff)
	active := false
	_, err := f.svc.UpdateUser(ctx, off.ID, store.UserPatch{IsActive: &active})
	require.NoError(t, err)
	g, err := f.st.GetGroupByName(ctx, store.GroupStaff)
	require.NoError(t, err)
	_, err = f.st.CreateUser(ctx, store.UserSpec{Username: "sso-only", Email: "sso@example.edu", GroupID: g.ID})
	require.NoError(t, err)

	var messages []string
	for _, tc := range []struct{ name, user, pw string }{
		{"unknown user", "nobody", "correct horse"},
		{"wrong password", "alice", "wrong horse"},
		{"inactive account", "off", "correct horse"},
		{"no local password", "sso-only", ""},
		{"no local password, any guess", "sso-only", "correct horse"},
	} {
		_, err := login(f, tc.user, tc.pw, "192.0.2.1")
		require.ErrorIs(t, err, ErrLoginFailed, tc.name)
		messages = append(messages, err.Error())
	}
	for _, m := range messages {
		assert.Equal(t, messages[0], m, "one message for every failure")
	}

	ss, err := login(f, "alice", "correct horse", "192.0.2.1")
	require.NoError(t, err)
	assert.NotEmpty(t, ss.Token)
	assert.NotEmpty(t, ss.CSRFToken)
	assert.NotEqual(t, ss.Token, ss.CSRFToken)
	assert.Equal(t, f.clock.Now().Add(7*24*time.Hour), ss.ExpiresAt, "default absolute timeout")
	p, err := f.acct.VerifySession(ctx, ss.Token)
	require.NoError(t, err)
	assert.Equal(t, "alice", p.Username)
	assert.Equal(t, ss.CSRFToken, p.CSRFToken)
	assert.NotZero(t, p.SessionID)
	assert.Equal(t, RoleUser, p.Role())

	rec, err := f.st.SessionByDigest(ctx, tokenDigest(ss.Token))
	require.NoError(t, err)
	assert.NotEqual(t, ss.Token, rec.Session.TokenSHA256, "only the digest is stored")
}

func TestPasswordLoginThrottlesPerUsernameAndAddress(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.user(t, "bob", store.GroupStudent)
	for i := range 15 {
		_, err := login(f, "bob", "wrong", "192.0.2.7")
		require.ErrorIs(t, err, ErrLoginFailed, "attempt %d", i+1)
	}
	_, err := login(f, "BOB", "correct horse", "192.0.2.7")
	var thr *LoginThrottledError
	require.ErrorAs(t, err, &thr, "the 16th attempt is refused, right password or not, any letter case")
	require.ErrorIs(t, err, ErrLoginThrottled)
	assert.Equal(t, 300*time.Second, thr.RetryAfter())

	_, err = login(f, "bob", "correct horse", "192.0.2.8")
	require.NoError(t, err, "another address is not throttled")
	_, err = login(f, "nobody", "x", "192.0.2.7")
	require.ErrorIs(t, err, ErrLoginFailed, "another username from the same address is not throttled")

	f.clock.Advance(299 * time.Second)
	_, err = login(f, "bob", "correct horse", "192.0.2.7")
	require.ErrorAs(t, err, &thr)
	assert.Equal(t, time.Second, thr.RetryAfter())
	f.clock.Advance(time.Second)
	_, err = login(f, "bob", "correct horse", "192.0.2.7")
	require.NoError(t, err, "the window has ended")
}

func TestThrottleStaysBounded(t *testing.T) {
	t.Parallel()
	th := newThrottle(2, time.Minute)
	now := time.Unix(0, 0)
	for i := range maxThrottleEntries + 10 {
		th.fail(string(rune(i)), now.Add(time.Duration(i)))
	}
	assert.LessOrEqual(t, len(th.entries), maxThrottleEntries)
	th.fail("x", now)
	th.fail("x", now)
	assert.Positive(t, th.blocked("x", now))
}

func TestSessionIdleAndAbsoluteTimeouts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	acct, err := NewAccounts(f.svc, f.st, AccountOptions{SessionIdle: 30 * time.Minute, SessionAbsolute: 2 * time.Hour})
	require.NoError(t, err)
	u := f.user(t, "carol", store.GroupFaculty)

	idle, err := acct.openSession(ctx, u.ID, "password", "", "")
	require.NoError(t, err)
	f.clock.Advance(29 * time.Minute)
	_, err = acct.VerifySession(ctx, idle.Token)
	require.NoError(t, err, "used within the idle timeout")
	f.clock.Advance(29 * time.Minute)
	_, err = acct.VerifySession(ctx, idle.Token)
	require.NoError(t, err, "each use moves the idle clock")
	f.clock.Advance(30 * time.Minute)
	_, err = acct.VerifySession(ctx, idle.Token)
	require.ErrorIs(t, err, ErrSessionInvalid, "idle for the whole timeout")
	_, err = f.st.SessionByDigest(ctx, tokenDigest(idle.Token))
	require.ErrorIs(t, err, store.ErrNotFound, "a timed-out session is deleted")

	busy, err := acct.openSession(ctx, u.ID, "password", "", "")
	require.NoError(t, err)
	for range 7 {
		f.clock.Advance(15 * time.Minute)
		_, err = acct.VerifySession(ctx, busy.Token)
		require.NoError(t, err)
	}
	f.clock.Advance(15 * time.Minute)
	_, err = acct.VerifySession(ctx, busy.Token)
	require.ErrorIs(t, err, ErrSessionInvalid, "however busy, a session ends at its absolute timeout")

	_, err = acct.VerifySession(ctx, "not-a-session")
	require.ErrorIs(t, err, ErrSessionInvalid)
	_, err = acct.VerifySession(ctx, "")
	require.ErrorIs(t, err, ErrSessionInvalid)
}

func TestSessionOfDeactivatedUserRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "dan", store.GroupStaff)
	ss, err := login(f, "dan", "correct horse", "192.0.2.1")
	require.NoError(t, err)
	off := false
	_, err = f.svc.UpdateUser(ctx, u.ID, store.UserPatch{IsActive: &off})
	require.NoError(t, err)
	_, err = f.acct.VerifySession(ctx, ss.Token)
	require.ErrorIs(t, err, ErrUserInactive)
}

func TestLogoutAndLogoutEverywhere(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.user(t, "erin", store.GroupStaff)
	f.user(t, "other", store.GroupStaff)
	var tokens, csrf []string
	for range 3 {
		ss, err := login(f, "erin", "correct horse", "192.0.2.1")
		require.NoError(t, err)
		tokens = append(tokens, ss.Token)
		csrf = append(csrf, ss.CSRFToken)
	}
	theirs, err := login(f, "other", "correct horse", "192.0.2.1")
	require.NoError(t, err)

	_, err = f.acct.Logout(ctx, tokens[0], "", false)
	require.ErrorIs(t, err, ErrCSRF, "logout needs the session's CSRF token")
	_, err = f.acct.Logout(ctx, tokens[0], csrf[1], false)
	require.ErrorIs(t, err, ErrCSRF, "another session's token is not this one's")
	n, err := f.acct.Logout(ctx, tokens[0], csrf[0], false)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = f.acct.VerifySession(ctx, tokens[0])
	require.ErrorIs(t, err, ErrSessionInvalid)
	_, err = f.acct.VerifySession(ctx, tokens[1])
	require.NoError(t, err, "other sessions live on")

	n, err = f.acct.Logout(ctx, tokens[1], csrf[1], true)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "everywhere ends every session of the user")
	_, err = f.acct.VerifySession(ctx, tokens[2])
	require.ErrorIs(t, err, ErrSessionInvalid)
	_, err = f.acct.VerifySession(ctx, theirs.Token)
	require.NoError(t, err, "other users are untouched")

	n, err = f.acct.Logout(ctx, tokens[0], csrf[0], true)
	require.NoError(t, err)
	assert.Zero(t, n, "an ended session ends nothing")
}

func TestChangeAndResetPassword(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "fay", store.GroupStaff)
	mine, err := login(f, "fay", "correct horse", "192.0.2.1")
	require.NoError(t, err)
	other, err := login(f, "fay", "correct horse", "192.0.2.2")
	require.NoError(t, err)

	_, err = f.acct.ChangePassword(ctx, u.ID, "wrong", "new password 1", mine.Token)
	require.ErrorIs(t, err, ErrPermissionDenied)
	_, err = f.acct.ChangePassword(ctx, u.ID, "correct horse", "short", mine.Token)
	require.ErrorIs(t, err, store.ErrInvalid)
	n, err := f.acct.ChangePassword(ctx, u.ID, "correct horse", "new password 1", mine.Token)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the other session ends")
	_, err = f.acct.VerifySession(ctx, mine.Token)
	require.NoError(t, err, "the caller's own session stays")
	_, err = f.acct.VerifySession(ctx, other.Token)
	require.ErrorIs(t, err, ErrSessionInvalid)
	_, err = login(f, "fay", "correct horse", "192.0.2.1")
	require.ErrorIs(t, err, ErrLoginFailed)
	_, err = login(f, "fay", "new password 1", "192.0.2.1")
	require.NoError(t, err)

	n, err = f.acct.ResetPassword(ctx, u.ID, "reset password 2")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "a reset ends every session")
	_, err = login(f, "fay", "reset password 2", "192.0.2.1")
	require.NoError(t, err)

	g, err := f.st.GetGroupByName(ctx, store.GroupStaff)
	require.NoError(t, err)
	sso, err := f.st.CreateUser(ctx, store.UserSpec{Username: "sso", Email: "s@example.edu", GroupID: g.ID})
	require.NoError(t, err)
	_, err = f.acct.ResetPassword(ctx, sso.ID, "whatever 123")
	require.ErrorIs(t, err, ErrNotLocal, "SSO accounts have no password to reset")
}

func TestDeleteUserRevokesKeysEverywhere(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	admin := f.user(t, "root", store.GroupAdmin)
	u := f.user(t, "gina", store.GroupStaff)
	k, full := f.key(t, u.ID)
	_, err := f.svc.Verify(ctx, full)
	require.NoError(t, err, "cached now")
	ss, err := login(f, "gina", "correct horse", "192.0.2.1")
	require.NoError(t, err)
	revoked, cancel := f.svc.Revocations()
	defer cancel()

	_, err = f.acct.DeleteUser(ctx, admin.ID, admin.ID)
	require.ErrorIs(t, err, ErrSelfDelete)
	del, err := f.acct.DeleteUser(ctx, admin.ID, u.ID)
	require.NoError(t, err)
	assert.Len(t, del.Keys, 1)
	assert.Equal(t, 1, del.Sessions)
	select {
	case p := <-revoked:
		assert.Equal(t, k.Prefix, p, "data planes hear of the key at once")
	case <-time.After(5 * time.Second):
		t.Fatal("no revocation announced")
	}
	_, err = f.svc.Verify(ctx, full)
	require.ErrorIs(t, err, ErrInvalidCredential, "the cached key is forgotten")
	_, err = f.acct.VerifySession(ctx, ss.Token)
	require.ErrorIs(t, err, ErrSessionInvalid)
}

func TestRenewAndRevokeOwnKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	u := f.user(t, "hal", store.GroupStudent)
	other := f.user(t, "ivy", store.GroupStudent)
	k, full := f.key(t, u.ID)
	require.NotNil(t, k.ExpiresAt)
	assert.Equal(t, f.clock.Now().Add(45*24*time.Hour), *k.ExpiresAt, "the group's key lifetime")

	f.clock.Advance(46 * 24 * time.Hour)
	_, err := f.svc.Verify(ctx, full)
	require.ErrorIs(t, err, ErrCredentialExpired, "expiry is enforced on the hot path")

	_, err = f.acct.RenewKey(ctx, other.ID, k.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "another user's key is not theirs to renew")
	renewed, err := f.acct.RenewKey(ctx, u.ID, k.ID)
	require.NoError(t, err)
	assert.Equal(t, store.KeyActive, renewed.Status)
	assert.Equal(t, f.clock.Now().Add(45*24*time.Hour), *renewed.ExpiresAt)
	_, err = f.svc.Verify(ctx, full)
	require.NoError(t, err, "the same secret works again")

	_, err = f.acct.RevokeKey(ctx, other.ID, k.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = f.acct.RevokeKey(ctx, u.ID, k.ID)
	require.NoError(t, err)
	_, err = f.svc.Verify(ctx, full)
	require.ErrorIs(t, err, ErrCredentialRevoked)
	_, err = f.acct.RenewKey(ctx, u.ID, k.ID)
	require.ErrorIs(t, err, store.ErrInvalid, "revocation is final")
}

func TestServiceKeysNeverExpireAndSkipTheLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	g, err := f.acct.CreateGroup(ctx, store.Group{Name: "one-key", SchedulerWeight: 1, APIKeyExpiryDays: 1, MaxAPIKeys: 1})
	require.NoError(t, err)
	g2, err := f.st.GetGroup(ctx, g.ID)
	require.NoError(t, err)
	u, err := f.svc.CreateUser(ctx, "jo", "jo@example.edu", "correct horse", g2.ID, "")
	require.NoError(t, err)
	_, _, err = f.svc.CreateKey(ctx, KeySpec{UserID: u.ID, Name: "first"})
	require.NoError(t, err)
	_, _, err = f.svc.CreateKey(ctx, KeySpec{UserID: u.ID, Name: "second"})
	require.ErrorIs(t, err, ErrKeyLimit, "the group allows one personal key")

	svcKey, full, err := f.svc.CreateKey(ctx, KeySpec{UserID: u.ID, Name: "bot", ServiceName: "grader"})
	require.NoError(t, err)
	assert.True(t, svcKey.IsService)
	assert.Nil(t, svcKey.ExpiresAt, "service keys never expire")
	f.clock.Advance(400 * 24 * time.Hour)
	_, err = f.svc.Verify(ctx, full)
	require.NoError(t, err)
	exp := f.clock.Now().Add(time.Hour)
	_, _, err = f.svc.CreateKey(ctx, KeySpec{UserID: u.ID, Name: "bot2", ServiceName: "grader", ExpiresAt: &exp})
	require.ErrorIs(t, err, store.ErrInvalid)
	renewed, err := f.acct.RenewKey(ctx, 0, svcKey.ID)
	require.NoError(t, err)
	assert.Nil(t, renewed.ExpiresAt)
}

func TestQuotaApprovalRaisesTheBudgetAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	admin := f.user(t, "root", store.GroupAdmin)
	u := f.user(t, "kim", store.GroupStudent)
	_, full := f.key(t, u.ID)
	p, err := f.svc.Verify(ctx, full)
	require.NoError(t, err)
	assert.Equal(t, int64(100_000), p.TokenBudget)

	for _, bad := range []struct {
		tokens int64
		why    string
	}{{0, "x"}, {-5, "x"}, {10, "   "}, {10, string(make([]byte, 2001))}} {
		_, err := f.acct.FileQuotaRequest(ctx, u.ID, bad.tokens, bad.why)
		require.ErrorIs(t, err, store.ErrInvalid)
	}
	r, err := f.acct.FileQuotaRequest(ctx, u.ID, 400_000, "  course project  ")
	require.NoError(t, err)
	assert.Equal(t, "course project", r.Justification)
	got, err := f.acct.ReviewQuotaRequest(ctx, admin.ID, r.ID, true, "fine", nil)
	require.NoError(t, err)
	assert.Equal(t, store.QuotaRequestApproved, got.Status)

	p, err = f.svc.Verify(ctx, full)
	require.NoError(t, err)
	assert.Equal(t, int64(400_000), p.TokenBudget, "the next request sees the grant, without waiting for the cache")
	_, err = f.acct.ReviewQuotaRequest(ctx, admin.ID, r.ID, false, "", nil)
	require.ErrorIs(t, err, store.ErrConflict)
}

func TestCreateGroupValidates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, g := range []store.Group{
		{Name: "", SchedulerWeight: 1},
		{Name: "Upper", SchedulerWeight: 1},
		{Name: "has space", SchedulerWeight: 1},
		{Name: "ok", SchedulerWeight: 0},
		{Name: "ok", SchedulerWeight: 1, TokenBudget: -1},
		{Name: "ok", SchedulerWeight: 1, MaxAPIKeys: -1},
	} {
		_, err := f.acct.CreateGroup(context.Background(), g)
		require.ErrorIs(t, err, store.ErrInvalid, "%+v", g)
	}
}
