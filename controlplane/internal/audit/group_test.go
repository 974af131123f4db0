package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
	"github.com/mindrouter/mindrouter/spool"
)

// gatedStore is the real store; its first insert waits for release, and every
// insert's record count is noted. A record whose request id starts with "bad"
// makes its insert fail (not as unreachable).
type gatedStore struct {
	*store.Store
	entered chan struct{} // closed when the first insert begins
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	sizes   []int
}

func (g *gatedStore) InsertAuditRecords(ctx context.Context, recs []store.AuditRecord, arts []store.Artifact) error {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	g.mu.Lock()
	g.sizes = append(g.sizes, len(recs))
	g.mu.Unlock()
	for _, r := range recs {
		if strings.HasPrefix(r.RequestID, "bad") {
			return errors.New("insert audit records: constraint violated")
		}
	}
	return g.Store.InsertAuditRecords(ctx, recs, arts)
}

func (w *Writer) queued() int {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	return len(w.queue)
}

// TestWriterCoalescesConcurrentBatches: batches that arrive while a write is
// under way are written together in the next transaction, each caller learns
// its own batch's outcome, and a batch that fails for a reason of its own
// fails alone.
func TestWriterCoalescesConcurrentBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &gatedStore{Store: openStore(t), entered: make(chan struct{}), release: make(chan struct{})}
	sp, err := spool.Open(t.TempDir(), 0)
	require.NoError(t, err)
	w := NewWriter(st, sp, WriterOptions{Logger: slog.New(slog.DiscardHandler)})

	bad := batch(4, 300, 10, "student")
	for _, r := range bad.Records {
		r.RequestId = "bad-" + r.RequestId
	}
	batches := []*controlplanev1.IngestRequest{batch(1, 0, 10, "student"), batch(2, 100, 20, "student"), batch(3, 200, 30, "student"), bad}
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = w.Write(ctx, batches[0]) })
	<-st.entered // the first batch is being written
	for i := 1; i < len(batches); i++ {
		wg.Go(func() { errs[i] = w.Write(ctx, batches[i]) })
	}
	require.Eventually(t, func() bool { return w.queued() == 3 }, 30*time.Second, time.Millisecond, "three batches wait")
	close(st.release)
	wg.Wait()

	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.NoError(t, errs[2])
	require.Error(t, errs[3], "the bad batch fails alone")
	st.mu.Lock()
	sizes := st.sizes
	st.mu.Unlock()
	require.GreaterOrEqual(t, len(sizes), 2)
	assert.Equal(t, 10, sizes[0])
	assert.Equal(t, 60, sizes[1], "the three waiting batches were written as one group")
	n, err := st.CountAuditRecords(ctx, store.AuditFilter{})
	require.NoError(t, err)
	assert.Equal(t, 60, n, "every good record once, none of the bad batch")
	assert.Equal(t, 0, w.queued())

	// The writer is idle again: a lone batch is written at once.
	require.NoError(t, w.Write(ctx, batch(5, 400, 5, "student")))
	n, err = st.CountAuditRecords(ctx, store.AuditFilter{})
	require.NoError(t, err)
	assert.Equal(t, 65, n)
}

// TestWriterConcurrentWritesStoreEveryRecordOnce: many replicas' batches at
// once, some re-sent, end as every record exactly once.
func TestWriterConcurrentWritesStoreEveryRecordOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	sp, err := spool.Open(t.TempDir(), 0)
	require.NoError(t, err)
	w := NewWriter(st, sp, WriterOptions{Logger: slog.New(slog.DiscardHandler)})
	const replicas, perReplica, size = 6, 10, 7
	var wg sync.WaitGroup
	errs := make(chan error, replicas*perReplica*2)
	for r := range replicas {
		wg.Go(func() {
			for i := range perReplica {
				from := (r*perReplica + i) * size
				b := batch(uint64(i), from, size, "student")
				b.ReplicaId = fmt.Sprintf("dp-%d", r)
				errs <- w.Write(ctx, b)
				if i%3 == 0 {
					errs <- w.Write(ctx, b) // a re-send after a lost acknowledgement
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	n, err := st.CountAuditRecords(ctx, store.AuditFilter{})
	require.NoError(t, err)
	assert.Equal(t, replicas*perReplica*size, n)
}
