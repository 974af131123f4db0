package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/system"
)

const setSystemStatus = "/mindrouter.admin.v1.SystemService/SetSystemStatus"

// testSystemSwitchFollowsCommits: the on/off switch's copy in memory moves
// only when its audited call commits, and agrees with the database after
// toggles made at once.
func testSystemSwitchFollowsCommits(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	actor := store.Actor{UserID: 1, Username: "root"}
	sw := system.New(s)
	set := func(offline bool, msg string, fail func(ctx context.Context) error) error {
		return s.RunAudited(ctx, actor, setSystemStatus, func(ctx context.Context) error {
			if _, err := sw.Set(ctx, offline, msg, "root"); err != nil {
				return err
			}
			return fail(ctx)
		})
	}
	stored := func() system.State {
		again := system.New(s)
		require.NoError(t, again.Load(ctx))
		return again.State()
	}

	require.NoError(t, set(true, "driver upgrade", func(context.Context) error {
		assert.False(t, sw.State().Offline, "memory waits for the commit")
		return nil
	}))
	require.True(t, sw.State().Offline)
	assert.Equal(t, "driver upgrade", sw.State().Message)

	// The commit fails: neither the database nor memory moves.
	refused := errors.New("commit refused")
	err := set(false, "", func(ctx context.Context) error {
		store.FailCommit(ctx, refused)
		return nil
	})
	require.ErrorIs(t, err, refused)
	assert.True(t, sw.State().Offline, "a failed commit leaves memory where it was")
	assert.True(t, stored().Offline, "and the database")

	// The call fails after Set: the same.
	err = set(false, "", func(context.Context) error { return refused })
	require.ErrorIs(t, err, refused)
	assert.True(t, sw.State().Offline)
	assert.True(t, stored().Offline)

	// Toggles at once: memory ends where the database does.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			err := set(i%2 == 0, "maintenance", func(context.Context) error { return nil })
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, stored(), sw.State())
	acts, _, err := s.SearchAdminActions(ctx, store.AdminActionFilter{Action: "setting."}, "", 100)
	require.NoError(t, err)
	assert.Len(t, acts, 9, "one record per committed toggle, none for the refused ones")
}
