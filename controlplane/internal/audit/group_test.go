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

// countingStore holds every insert until release is closed and notes how many
// were under way at once.
type countingStore struct {
	*store.Store
	release       chan struct{}
	mu            sync.Mutex
	now, most, in int
}

func (c *countingStore) InsertAuditRecords(ctx context.Context, recs []store.AuditRecord, arts []store.Artifact) error {
	c.mu.Lock()
	c.now++
	c.in++
	c.most = max(c.most, c.now)
	c.mu.Unlock()
	<-c.release
	defer func() {
		c.mu.Lock()
		c.now--
		c.mu.Unlock()
	}()
	return c.Store.InsertAuditRecords(ctx, recs, arts)
}

func (c *countingStore) underWay() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// TestWriterWritesUpToParallelGroupsAtOnce: with Parallel n, n groups are
// written at once and never more; the batches that arrive meanwhile wait and
// are written together after; every caller learns its outcome, and the
// writer's places are all given back (a lone batch is written at once after).
func TestWriterWritesUpToParallelGroupsAtOnce(t *testing.T) {
	t.Parallel()
	for _, parallel := range []int{1, 2, 3} {
		t.Run(fmt.Sprint(parallel), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := &countingStore{Store: openStore(t), release: make(chan struct{})}
			sp, err := spool.Open(t.TempDir(), 0)
			require.NoError(t, err)
			w := NewWriter(st, sp, WriterOptions{Parallel: parallel, Logger: slog.New(slog.DiscardHandler)})

			const batches = 8
			errs := make([]error, batches)
			var wg sync.WaitGroup
			for i := range batches {
				wg.Go(func() { errs[i] = w.Write(ctx, batch(uint64(i), i*10, 10, "student")) })
				if i < parallel { // one batch per group until every place is taken
					require.Eventually(t, func() bool { return st.underWay() == i+1 }, 30*time.Second, time.Millisecond)
				}
			}
			require.Eventually(t, func() bool { return w.queued() == batches-parallel },
				30*time.Second, time.Millisecond, "%d groups under way, the rest queued", parallel)
			time.Sleep(50 * time.Millisecond) // room for a wrong extra writer to start
			assert.Equal(t, parallel, st.underWay())
			close(st.release)
			wg.Wait()
			for i, err := range errs {
				require.NoError(t, err, "batch %d", i)
			}
			assert.Equal(t, parallel, st.most, "never more than Parallel groups at once")
			assert.Equal(t, parallel+1, st.in, "the batches that queued meanwhile went in one group")
			n, err := st.CountAuditRecords(ctx, store.AuditFilter{})
			require.NoError(t, err)
			assert.Equal(t, batches*10, n)

			w.qmu.Lock()
			writers := w.writers
			w.qmu.Unlock()
			assert.Zero(t, writers, "every writer's place given back")
			require.NoError(t, w.Write(ctx, batch(99, 1000, 5, "student")))
			n, err = st.CountAuditRecords(ctx, store.AuditFilter{})
			require.NoError(t, err)
			assert.Equal(t, batches*10+5, n)
		})
	}
}

// TestWriterParallelOnBothDrivers: six replicas' batches, some re-sent, some
// re-sent while the first copy is still being written, through three parallel
// groups into real SQLite and MariaDB: every record exactly once, nothing
// failed (on MariaDB, concurrent inserts of one request id can deadlock; the
// store writes the victim again).
func TestWriterParallelOnBothDrivers(t *testing.T) {
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
			st := tc.open(t)
			sp, err := spool.Open(t.TempDir(), 0)
			require.NoError(t, err)
			w := NewWriter(st, sp, WriterOptions{Parallel: 3, Logger: slog.New(slog.DiscardHandler)})
			const replicas, perReplica, size = 6, 12, 40
			var wg sync.WaitGroup
			errs := make(chan error, replicas*perReplica*3)
			for r := range replicas {
				wg.Go(func() {
					for i := range perReplica {
						// Replicas r and r+3 send the same records: re-sends
						// racing the first copy in another group.
						from := ((r%3)*perReplica + i) * size
						b := batch(uint64(i), from, size, "student")
						b.ReplicaId = fmt.Sprintf("dp-%d", r)
						errs <- w.Write(ctx, b)
						if i%4 == 0 {
							errs <- w.Write(ctx, b)
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
			assert.Equal(t, 3*perReplica*size, n)
			assert.Zero(t, w.queued())
		})
	}
}
