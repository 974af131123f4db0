package audit

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
	"github.com/mindrouter/mindrouter/spool"
)

// switchableStore is the real store behind a switch that makes it unreachable.
type switchableStore struct {
	*store.Store
	down atomic.Bool
}

func (s *switchableStore) InsertAuditRecords(ctx context.Context, recs []store.AuditRecord, arts []store.Artifact) error {
	if s.down.Load() {
		return fmt.Errorf("insert: %w", store.Unavailable(context.DeadlineExceeded))
	}
	return s.Store.InsertAuditRecords(ctx, recs, arts)
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", DSN: store.SQLiteDSN(filepath.Join(t.TempDir(), "a.db"))}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func batch(seq uint64, from, n int, group string) *controlplanev1.IngestRequest {
	b := &controlplanev1.IngestRequest{Seq: seq, ReplicaId: "dp-1"}
	for i := from; i < from+n; i++ {
		b.Records = append(b.Records, &auditv1.Record{
			RequestId: fmt.Sprintf("r-%05d", i), CreatedAt: timestamppb.Now(), UserId: 1, Username: "alice", Group: group,
			Surface: "openai", Model: "m", Status: "completed", StatusCode: 200, PromptText: fmt.Sprintf("prompt %d", i),
			ResponseText: "resp", PromptTokens: int64(i), CompletionTokens: 1,
		})
	}
	return b
}

func TestWriterSpoolsWhileDatabaseIsDownAndReplaysInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &switchableStore{Store: openStore(t)}
	spool, err := spool.Open(t.TempDir(), 0)
	require.NoError(t, err)
	w := NewWriter(st, spool, WriterOptions{Logger: slog.New(slog.DiscardHandler)})

	require.NoError(t, w.Write(ctx, batch(1, 0, 10, "student")))
	st.down.Store(true)
	require.NoError(t, w.Write(ctx, batch(2, 10, 10, "student")), "acknowledged from the spool")
	require.NoError(t, w.Write(ctx, batch(3, 15, 10, "student")), "overlapping re-send")
	n, _ := spool.Len()
	assert.Equal(t, 2, n)
	require.Error(t, w.Replay(ctx), "database still down")
	st.down.Store(false)
	// Written while the spool is not empty: it queues behind the spool.
	require.NoError(t, w.Write(ctx, batch(4, 25, 5, "student")))
	require.NoError(t, w.Replay(ctx))
	n, _ = spool.Len()
	assert.Equal(t, 0, n)
	count, err := st.CountAuditRecords(ctx, store.AuditFilter{})
	require.NoError(t, err)
	assert.Equal(t, 30, count, "every record once")
	// Stored in the order acknowledged: ids increase with request ids.
	var ids []string
	require.NoError(t, st.ExportAuditRecords(ctx, store.AuditFilter{}, false, func(r store.AuditRecord) error {
		ids = append(ids, r.RequestID)
		return nil
	}))
	for i, id := range ids {
		assert.Equal(t, fmt.Sprintf("r-%05d", i), id)
	}
}

func TestWriterAppliesGroupSettingsAndArtifactCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	g, err := st.GetGroupByName(ctx, store.GroupStaff)
	require.NoError(t, err)
	off := false
	_, err = st.UpdateGroup(ctx, g.ID, store.GroupPatch{AuditPrompts: &off})
	require.NoError(t, err)
	spool, err := spool.Open(t.TempDir(), 0)
	require.NoError(t, err)
	w := NewWriter(st, spool, WriterOptions{ArtifactMaxBytes: 4})

	small, big := "aa"+fmt.Sprintf("%062d", 0), "bb"+fmt.Sprintf("%062d", 0)
	b := batch(1, 0, 2, "student")
	b.Records[0].ArtifactHashes = []string{small, big}
	b.Artifacts = []*auditv1.Artifact{
		{Sha256: small, ContentType: "image/png", SizeBytes: 3, Data: []byte{1, 2, 3}},
		{Sha256: big, ContentType: "image/png", SizeBytes: 5, Data: []byte{1, 2, 3, 4, 5}},
	}
	staff := batch(2, 2, 1, store.GroupStaff)
	staff.Records[0].ArtifactHashes = []string{"cc" + fmt.Sprintf("%062d", 0)}
	staff.Artifacts = []*auditv1.Artifact{{Sha256: staff.Records[0].ArtifactHashes[0], Data: []byte{9}}}
	require.NoError(t, w.Write(ctx, b))
	require.NoError(t, w.Write(ctx, staff))

	arts, err := st.GetArtifacts(ctx, []string{small, big, staff.Records[0].ArtifactHashes[0]}, true)
	require.NoError(t, err)
	require.Len(t, arts, 2, "the staff member's image is not kept")
	assert.Equal(t, []byte{1, 2, 3}, arts[0].Data)
	assert.Nil(t, arts[1].Data)
	assert.True(t, arts[1].Truncated)
	assert.Equal(t, int64(5), arts[1].SizeBytes)

	r, err := st.GetAuditRecord(ctx, "r-00002")
	require.NoError(t, err)
	assert.Empty(t, r.PromptText, "staff prompts are off")
	assert.Equal(t, "resp", r.ResponseText, "staff responses are kept")
	assert.Equal(t, int64(2), r.PromptTokens, "metadata is kept")
}

func TestReplayDropsUnreadableBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	spool, err := spool.Open(t.TempDir(), 0)
	require.NoError(t, err)
	require.NoError(t, spool.Append([]byte{0xff, 0xff, 0xff}))
	good, err := proto.Marshal(batch(1, 0, 3, ""))
	require.NoError(t, err)
	require.NoError(t, spool.Append(good))
	w := NewWriter(st, spool, WriterOptions{ReplayInterval: 10 * time.Millisecond})
	require.NoError(t, w.Replay(ctx))
	n, err := st.CountAuditRecords(ctx, store.AuditFilter{})
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}

// FuzzIngestBatch feeds arbitrary bytes through what the control plane does
// with a batch off the wire or out of its spool: decode, validate, convert.
func FuzzIngestBatch(f *testing.F) {
	seed, _ := proto.Marshal(batch(7, 0, 2, "student"))
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0x1a, 0x03, 0x0a, 0x01, 0x78})
	f.Fuzz(func(t *testing.T, data []byte) {
		b := &controlplanev1.IngestRequest{}
		if err := proto.Unmarshal(data, b); err != nil {
			return
		}
		if validBatch(b) != nil {
			return
		}
		for _, r := range b.GetRecords() {
			rec := recordFromProto(r, b.GetReplicaId())
			if rec.RequestID == "" {
				t.Fatal("a valid batch's record has a request id")
			}
			_ = recordToProto(rec)
		}
	})
}

// TestWriterIdempotentOnBothDrivers sends what a data plane's retries and
// spools produce through the writer into real SQLite and MariaDB: a request
// id twice in one batch, overlapping batches, a batch the database refuses
// (a request id too long: it fails whole, nothing of it stored, nothing
// acknowledged) and a spooled batch replayed over records already stored.
// Every request id ends up stored exactly once.
func TestWriterIdempotentOnBothDrivers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		open func(testing.TB) *store.Store
	}{
		{"sqlite", openStore},
		{"mariadb", benchMariaDB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := &switchableStore{Store: tc.open(t)}
			sp, err := spool.Open(t.TempDir(), 0)
			require.NoError(t, err)
			w := NewWriter(st, sp, WriterOptions{})

			a := batch(1, 0, 300, "student")
			twice := proto.Clone(a.Records[5]).(*auditv1.Record)
			twice.PromptText = "second copy"
			a.Records = append(a.Records, twice)
			require.NoError(t, w.Write(ctx, a))
			require.NoError(t, w.Write(ctx, batch(2, 150, 300, "student")), "overlapping re-send")
			bad := batch(3, 450, 10, "student")
			bad.Records[4].RequestId = strings.Repeat("x", 200)
			require.ErrorIs(t, w.Write(ctx, bad), store.ErrInvalid)
			n, err := st.CountAuditRecords(ctx, store.AuditFilter{})
			require.NoError(t, err)
			assert.Equal(t, 450, n, "nothing of the refused batch")
			_, err = st.GetAuditRecord(ctx, "r-00450")
			require.ErrorIs(t, err, store.ErrNotFound)

			st.down.Store(true)
			require.NoError(t, w.Write(ctx, batch(4, 440, 60, "student")), "acknowledged from the spool")
			st.down.Store(false)
			require.NoError(t, w.Replay(ctx))
			left, _ := sp.Len()
			assert.Zero(t, left)
			require.NoError(t, w.Write(ctx, batch(5, 0, 500, "student")), "everything again")
			n, err = st.CountAuditRecords(ctx, store.AuditFilter{})
			require.NoError(t, err)
			assert.Equal(t, 500, n)
			r5, err := st.GetAuditRecord(ctx, "r-00005")
			require.NoError(t, err)
			assert.Equal(t, "prompt 5", r5.PromptText, "the first copy is kept")
		})
	}
}
