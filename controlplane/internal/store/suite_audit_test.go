package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func auditRec(i int, at time.Time) store.AuditRecord {
	return store.AuditRecord{
		RequestID: fmt.Sprintf("req-%04d", i), CreatedAt: at, UserID: int64(1 + i%3), Username: fmt.Sprintf("u%d", 1+i%3),
		Group: "student", Surface: []string{"openai", "ollama", "anthropic"}[i%3], Endpoint: "/v1/chat/completions",
		Model: "m" + fmt.Sprint(i%2), BackendIDs: []int64{7, int64(8 + i%2)}, Status: "completed", StatusCode: 200,
		PromptText: fmt.Sprintf("prompt number %d about zebras", i), ResponseText: "answer " + fmt.Sprint(i),
		RequestJSON: `{"messages":[]}`, PromptTokens: int64(i), CompletionTokens: 2 * int64(i), TotalMS: 5,
	}
}

func testAuditRecords(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var recs []store.AuditRecord
	for i := range 25 {
		recs = append(recs, auditRec(i, base.Add(time.Duration(i)*time.Minute)))
	}
	recs[3].PromptText = "the Quokka question"
	recs[4].ContentOmitted = true
	recs[17].ResponseText = "an answer that mentions a platypus"
	art := store.Artifact{SHA256: strings.Repeat("ab", 32), ContentType: "image/png", SizeBytes: 3, Data: []byte{1, 2, 3}}
	recs[5].ArtifactHashes = []string{art.SHA256}
	require.NoError(t, s.InsertAuditRecords(ctx, recs[:10], []store.Artifact{art}))
	// The same batch again, overlapping the next one: nothing is stored twice.
	require.NoError(t, s.InsertAuditRecords(ctx, recs, []store.Artifact{art}))
	n, err := s.CountAuditRecords(ctx, store.AuditFilter{})
	require.NoError(t, err)
	assert.Equal(t, 25, n)

	got, err := s.GetAuditRecord(ctx, "req-0005")
	require.NoError(t, err)
	assert.Equal(t, recs[5].PromptText, got.PromptText)
	assert.Equal(t, []int64{7, 9}, got.BackendIDs)
	assert.Equal(t, int64(10), got.CompletionTokens)
	assert.Equal(t, []string{art.SHA256}, got.ArtifactHashes)
	arts, err := s.GetArtifacts(ctx, got.ArtifactHashes, true)
	require.NoError(t, err)
	require.Len(t, arts, 1)
	assert.Equal(t, []byte{1, 2, 3}, arts[0].Data)
	omitted, err := s.GetAuditRecord(ctx, "req-0004")
	require.NoError(t, err)
	assert.True(t, omitted.ContentOmitted)
	assert.Empty(t, omitted.PromptText)
	_, err = s.GetAuditRecord(ctx, "nope")
	require.ErrorIs(t, err, store.ErrNotFound)

	// Pages of 10, newest first, with a stable cursor: a record stored while
	// paging does not shift later pages.
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		rows, next, err := s.SearchAuditRecords(ctx, store.AuditFilter{}, cursor, 10)
		require.NoError(t, err)
		for _, r := range rows {
			seen = append(seen, r.RequestID)
			assert.Empty(t, r.PromptText, "search results carry no content")
		}
		if page == 0 {
			require.NoError(t, s.InsertAuditRecords(ctx, []store.AuditRecord{auditRec(99, base)}, nil))
		}
		if next == "" {
			break
		}
		cursor = next
	}
	require.Len(t, seen, 25)
	assert.Equal(t, "req-0024", seen[0])
	assert.Equal(t, "req-0000", seen[24])

	cases := []struct {
		name string
		f    store.AuditFilter
		want int
	}{
		{"user", store.AuditFilter{UserID: 1}, 9 + 1},
		{"user and range", store.AuditFilter{UserID: 1, Start: base.Add(3 * time.Minute), End: base.Add(10 * time.Minute)}, 3},
		{"surface", store.AuditFilter{Surface: "ollama"}, 8},
		{"backend answered", store.AuditFilter{BackendID: 9}, 12 + 1},
		{"model", store.AuditFilter{Model: "m1"}, 13},
		{"text two words", store.AuditFilter{Text: "zebras number"}, 24},
		{"text exact", store.AuditFilter{Text: "Quokka"}, 1},
		{"text in response", store.AuditFilter{Text: "platypus"}, 1},
		{"text operators are words", store.AuditFilter{Text: `zebras" OR "x`}, 0},
	}
	for _, tc := range cases {
		n, err := s.CountAuditRecords(ctx, tc.f)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, n, tc.name)
	}
	_, _, err = s.SearchAuditRecords(ctx, store.AuditFilter{}, "garbage!", 10)
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = s.CountAuditRecords(ctx, store.AuditFilter{Text: "!!"})
	require.ErrorIs(t, err, store.ErrInvalid)

	var exported []string
	require.NoError(t, s.ExportAuditRecords(ctx, store.AuditFilter{Surface: "anthropic"}, true, func(r store.AuditRecord) error {
		exported = append(exported, r.RequestID)
		return nil
	}))
	assert.Len(t, exported, 8)
	assert.Equal(t, "req-0002", exported[0])

	// Content retention keeps the metadata; metadata retention deletes rows.
	purged, err := s.PurgeAuditContent(ctx, base.Add(10*time.Minute), 4)
	require.NoError(t, err)
	assert.Equal(t, 4, purged)
	for purged > 0 {
		purged, err = s.PurgeAuditContent(ctx, base.Add(10*time.Minute), 4)
		require.NoError(t, err)
	}
	r1, err := s.GetAuditRecord(ctx, "req-0001")
	require.NoError(t, err)
	assert.True(t, r1.ContentOmitted)
	assert.Empty(t, r1.PromptText)
	assert.Equal(t, int64(2), r1.CompletionTokens)
	n, err = s.CountAuditRecords(ctx, store.AuditFilter{Text: "zebras"})
	require.NoError(t, err)
	assert.Equal(t, 15, n, "purged content leaves the full-text index: req-0010..0024 remain")
	deleted, err := s.PurgeAuditRecords(ctx, base.Add(5*time.Minute), 100)
	require.NoError(t, err)
	assert.Equal(t, 6, deleted, "req-0000..0004 and req-0099")
	n, err = s.CountAuditRecords(ctx, store.AuditFilter{})
	require.NoError(t, err)
	assert.Equal(t, 20, n)
	gone, err := s.PurgeAuditArtifacts(ctx, time.Now().Add(time.Hour), 10)
	require.NoError(t, err)
	assert.Equal(t, 1, gone)
}

func testAdminActions(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	g, err := s.GetGroupByName(ctx, store.GroupStudent)
	require.NoError(t, err)
	actor := store.Actor{UserID: 42, Username: "root", ClientIP: "192.0.2.7"}
	budget := int64(777)
	err = s.RunAudited(ctx, actor, "/mindrouter.admin.v1.IdentityService/UpdateGroup", func(ctx context.Context) error {
		_, err := s.UpdateGroup(ctx, g.ID, store.GroupPatch{TokenBudget: &budget})
		return err
	})
	require.NoError(t, err)
	acts, _, err := s.SearchAdminActions(ctx, store.AdminActionFilter{Action: "group."}, "", 10)
	require.NoError(t, err)
	require.Len(t, acts, 1)
	a := acts[0]
	assert.Equal(t, "group.update", a.Action)
	assert.Equal(t, fmt.Sprint(g.ID), a.EntityID)
	assert.Equal(t, int64(42), a.ActorUserID)
	assert.Equal(t, "192.0.2.7", a.ClientIP)
	assert.Contains(t, a.BeforeJSON, fmt.Sprintf(`"token_budget":%d`, g.TokenBudget))
	assert.Contains(t, a.AfterJSON, `"token_budget":777`)
	assert.Equal(t, "/mindrouter.admin.v1.IdentityService/UpdateGroup", a.Detail)

	// A failing call rolls back its change and its record together.
	boom := errors.New("boom")
	other := int64(5)
	err = s.RunAudited(ctx, actor, "/x.v1.S/M", func(ctx context.Context) error {
		if _, err := s.UpdateGroup(ctx, g.ID, store.GroupPatch{TokenBudget: &other}); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	g2, err := s.GetGroup(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(777), g2.TokenBudget)

	// Secrets never reach the log; a call that changes nothing is still recorded.
	u := seedUser(t, s, "carol", store.GroupStudent)
	err = s.RunAudited(ctx, actor, "/mindrouter.admin.v1.IdentityService/CreateAPIKey", func(ctx context.Context) error {
		_, err := s.CreateAPIKey(ctx, store.APIKeySpec{UserID: u.ID, Name: "k", Prefix: "mr2_abcdefgh",
			SHA256: digest("secretdigest"), Hash: "$argon2id$secret", Scopes: []string{"inference"}})
		return err
	})
	require.NoError(t, err)
	err = s.RunAudited(ctx, actor, "/mindrouter.admin.v1.RegistryService/DrainBackend", func(context.Context) error { return nil })
	require.NoError(t, err)
	all, _, err := s.SearchAdminActions(ctx, store.AdminActionFilter{ActorUserID: 42}, "", 100)
	require.NoError(t, err)
	var names []string
	for _, a := range all {
		names = append(names, a.Action)
		assert.NotContains(t, a.AfterJSON, "argon2id")
		assert.NotContains(t, a.AfterJSON, digest("secretdigest"))
	}
	assert.Contains(t, names, "api_key.create")
	assert.Contains(t, names, "registry.drain_backend")
	assert.Equal(t, "registry.drain_backend", names[0], "newest first")
}
