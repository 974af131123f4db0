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

	// Pages of 10, newest first.
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		rows, next, err := s.SearchAuditRecords(ctx, store.AuditFilter{}, cursor, 10)
		require.NoError(t, err)
		for _, r := range rows {
			seen = append(seen, r.RequestID)
			assert.Empty(t, r.PromptText, "search results carry no content")
		}
		if next == "" {
			break
		}
		cursor = next
	}
	require.Len(t, seen, 25)
	assert.Equal(t, "req-0024", seen[0])
	assert.Equal(t, "req-0000", seen[24])
	// A late record (replayed from a spool) with an old time.
	require.NoError(t, s.InsertAuditRecords(ctx, []store.AuditRecord{auditRec(99, base)}, nil))

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

// testAuditPaging: pages newest first by time, then by row id among records of
// one instant; a record stored while paging, newer than the first page, does
// not shift later pages; a malformed cursor is refused.
func testAuditPaging(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var recs []store.AuditRecord
	for i := range 12 {
		at := base.Add(time.Duration(i/3) * time.Second) // three records per instant
		recs = append(recs, auditRec(i, at))
	}
	// Stored out of time order, as several replicas' batches are.
	require.NoError(t, s.InsertAuditRecords(ctx, recs[6:], nil))
	require.NoError(t, s.InsertAuditRecords(ctx, recs[:6], nil))
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		rows, next, err := s.SearchAuditRecords(ctx, store.AuditFilter{}, cursor, 5)
		require.NoError(t, err)
		for _, r := range rows {
			seen = append(seen, r.RequestID)
		}
		if page == 0 {
			require.NoError(t, s.InsertAuditRecords(ctx, []store.AuditRecord{auditRec(99, base.Add(time.Hour))}, nil))
		}
		if next == "" {
			break
		}
		cursor = next
	}
	assert.Equal(t, []string{"req-0011", "req-0010", "req-0009", "req-0008", "req-0007", "req-0006",
		"req-0005", "req-0004", "req-0003", "req-0002", "req-0001", "req-0000"}, seen)
	_, _, err := s.SearchAuditRecords(ctx, store.AuditFilter{}, "bm90IGEgY3Vyc29y", 2)
	require.ErrorIs(t, err, store.ErrInvalid)
}

// testAuditIngest checks the bulk write path (multi-row statements on both
// databases) on what the ingest stream sends: duplicates inside one batch and
// across batches, every field round-tripped, and a batch with a bad record.
// testAuditIngestLargeRows splits the statements.
func testAuditIngest(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	valid, invalid := true, false
	art := store.Artifact{SHA256: strings.Repeat("cd", 32), ContentType: "image/jpeg", SizeBytes: 4, Data: []byte{9, 8, 7, 6}}
	big := store.Artifact{SHA256: strings.Repeat("ef", 32), ContentType: "image/png", SizeBytes: 1 << 20, Truncated: true}
	var recs []store.AuditRecord
	for i := range 300 {
		r := auditRec(10_000+i, base.Add(time.Duration(i)*time.Second))
		r.Reasoning, r.ToolCallsJSON, r.Error = "thought "+fmt.Sprint(i), `[{"id":"c"}]`, "e"
		r.StructuredOutputValid = []*bool{nil, &valid, &invalid}[i%3]
		r.TokensEstimated, r.Streaming = i%2 == 0, i%5 == 0
		r.ClientIP, r.UserAgent, r.ReplicaID, r.APIKeyID = "10.0.0.9", "ua", "dp-x", 42
		r.QueueWaitMS, r.TTFTMS, r.FinishReason = 3, 4, "stop"
		if i%50 == 7 {
			r.ArtifactHashes = []string{art.SHA256, big.SHA256}
		}
		recs = append(recs, r)
	}
	// The same request id twice in one batch: the first is kept.
	dup := recs[249]
	dup.PromptText = "a second copy"
	batch := append(append([]store.AuditRecord{}, recs[:250]...), dup)
	require.NoError(t, s.InsertAuditRecords(ctx, batch, []store.Artifact{art, big, art}))
	// Across batches: the whole batch again, overlapping the rest.
	require.NoError(t, s.InsertAuditRecords(ctx, recs[200:], []store.Artifact{art}))
	require.NoError(t, s.InsertAuditRecords(ctx, recs, nil))
	n, err := s.CountAuditRecords(ctx, store.AuditFilter{})
	require.NoError(t, err)
	assert.Equal(t, 300, n)

	for _, i := range []int{0, 1, 2, 150, 207, 249, 250, 299} {
		got, err := s.GetAuditRecord(ctx, recs[i].RequestID)
		require.NoError(t, err)
		want := recs[i]
		want.ID, want.StoredAt = got.ID, got.StoredAt
		assert.False(t, got.StoredAt.IsZero())
		assert.Equal(t, want, got, "record %d round-trips", i)
	}
	got, err := s.GetArtifacts(ctx, []string{art.SHA256, big.SHA256}, true)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, art, got[0])
	assert.Equal(t, big, got[1], "a truncated artifact keeps no bytes")

	// A bad record fails its whole batch: nothing of it is stored.
	bad := []store.AuditRecord{auditRec(20_000, base), auditRec(20_001, base), auditRec(20_002, base)}
	bad[1].RequestID = strings.Repeat("x", 129)
	require.ErrorIs(t, s.InsertAuditRecords(ctx, bad, nil), store.ErrInvalid)
	bad[1].RequestID = ""
	require.ErrorIs(t, s.InsertAuditRecords(ctx, bad, nil), store.ErrInvalid)
	require.ErrorIs(t, s.InsertAuditRecords(ctx, bad[:1], []store.Artifact{{SHA256: ""}}), store.ErrInvalid)
	_, err = s.GetAuditRecord(ctx, bad[0].RequestID)
	require.ErrorIs(t, err, store.ErrNotFound, "the batch's valid records were rolled back with it")
	require.NoError(t, s.InsertAuditRecords(ctx, []store.AuditRecord{bad[0], bad[2]}, nil), "its good records can be sent again")
	n, err = s.CountAuditRecords(ctx, store.AuditFilter{})
	require.NoError(t, err)
	assert.Equal(t, 302, n)
}

// testAuditIngestLargeRows writes batches that take several statements (more
// than 1,000 rows, the MariaDB limit, and more than 500, SQLite's, whose
// statements take at most 32,766 parameters; rows larger than one statement's
// 4 MiB together) and checks that every row arrives whole, once.
func testAuditIngestLargeRows(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	base := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	var recs []store.AuditRecord
	for i := range 40 {
		r := auditRec(30_000+i, base.Add(time.Duration(i)*time.Second))
		if i%5 == 0 {
			// 700 KB in the request body (no text index reads it): 8 of them
			// are more than one statement's 4 MiB.
			r.RequestJSON = `{"x":"` + strings.Repeat(fmt.Sprint(i%10), 700<<10) + `"}`
			r.PromptText = fmt.Sprintf("large %d walrus", i)
		}
		recs = append(recs, r)
	}
	require.NoError(t, s.InsertAuditRecords(ctx, recs, nil))
	require.NoError(t, s.InsertAuditRecords(ctx, recs, nil), "again: nothing changes")
	var many []store.AuditRecord
	for i := range 1001 {
		many = append(many, auditRec(40_000+i, base.Add(time.Duration(i)*time.Millisecond)))
	}
	require.NoError(t, s.InsertAuditRecords(ctx, many, nil))
	require.NoError(t, s.InsertAuditRecords(ctx, many[500:], nil))
	n, err := s.CountAuditRecords(ctx, store.AuditFilter{})
	require.NoError(t, err)
	assert.Equal(t, 40+1001, n)
	last, err := s.GetAuditRecord(ctx, many[1000].RequestID)
	require.NoError(t, err)
	assert.Equal(t, many[1000].PromptText, last.PromptText, "the 1,001st row, in a statement of its own (the third on SQLite)")
	for _, i := range []int{0, 5, 35, 39} {
		got, err := s.GetAuditRecord(ctx, recs[i].RequestID)
		require.NoError(t, err)
		assert.Equal(t, recs[i].RequestJSON, got.RequestJSON, "record %d whole", i)
	}
	n, err = s.CountAuditRecords(ctx, store.AuditFilter{Text: "walrus"})
	require.NoError(t, err)
	assert.Equal(t, 8, n)
}
