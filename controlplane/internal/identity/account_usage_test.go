package identity

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
)

type usageFunc func(int64) Usage

func (f usageFunc) Usage(id int64) Usage { return f(id) }

// TestGetMyUsage answers the caller's own usage, against the budget and rate
// the caller's principal carries, and never another user's.
func TestGetMyUsage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u := f.user(t, "una", store.GroupStudent)
	_, full := f.key(t, u.ID)
	p, err := f.svc.Verify(context.Background(), full)
	require.NoError(t, err)
	start := f.clock.Now()
	var asked int64
	srv := NewAccountServer(f.svc, f.st, f.acct).WithUsage(usageFunc(func(id int64) Usage {
		asked = id
		return Usage{TokensUsed: 1200, LifetimeTokensUsed: 5000, TokensReserved: 300, PeriodStart: start,
			PeriodEnd: start.Add(30 * 24 * time.Hour), RequestsLastMinute: 4, InFlight: 1}
	}))
	got, err := srv.GetMyUsage(NewContext(context.Background(), p), &accountv1.GetMyUsageRequest{})
	require.NoError(t, err)
	assert.Equal(t, u.ID, asked)
	assert.Equal(t, int64(1200), got.GetTokensUsed())
	assert.Equal(t, int64(5000), got.GetLifetimeTokensUsed())
	assert.Equal(t, int64(300), got.GetTokensReserved())
	assert.Equal(t, p.TokenBudget, got.GetTokenBudget())
	assert.Positive(t, got.GetTokenBudget(), "the student group has a budget")
	assert.Equal(t, int32(p.RPMLimit), got.GetRpmLimit())
	assert.Equal(t, start.Add(30*24*time.Hour), got.GetPeriodEnd().AsTime())
	assert.Equal(t, int32(4), got.GetRequestsLastMinute())

	_, err = srv.GetMyUsage(context.Background(), &accountv1.GetMyUsageRequest{})
	require.Error(t, err, "no principal, no usage")
}
