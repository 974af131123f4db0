package responses_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/responses"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
)

// seed stores n responses of a new user created at created, ids prefix0..n-1.
func seed(t *testing.T, st *store.Store, user int64, prefix string, n int, created time.Time) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + string(rune('a'+i))
		require.NoError(t, st.PutResponse(t.Context(), store.StoredResponse{ID: ids[i], UserID: user,
			ResponseJSON: "{}", InputItemsJSON: "[]", HistoryJSON: "[]", CreatedAt: created}))
	}
	return ids
}

func newUser(t *testing.T, st *store.Store) int64 {
	t.Helper()
	g, err := st.GetGroupByName(t.Context(), store.GroupStudent)
	require.NoError(t, err)
	u, err := st.CreateUser(t.Context(), store.UserSpec{Username: "ada", Email: "ada@example.edu", GroupID: g.ID})
	require.NoError(t, err)
	return u.ID
}

// TestRetentionPass: one pass deletes, in batches, every response older than
// the retention and none younger, on both databases.
func TestRetentionPass(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		uid := newUser(t, st)
		now := time.Now().UTC().Truncate(time.Second)
		old := seed(t, st, uid, "resp_old_", 7, now.Add(-31*24*time.Hour))
		young := seed(t, st, uid, "resp_young_", 2, now.Add(-29*24*time.Hour))

		r := responses.Retention{Store: st, Age: 30 * 24 * time.Hour, Batch: 3, Logger: slog.New(slog.DiscardHandler)}
		n, err := r.Pass(t.Context(), now)
		require.NoError(t, err)
		require.Equal(t, 7, n, "3+3+1: the pass goes on until a batch comes back short")
		for _, id := range old {
			_, err := st.GetResponse(t.Context(), uid, id)
			require.ErrorIs(t, err, store.ErrNotFound, id)
		}
		for _, id := range young {
			_, err := st.GetResponse(t.Context(), uid, id)
			require.NoError(t, err, id)
		}
		n, err = r.Pass(t.Context(), now)
		require.NoError(t, err)
		require.Zero(t, n, "nothing left to purge")

		// Exactly a multiple of the batch: the pass stops on the empty batch.
		seed(t, st, uid, "resp_more_", 6, now.Add(-40*24*time.Hour))
		n, err = r.Pass(t.Context(), now)
		require.NoError(t, err)
		require.Equal(t, 6, n)
	})
}

// TestRetentionRun: Run purges at once when it starts (while leading), and
// not at all with a zero retention or while not leading.
func TestRetentionRun(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		uid := newUser(t, st)
		ancient := seed(t, st, uid, "resp_ancient_", 2, time.Now().Add(-10*365*24*time.Hour))
		run := func(r responses.Retention) {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			r.Store, r.Batch, r.Interval, r.Logger = st, 10, time.Hour, slog.New(slog.DiscardHandler)
			require.NoError(t, r.Run(ctx))
		}
		exists := func() bool {
			_, err := st.GetResponse(t.Context(), uid, ancient[0])
			return err == nil
		}

		run(responses.Retention{Age: 0})
		require.True(t, exists(), "a zero retention keeps responses forever")
		run(responses.Retention{Age: time.Hour, Leading: func() bool { return false }})
		require.True(t, exists(), "a replica that does not lead does not purge")
		run(responses.Retention{Age: time.Hour, Leading: func() bool { return true }})
		require.False(t, exists(), "the leader purges on its first tick")
	})
}
