package audit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
	"github.com/mindrouter/mindrouter/spool"
)

func TestEntryBuildsTheRecord(t *testing.T) {
	t.Parallel()
	img := []byte("\x89PNG fake image bytes")
	sum := sha256.Sum256(img)
	hash := hex.EncodeToString(sum[:])
	req := &canonical.Request{Model: "m", Stream: true, Messages: []canonical.Message{
		{Role: canonical.RoleUser, Content: []canonical.Part{
			{Type: canonical.PartText, Text: "what is in"},
			{Type: canonical.PartImage, Image: &canonical.Image{MediaType: "image/png", Data: base64.StdEncoding.EncodeToString(img)}},
			{Type: canonical.PartText, Text: "this picture"},
		}},
	}}
	begin := time.Now()
	e := NewEntry(begin, "192.0.2.1", "sdk/1", nil)
	require.False(t, e.Started())
	e.Start("req-1", "/v1/messages", SurfaceOf("/v1/messages"))
	e.Request("m", true, req)
	e.Attempted(Attempt{BackendID: 3, UserID: 9, Username: "u", APIKeyID: 4, Group: "staff", Queued: 20 * time.Millisecond})
	e.Attempted(Attempt{BackendID: 5, UserID: 9, Username: "u", APIKeyID: 4, Group: "staff", TTFT: 30 * time.Millisecond,
		Usage: canonical.Usage{Prompt: 11, Completion: 2}, Succeeded: true})
	e.Chunk(canonical.Chunk{Role: canonical.RoleAssistant, Content: "a ", Reasoning: "hm"})
	e.Chunk(canonical.Chunk{Content: "cat", FinishReason: canonical.FinishStop})
	rec, arts := e.Finish(200, begin.Add(100*time.Millisecond), true)

	assert.Equal(t, "req-1", rec.GetRequestId())
	assert.Equal(t, "anthropic", rec.GetSurface())
	assert.Equal(t, []int64{3, 5}, rec.GetBackendIds())
	assert.Equal(t, "staff", rec.GetGroup())
	assert.Equal(t, int64(11), rec.GetPromptTokens())
	assert.Equal(t, int64(2), rec.GetCompletionTokens())
	assert.Equal(t, int64(20), rec.GetQueueWaitMs())
	assert.Equal(t, int64(30), rec.GetTtftMs())
	assert.Equal(t, int64(100), rec.GetTotalMs())
	assert.Equal(t, "completed", rec.GetStatus())
	assert.Equal(t, "a cat", rec.GetResponseText())
	assert.Equal(t, "hm", rec.GetReasoning())
	assert.Equal(t, "stop", rec.GetFinishReason())
	assert.Equal(t, "what is in\nthis picture", rec.GetPromptText())
	assert.True(t, rec.GetStreaming())
	require.Len(t, arts, 1)
	assert.Equal(t, hash, arts[0].GetSha256())
	assert.Equal(t, img, arts[0].GetData())
	assert.Equal(t, []string{hash}, rec.GetArtifactHashes())
	assert.Contains(t, rec.GetRequestJson(), "sha256:"+hash)
	assert.NotContains(t, rec.GetRequestJson(), base64.StdEncoding.EncodeToString(img), "image bytes live in the artifact only")
	assert.Equal(t, base64.StdEncoding.EncodeToString(img), req.Messages[0].Content[1].Image.Data, "the request itself is untouched")
}

func TestEntryRecordsFailuresAndMetadataOnly(t *testing.T) {
	t.Parallel()
	e := NewEntry(time.Now(), "", "", nil)
	e.Start("req-2", "/api/chat", SurfaceOf("/api/chat"))
	e.Request("m", false, &canonical.Request{Messages: []canonical.Message{{Role: canonical.RoleUser, Content: []canonical.Part{{Type: canonical.PartText, Text: "secret"}}}}})
	e.Failed(&canonical.Error{Kind: canonical.KindNotFound, Message: "model not found"})
	rec, arts := e.Finish(404, time.Now(), false)
	assert.Equal(t, "ollama", rec.GetSurface())
	assert.Equal(t, "failed", rec.GetStatus())
	assert.Equal(t, "model not found", rec.GetError())
	assert.True(t, rec.GetContentOmitted())
	assert.Empty(t, rec.GetPromptText())
	assert.Empty(t, arts)

	var nilEntry *Entry
	nilEntry.Start("x", "/v1/chat/completions", "openai")
	require.NoError(t, nilEntry.Admit())
	assert.False(t, nilEntry.Started())
}

// fakeCP acknowledges batches while up and remembers the request ids it got.
type fakeCP struct {
	mu   sync.Mutex
	down bool
	ids  []string
}

func (f *fakeCP) SendAudit(_ context.Context, b *auditv1.Batch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("unavailable")
	}
	for _, r := range b.GetRecords() {
		f.ids = append(f.ids, r.GetRequestId())
	}
	return nil
}

func (f *fakeCP) set(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

func (f *fakeCP) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ids...)
}

func rec(id string) *auditv1.Record {
	return &auditv1.Record{RequestId: id, PromptText: "some prompt text to take room"}
}

func TestShipperSpoolsWhileTheControlPlaneIsAwayAndReplays(t *testing.T) {
	t.Parallel()
	cp := &fakeCP{down: true}
	spool, err := spool.Open(t.TempDir(), 1<<20)
	require.NoError(t, err)
	s := NewShipper(cp, spool, Options{FlushInterval: 5 * time.Millisecond, RetryInterval: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	for _, id := range []string{"a", "b", "c"} {
		s.Submit(rec(id), nil)
	}
	require.Eventually(t, func() bool { _, n := s.Pending(); return n > 0 }, 5*time.Second, 5*time.Millisecond, "spooled")
	cp.set(false)
	require.Eventually(t, func() bool { return len(cp.received()) == 3 }, 5*time.Second, 5*time.Millisecond)
	s.Submit(rec("d"), nil)
	require.Eventually(t, func() bool { return len(cp.received()) == 4 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	<-done
	assert.ElementsMatch(t, []string{"a", "b", "c", "d"}, cp.received())
	mem, spooled := s.Pending()
	assert.Zero(t, mem)
	assert.Zero(t, spooled)
}

func TestSpoolFullPolicies(t *testing.T) {
	t.Parallel()
	for _, policy := range []Policy{FailClosed, FailOpen} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			cp := &fakeCP{down: true}
			spool, err := spool.Open(t.TempDir(), 200)
			require.NoError(t, err)
			s := NewShipper(cp, spool, Options{QueueSize: 1, BatchSize: 2, Policy: policy})
			require.NoError(t, s.Gate())
			for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
				s.Submit(rec(id), nil) // beyond the queue and a batch: to the spool a batch at a time, until it is full
			}
			require.True(t, spool.Full())
			if policy == FailClosed {
				err := s.Gate()
				var ce *canonical.Error
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, canonical.KindUnavailable, ce.Kind)
				assert.Equal(t, 5*time.Second, ce.RetryAfter())
			} else {
				require.NoError(t, s.Gate())
			}
			// Once the control plane is back the spool drains and requests pass again.
			cp.set(false)
			s.drain(context.Background())
			require.NoError(t, s.Gate())
			assert.NotEmpty(t, cp.received())
		})
	}
}

// TestShipperSpillsOverflowInBatches: while memory is full (the shipper not
// draining, as when the control plane is slower than the traffic), records
// beyond the queue go to the spool a batch per synced write, oldest first —
// not one write, and later one round trip, per record — and every record
// reaches the control plane exactly once when it drains.
func TestShipperSpillsOverflowInBatches(t *testing.T) {
	t.Parallel()
	cp := &fakeCP{}
	sp, err := spool.Open(t.TempDir(), 1<<20)
	require.NoError(t, err)
	s := NewShipper(cp, sp, Options{QueueSize: 4, BatchSize: 3})
	var ids []string
	for i := range 13 {
		id := fmt.Sprintf("r%02d", i)
		ids = append(ids, id)
		s.Submit(rec(id), nil)
	}
	mem, spooled := s.Pending()
	assert.Equal(t, 4, mem, "memory holds the queue")
	assert.Equal(t, 3, spooled, "nine records overflowed, in three spooled batches of three")
	_, data, ok, err := sp.Head()
	require.NoError(t, err)
	require.True(t, ok)
	var head auditv1.Batch
	require.NoError(t, proto.Unmarshal(data, &head))
	assert.Equal(t, []string{"r00", "r01", "r02"}, requestIDs(head.GetRecords()), "the oldest records spill first")

	s.drain(context.Background())
	assert.ElementsMatch(t, ids, cp.received())
	mem, spooled = s.Pending()
	assert.Zero(t, mem)
	assert.Zero(t, spooled)
}

func requestIDs(recs []*auditv1.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.GetRequestId()
	}
	return out
}

// streamedEntry runs what recording does while a 100-chunk streamed request runs.
func streamedEntry(req *canonical.Request) *Entry {
	e := NewEntry(time.Now(), "127.0.0.1", "bench", nil)
	e.Start("id", "/v1/chat/completions", "openai")
	e.Request("m", true, req)
	for range 100 {
		e.Chunk(canonical.Chunk{Content: "tok "})
	}
	e.Attempted(Attempt{BackendID: 1, Usage: canonical.Usage{Prompt: 3, Completion: 100}})
	return e
}

var benchRequest = &canonical.Request{Model: "m", Stream: true, Messages: []canonical.Message{
	{Role: canonical.RoleUser, Content: []canonical.Part{{Type: canonical.PartText, Text: "hello there"}}}}}

// BenchmarkEntryOnThePath is what recording adds to a streamed request while
// it runs (Start, Request, one Chunk per token, Attempted): the rest (Finish,
// Submit) happens after the answer, off the client's path.
func BenchmarkEntryOnThePath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		streamedEntry(benchRequest)
	}
}

// BenchmarkEntryFinish is the hand-off's cost, paid after the answer.
func BenchmarkEntryFinish(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = streamedEntry(benchRequest).Finish(200, time.Now(), true)
	}
}
