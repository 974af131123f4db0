package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
)

// batchCounter is the real store, counting the rows each purge statement took.
type batchCounter struct {
	*store.Store
	content, records []int
}

func (b *batchCounter) PurgeAuditContent(ctx context.Context, cutoff time.Time, n int) (int, error) {
	k, err := b.Store.PurgeAuditContent(ctx, cutoff, n)
	b.content = append(b.content, k)
	return k, err
}

func (b *batchCounter) PurgeAuditRecords(ctx context.Context, cutoff time.Time, n int) (int, error) {
	k, err := b.Store.PurgeAuditRecords(ctx, cutoff, n)
	b.records = append(b.records, k)
	return k, err
}

// retentionFixture is records of three ages, each age with a word of its own
// and an artifact only its records refer to, last seen when they arrived.
type retentionFixture struct {
	st   *store.Store
	arts map[string]string // age -> artifact hash
}

const (
	day          = 24 * time.Hour
	oldAge       = 100 * day // past the metadata retention of the tests
	midAge       = 20 * day  // past the content retention only
	newAge       = time.Hour
	contentRet   = 10 * day
	metadataRet  = 60 * day
	oldN, midN   = 7, 8
	newN         = 4
	purgeBatchSz = 3
)

var ageWords = map[string]string{"old": "walrus", "mid": "narwhal", "new": "ocelot"}

func newRetentionFixture(t *testing.T, st *store.Store) retentionFixture {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC()
	f := retentionFixture{st: st, arts: map[string]string{}}
	raw := storetest.SQL(t, st)
	for i, age := range []struct {
		name string
		ago  time.Duration
		n    int
	}{{"old", oldAge, oldN}, {"mid", midAge, midN}, {"new", newAge, newN}} {
		art := store.Artifact{SHA256: strings.Repeat(fmt.Sprintf("%02x", i+1), 32), ContentType: "image/png", SizeBytes: 1, Data: []byte{byte(i)}}
		f.arts[age.name] = art.SHA256
		var recs []store.AuditRecord
		for j := range age.n {
			recs = append(recs, store.AuditRecord{
				RequestID: fmt.Sprintf("%s-%d", age.name, j), CreatedAt: now.Add(-age.ago).Add(time.Duration(j) * time.Second),
				UserID: 1, Username: "alice", Group: "student", Surface: "openai", Endpoint: "/v1/chat/completions",
				Model: "m", Status: "completed", StatusCode: 200, PromptTokens: 11, CompletionTokens: 7,
				RequestJSON: `{"messages":[]}`, PromptText: "a question about the " + ageWords[age.name],
				ResponseText: "the " + ageWords[age.name] + " answer", Reasoning: "thinking", ToolCallsJSON: `[{"name":"f"}]`,
				ArtifactHashes: []string{art.SHA256},
			})
		}
		require.NoError(t, st.InsertAuditRecords(ctx, recs, []store.Artifact{art}))
		// The artifact was last seen when its records arrived, as ingest sets it.
		_, err := raw.ExecContext(ctx, "UPDATE audit_artifacts SET last_seen_at = ? WHERE sha256 = ?", now.Add(-age.ago), art.SHA256)
		require.NoError(t, err)
	}
	return f
}

// count is how many records match filter.
func (f retentionFixture) count(t *testing.T, filter store.AuditFilter) int {
	t.Helper()
	n, err := f.st.CountAuditRecords(t.Context(), filter)
	require.NoError(t, err)
	return n
}

// requireContent asserts that the records of age still hold their content
// (and are found by text), or hold only their metadata.
func (f retentionFixture) requireContent(t *testing.T, age string, n int, kept bool) {
	t.Helper()
	for j := range n {
		r, err := f.st.GetAuditRecord(t.Context(), fmt.Sprintf("%s-%d", age, j))
		require.NoError(t, err, "%s-%d keeps its metadata", age, j)
		assert.Equal(t, int64(11), r.PromptTokens)
		assert.Equal(t, "alice", r.Username)
		assert.Equal(t, []string{f.arts[age]}, r.ArtifactHashes)
		if kept {
			assert.False(t, r.ContentOmitted)
			assert.Contains(t, r.PromptText, ageWords[age])
			assert.NotEmpty(t, r.RequestJSON)
			continue
		}
		assert.True(t, r.ContentOmitted, "%s-%d", age, j)
		assert.Empty(t, r.RequestJSON+r.PromptText+r.ResponseText+r.Reasoning+r.ToolCallsJSON, "%s-%d", age, j)
	}
	want := 0
	if kept {
		want = n
	}
	assert.Equal(t, want, f.count(t, store.AuditFilter{Text: ageWords[age]}), "text search for the %s records", age)
}

// requireGone asserts the records of age are deleted, from search too.
func (f retentionFixture) requireGone(t *testing.T, age string, n int) {
	t.Helper()
	for j := range n {
		_, err := f.st.GetAuditRecord(t.Context(), fmt.Sprintf("%s-%d", age, j))
		require.ErrorIs(t, err, store.ErrNotFound, "%s-%d", age, j)
	}
	assert.Zero(t, f.count(t, store.AuditFilter{Text: ageWords[age]}), "text search for the deleted %s records", age)
}

// artifacts is which of the fixture's artifacts remain, by age.
func (f retentionFixture) artifacts(t *testing.T) []string {
	t.Helper()
	var left []string
	for _, age := range []string{"old", "mid", "new"} {
		arts, err := f.st.GetArtifacts(t.Context(), []string{f.arts[age]}, false)
		require.NoError(t, err)
		if len(arts) == 1 {
			left = append(left, age)
		}
	}
	return left
}

// purgeActions are the retention.purge admin actions, newest first, with
// their detail decoded.
func purgeActions(t *testing.T, st *store.Store) ([]store.AdminAction, []map[string]any) {
	t.Helper()
	acts, _, err := st.SearchAdminActions(t.Context(), store.AdminActionFilter{Action: "retention.purge"}, "", 10)
	require.NoError(t, err)
	details := make([]map[string]any, len(acts))
	for i, a := range acts {
		require.NoError(t, json.Unmarshal([]byte(a.Detail), &details[i]), a.Detail)
	}
	return acts, details
}

func TestRetentionPurgesContentThenRecordsInBatchesAndRecordsThePass(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newRetentionFixture(t, st)
		db := &batchCounter{Store: st}
		ret := NewRetention(db, RetentionOptions{Content: contentRet, Metadata: metadataRet, Batch: purgeBatchSz})

		res, err := ret.Purge(t.Context(), store.Actor{Username: "system"})
		require.NoError(t, err)
		// Content goes first, from the old and the middle records alike.
		assert.Equal(t, PurgeResult{Content: oldN + midN, Records: oldN, Artifacts: 2}, res)
		assert.Equal(t, []int{3, 3, 3, 3, 3, 0}, db.content, "content in statements of at most one batch, until one comes back short")
		assert.Equal(t, []int{3, 3, 1}, db.records, "records in statements of at most one batch")

		f.requireGone(t, "old", oldN)
		f.requireContent(t, "mid", midN, false)
		f.requireContent(t, "new", newN, true)
		assert.Equal(t, midN+newN, f.count(t, store.AuditFilter{}))
		assert.Equal(t, []string{"new"}, f.artifacts(t), "artifacts last seen before the content retention are deleted")

		acts, details := purgeActions(t, st)
		require.Len(t, acts, 1)
		assert.Equal(t, "system", acts[0].Actor)
		assert.Equal(t, "audit_record", acts[0].EntityType)
		assert.Equal(t, map[string]any{"content_purged": float64(oldN + midN), "records_deleted": float64(oldN),
			"artifacts_deleted": float64(2), "content_retention": contentRet.String(), "metadata_retention": metadataRet.String()}, details[0])

		// A second automatic pass finds nothing and records nothing; an
		// admin's records even an empty pass, as theirs.
		res, err = ret.Purge(t.Context(), store.Actor{Username: "system"})
		require.NoError(t, err)
		assert.Zero(t, res)
		acts, _ = purgeActions(t, st)
		assert.Len(t, acts, 1)
		res, err = ret.Purge(t.Context(), store.Actor{UserID: 9, Username: "root", ClientIP: "192.0.2.9"})
		require.NoError(t, err)
		assert.Zero(t, res)
		acts, details = purgeActions(t, st)
		require.Len(t, acts, 2)
		assert.Equal(t, int64(9), acts[0].ActorUserID)
		assert.Equal(t, "192.0.2.9", acts[0].ClientIP)
		assert.Equal(t, float64(0), details[0]["content_purged"])
		f.requireContent(t, "new", newN, true)
	})
}

func TestRetentionZeroKeepsForever(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newRetentionFixture(t, st)
		res, err := NewRetention(st, RetentionOptions{Batch: purgeBatchSz}).Purge(t.Context(), store.Actor{Username: "system"})
		require.NoError(t, err)
		assert.Zero(t, res)
		f.requireContent(t, "old", oldN, true)
		f.requireContent(t, "mid", midN, true)
		f.requireContent(t, "new", newN, true)
		assert.Equal(t, []string{"old", "mid", "new"}, f.artifacts(t))
		acts, _ := purgeActions(t, st)
		assert.Empty(t, acts, "a pass that purged nothing is not recorded")

		// Metadata retention alone: the old records go, with the artifacts
		// only they referred to; the rest keep their content.
		res, err = NewRetention(st, RetentionOptions{Metadata: metadataRet, Batch: purgeBatchSz}).Purge(t.Context(), store.Actor{Username: "system"})
		require.NoError(t, err)
		assert.Equal(t, PurgeResult{Records: oldN, Artifacts: 1}, res)
		f.requireGone(t, "old", oldN)
		f.requireContent(t, "mid", midN, true)
		f.requireContent(t, "new", newN, true)
		assert.Equal(t, []string{"mid", "new"}, f.artifacts(t))

		// Content retention alone: content goes, every record stays.
		res, err = NewRetention(st, RetentionOptions{Content: contentRet, Batch: purgeBatchSz}).Purge(t.Context(), store.Actor{Username: "system"})
		require.NoError(t, err)
		assert.Equal(t, PurgeResult{Content: midN, Artifacts: 1}, res)
		f.requireContent(t, "mid", midN, false)
		f.requireContent(t, "new", newN, true)
		assert.Equal(t, []string{"new"}, f.artifacts(t))
	})
}
