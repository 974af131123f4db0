package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func testGroupLifecycle(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	g, err := s.CreateGroup(ctx, store.Group{Name: "labs", DisplayName: "Labs", TokenBudget: 5000, RPMLimit: 7,
		SchedulerWeight: 2, APIKeyExpiryDays: 3, MaxAPIKeys: 1, IsAuditor: true})
	require.NoError(t, err)
	assert.Equal(t, "labs", g.Name)
	assert.True(t, g.IsAuditor)
	assert.False(t, g.IsAdmin)
	assert.Equal(t, 1, g.MaxAPIKeys)

	_, err = s.CreateGroup(ctx, store.Group{Name: "labs", SchedulerWeight: 1})
	require.ErrorIs(t, err, store.ErrConflict, "names are unique")
	_, err = s.CreateGroup(ctx, store.Group{Name: "bad", SchedulerWeight: 0})
	require.ErrorIs(t, err, store.ErrInvalid, "weight must be positive")

	yes := true
	g, err = s.UpdateGroup(ctx, g.ID, store.GroupPatch{IsAdmin: &yes})
	require.NoError(t, err)
	assert.True(t, g.IsAdmin, "privileges can change")

	u := seedUser(t, s, "member", "labs")
	require.ErrorIs(t, s.DeleteGroup(ctx, g.ID), store.ErrInUse, "refused while a member remains")
	_, err = s.SetUserActive(ctx, u.ID, false)
	require.NoError(t, err)
	require.ErrorIs(t, s.DeleteGroup(ctx, g.ID), store.ErrInUse, "an inactive member still counts")
	_, err = s.DeleteUser(ctx, u.ID)
	require.NoError(t, err)
	require.NoError(t, s.DeleteGroup(ctx, g.ID))
	_, err = s.GetGroup(ctx, g.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.DeleteGroup(ctx, g.ID), store.ErrNotFound)
}

func testDeleteUser(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	stay := seedUser(t, s, "stays", store.GroupStaff)
	// The newest row: a database that reuses ids would give its id out again.
	u := seedUser(t, s, "gone", store.GroupStaff)
	k := seedKey(t, s, u.ID, "gone-1")
	seedKey(t, s, stay.ID, "stays-1")
	_, err := s.CreateQuotaRequest(ctx, u.ID, 1000, "more please")
	require.NoError(t, err)
	now := time.Now()
	_, err = s.CreateSession(ctx, store.Session{UserID: u.ID, TokenSHA256: digest("sess-gone"), CSRFToken: "c",
		Method: "password", LastSeenAt: now, ExpiresAt: now.Add(time.Hour)})
	require.NoError(t, err)
	require.NoError(t, s.UpsertQuotaUsage(ctx, []store.QuotaUsage{{UserID: u.ID, TokensUsed: 5, LifetimeTokensUsed: 5, PeriodStart: now}}))

	del, err := s.DeleteUser(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, del.Keys, 1)
	assert.Equal(t, k.SHA256, del.Keys[0].SHA256)
	assert.Equal(t, k.Prefix, del.Keys[0].Prefix)
	assert.Equal(t, 1, del.Sessions)

	_, err = s.GetUser(ctx, u.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.KeyByDigest(ctx, k.SHA256)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.SessionByDigest(ctx, digest("sess-gone"))
	require.ErrorIs(t, err, store.ErrNotFound)
	reqs, err := s.ListQuotaRequests(ctx, store.QuotaRequestFilter{UserID: u.ID})
	require.NoError(t, err)
	assert.Empty(t, reqs)
	usage, err := s.ListQuotaUsage(ctx)
	require.NoError(t, err)
	for _, q := range usage {
		assert.NotEqual(t, u.ID, q.UserID, "the quota row goes with the user")
	}
	_, err = s.KeyByDigest(ctx, digest("stays-1"))
	require.NoError(t, err, "other users keep their keys")

	again := seedUser(t, s, "gone", store.GroupStaff)
	assert.Greater(t, again.ID, u.ID, "a deleted user's id is a tombstone: never reused, even by the same username")
	_, err = s.DeleteUser(ctx, u.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}

// testDeletedUserRecordsStay: deleting a user removes what was theirs to
// use (conversations with their messages, stored responses) and keeps the
// records about what they did (audit records, usage, admin actions they
// took), still under their old id, which no later account receives.
func testDeletedUserRecordsStay(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	u := seedUser(t, s, "leaver", store.GroupStaff)
	at := time.Now().UTC().Truncate(time.Second)
	rec := auditRec(1, at)
	rec.RequestID, rec.UserID, rec.Username = "req-leaver", u.ID, u.Username
	require.NoError(t, s.InsertAuditRecords(ctx, []store.AuditRecord{rec}, nil))
	require.NoError(t, s.InsertRequestUsages(ctx, []store.RequestUsage{{RequestID: "req-leaver", BackendID: 1, Model: "m",
		UserID: u.ID, Username: u.Username, Group: store.GroupStaff, Outcome: "completed",
		StartedAt: at, FirstTokenAt: at, EndedAt: at.Add(time.Second), PromptTokens: 3, CompletionTokens: 4}}))
	require.NoError(t, s.RecordAdminAction(ctx, store.AdminAction{ActorUserID: u.ID, Actor: u.Username, Action: "test.action"}))
	conv, err := s.CreateConversation(ctx, u.ID, "notes", "m")
	require.NoError(t, err)
	_, err = s.AppendChatMessage(ctx, u.ID, store.ChatMessage{ConversationID: conv.ID, Role: store.ChatRoleUser, Content: "hi", Status: store.ChatStatusComplete})
	require.NoError(t, err)
	require.NoError(t, s.PutResponse(ctx, store.StoredResponse{ID: "resp_leaver", UserID: u.ID, Model: "m", ResponseJSON: "{}"}))

	_, err = s.DeleteUser(ctx, u.ID)
	require.NoError(t, err)

	convs, err := s.ListConversations(ctx, u.ID)
	require.NoError(t, err)
	assert.Empty(t, convs, "conversations go with the user")
	_, _, err = s.GetConversation(ctx, u.ID, conv.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.GetResponse(ctx, u.ID, "resp_leaver")
	require.ErrorIs(t, err, store.ErrNotFound, "stored responses go with the user")

	audit, _, err := s.SearchAuditRecords(ctx, store.AuditFilter{UserID: u.ID}, "", 10)
	require.NoError(t, err)
	require.Len(t, audit, 1, "the audit trail stays")
	assert.Equal(t, "req-leaver", audit[0].RequestID)
	assert.Equal(t, u.Username, audit[0].Username)
	usage, err := s.RequestUsagesEnded(ctx, at.Add(-time.Minute), at.Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, usage, 1, "usage stays")
	assert.Equal(t, u.ID, usage[0].UserID)
	acts, _, err := s.SearchAdminActions(ctx, store.AdminActionFilter{ActorUserID: u.ID}, "", 10)
	require.NoError(t, err)
	require.Len(t, acts, 1, "the admin actions they took stay")
	assert.Equal(t, "test.action", acts[0].Action)

	next := seedUser(t, s, "leaver", store.GroupStaff)
	assert.Greater(t, next.ID, u.ID, "the old id is a tombstone")
	audit, _, err = s.SearchAuditRecords(ctx, store.AuditFilter{UserID: next.ID}, "", 10)
	require.NoError(t, err)
	assert.Empty(t, audit, "a new account inherits no one's records")
}

func testRenewAndServiceKeys(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	u := seedUser(t, s, "renewer", store.GroupStudent)
	k := seedKey(t, s, u.ID, "renew-1")
	svc, err := s.CreateAPIKey(ctx, store.APIKeySpec{UserID: u.ID, Name: "ci", Prefix: "mr2_servicek",
		SHA256: digest("svc-1"), Hash: "h", ServiceName: "grading-bot"})
	require.NoError(t, err)
	assert.True(t, svc.IsService)
	assert.Equal(t, "grading-bot", svc.ServiceName)
	n, err := s.CountActiveKeys(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "service keys do not count against the personal key limit")

	past := time.Now().Add(-time.Hour)
	_, err = s.RenewAPIKey(ctx, k.ID, &past)
	require.NoError(t, err)
	expired, err := s.ExpireKeys(ctx, time.Now())
	require.NoError(t, err)
	require.Equal(t, 1, expired)

	later := time.Now().Add(24 * time.Hour).Truncate(time.Microsecond)
	renewed, err := s.RenewAPIKey(ctx, k.ID, &later)
	require.NoError(t, err)
	assert.Equal(t, store.KeyActive, renewed.Status, "renewal reactivates an expired key")
	require.NotNil(t, renewed.ExpiresAt)
	assert.True(t, later.Equal(*renewed.ExpiresAt))
	assert.Equal(t, k.SHA256, renewed.SHA256, "same secret")

	_, err = s.RevokeAPIKey(ctx, k.ID)
	require.NoError(t, err)
	_, err = s.RenewAPIKey(ctx, k.ID, &later)
	require.ErrorIs(t, err, store.ErrInvalid, "a revoked key stays revoked")
	_, err = s.RenewAPIKey(ctx, 987654, &later)
	require.ErrorIs(t, err, store.ErrNotFound)

	found, err := s.ListAPIKeys(ctx, store.APIKeyFilter{Search: "GRADING"})
	require.NoError(t, err)
	assert.Empty(t, found, "search matches name, prefix and owner, not the service name")
	found, err = s.ListAPIKeys(ctx, store.APIKeyFilter{Search: "RENEWER"})
	require.NoError(t, err)
	assert.Len(t, found, 2, "search by owner's username, case-insensitively")
	found, err = s.ListAPIKeys(ctx, store.APIKeyFilter{Search: "servicek"})
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, svc.ID, found[0].ID)
}

func testQuotaRequests(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	u := seedUser(t, s, "asker", store.GroupStudent)
	admin := seedUser(t, s, "boss", store.GroupAdmin)
	r1, err := s.CreateQuotaRequest(ctx, u.ID, 250_000, "thesis experiments")
	require.NoError(t, err)
	assert.Equal(t, store.QuotaRequestPending, r1.Status)
	assert.Equal(t, "asker", r1.Username)
	r2, err := s.CreateQuotaRequest(ctx, u.ID, 1, "second")
	require.NoError(t, err)
	_, err = s.CreateQuotaRequest(ctx, u.ID, 0, "zero")
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = s.CreateQuotaRequest(ctx, 999999, 10, "nobody")
	require.ErrorIs(t, err, store.ErrNotFound)

	pending, err := s.ListQuotaRequests(ctx, store.QuotaRequestFilter{Status: store.QuotaRequestPending})
	require.NoError(t, err)
	require.Len(t, pending, 2)
	_, err = s.ListQuotaRequests(ctx, store.QuotaRequestFilter{Status: "bogus"})
	require.ErrorIs(t, err, store.ErrInvalid)

	at := time.Now()
	got, err := s.ReviewQuotaRequest(ctx, r1.ID, store.QuotaReview{ReviewerID: admin.ID, Approved: true, Notes: "ok", GrantedTokens: ptr(int64(200_000)), At: at})
	require.NoError(t, err)
	assert.Equal(t, store.QuotaRequestApproved, got.Status)
	assert.Equal(t, admin.ID, got.ReviewerID)
	require.NotNil(t, got.GrantedTokens)
	assert.Equal(t, int64(200_000), *got.GrantedTokens)
	require.NotNil(t, got.ReviewedAt)
	after, err := s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.NotNil(t, after.TokenBudget, "approval applies the grant")
	assert.Equal(t, int64(200_000), *after.TokenBudget)

	_, err = s.ReviewQuotaRequest(ctx, r1.ID, store.QuotaReview{ReviewerID: admin.ID, Approved: false, At: at})
	require.ErrorIs(t, err, store.ErrConflict, "a decided request stays decided")

	denied, err := s.ReviewQuotaRequest(ctx, r2.ID, store.QuotaReview{ReviewerID: admin.ID, Approved: false, Notes: "no", At: at})
	require.NoError(t, err)
	assert.Equal(t, store.QuotaRequestDenied, denied.Status)
	assert.Nil(t, denied.GrantedTokens)
	after, err = s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(200_000), *after.TokenBudget, "denial changes no budget")
	r3, err := s.CreateQuotaRequest(ctx, u.ID, 300_000, "third")
	require.NoError(t, err)
	got, err = s.ReviewQuotaRequest(ctx, r3.ID, store.QuotaReview{ReviewerID: admin.ID, Approved: true, At: at})
	require.NoError(t, err)
	require.NotNil(t, got.GrantedTokens)
	assert.Equal(t, int64(300_000), *got.GrantedTokens, "no grant given: the requested tokens are granted")
	after, err = s.GetUser(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(300_000), *after.TokenBudget)
	_, err = s.ReviewQuotaRequest(ctx, 424242, store.QuotaReview{At: at})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testSessions(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	u := seedUser(t, s, "browser", store.GroupFaculty)
	now := time.Now().Truncate(time.Microsecond)
	open := func(label string, lastSeen, expires time.Time) store.Session {
		ss, err := s.CreateSession(ctx, store.Session{UserID: u.ID, TokenSHA256: digest(label), CSRFToken: "csrf-" + label,
			Method: "password", ClientIP: "192.0.2.1", UserAgent: string(make([]byte, 300)), LastSeenAt: lastSeen, ExpiresAt: expires})
		require.NoError(t, err)
		return ss
	}
	a := open("a", now, now.Add(time.Hour))
	assert.Len(t, a.UserAgent, 255, "long user agents are cut to the column")
	open("b", now, now.Add(time.Hour))
	open("stale", now.Add(-2*time.Hour), now.Add(time.Hour))
	open("over", now, now.Add(-time.Second))

	rec, err := s.SessionByDigest(ctx, digest("a"))
	require.NoError(t, err)
	assert.Equal(t, "csrf-a", rec.Session.CSRFToken)
	assert.Equal(t, "browser", rec.User.Username)
	assert.Equal(t, store.GroupFaculty, rec.Group.Name)
	require.NoError(t, s.TouchSession(ctx, a.ID, now.Add(time.Minute)))
	rec, err = s.SessionByDigest(ctx, digest("a"))
	require.NoError(t, err)
	assert.True(t, now.Add(time.Minute).Equal(rec.Session.LastSeenAt))

	n, err := s.PruneSessions(ctx, now, now.Add(-time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the idle and the expired session go")

	n, err = s.DeleteUserSessions(ctx, u.ID, digest("a"))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "every session but the kept one ends")
	ok, err := s.DeleteSession(ctx, digest("a"))
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = s.DeleteSession(ctx, digest("a"))
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = s.SessionByDigest(ctx, digest("a"))
	require.ErrorIs(t, err, store.ErrNotFound)
}
