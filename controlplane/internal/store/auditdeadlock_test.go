package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// TestAuditInsertWritesADeadlockVictimAgain: an audit insert that MariaDB
// rolls back as a deadlock's victim (error 1213, wrapped as the store wraps
// it) runs again, up to three more times; any other error, and any error
// inside an audited call (whose transaction is the call's), is returned at
// once.
func TestAuditInsertWritesADeadlockVictimAgain(t *testing.T) {
	t.Parallel()
	st := openSQLiteStore(t)
	ctx := ctxT(t)
	deadlock := fmt.Errorf("insert audit records: %w", &mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock"})
	failing := func(n int, err error) (func() error, *int) {
		calls := 0
		return func() error {
			calls++
			if calls <= n {
				return err
			}
			return nil
		}, &calls
	}

	txn, calls := failing(2, deadlock)
	require.NoError(t, store.AgainOnDeadlock(ctx, st, txn))
	assert.Equal(t, 3, *calls, "two victims, then written")

	txn, calls = failing(10, deadlock)
	require.ErrorIs(t, store.AgainOnDeadlock(ctx, st, txn), deadlock)
	assert.Equal(t, 4, *calls, "once and three more times")

	other := errors.New("insert audit records: data too long")
	txn, calls = failing(10, other)
	require.ErrorIs(t, store.AgainOnDeadlock(ctx, st, txn), other)
	assert.Equal(t, 1, *calls, "another error is not retried")

	txn, calls = failing(10, deadlock)
	err := st.RunAudited(ctx, store.Actor{UserID: 1, Username: "admin"}, "test", func(ctx context.Context) error {
		return store.AgainOnDeadlock(ctx, st, txn)
	})
	require.ErrorIs(t, err, deadlock)
	assert.Equal(t, 1, *calls, "inside an audited call the call retries, not the insert")
}
