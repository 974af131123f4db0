package admission

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

type grant struct {
	user  string
	lease string
}

// TestSharesFollowWeightsUnderContention keeps three users of weights 1, 2 and 3
// backlogged on one slot and checks, through real gRPC Admit/Release, that the
// slot is shared 1:2:3 (within 5% of each share).
func TestSharesFollowWeightsUnderContention(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1))
	users := map[string]int{"w1": 1, "w2": 2, "w3": 3}
	for name, w := range users {
		h.ident.keys[name] = Principal{UserID: int64(100 + w), Username: name, Inference: true, Weight: w}
	}
	grants := make(chan grant, 256)
	ctx, stop := context.WithCancel(t.Context())
	defer stop() // the requests still queued at the end give up
	submit := func(user string, i int) {
		req := h.admitReq(fmt.Sprintf("%s-%d", user, i))
		req.Credential = user
		resp, err := h.admit.Admit(ctx, req)
		if ctx.Err() != nil || !assert.NoError(t, err) {
			return
		}
		grants <- grant{user, resp.GetLease().GetLeaseId()}
	}
	// The first request takes the slot at once; then everyone queues behind it.
	go submit("w1", 0)
	current := <-grants
	seq := 1
	for user := range users {
		for range 8 {
			go submit(user, seq)
			seq++
		}
	}
	h.waitDepth(t, 24)

	const warmup, measured = 24, 240
	served := map[string]int{}
	for i := range warmup + measured {
		h.clock.Advance(time.Second)
		_, err := h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{
			LeaseId: current.lease, Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
			Usage: &controlplanev1.Usage{PromptTokens: 100, CompletionTokens: 1000},
		})
		require.NoError(t, err)
		current = <-grants
		if i >= warmup {
			served[current.user]++
		}
		go submit(current.user, seq) // keep every user backlogged
		seq++
	}
	for user, w := range users {
		want := float64(measured) * float64(w) / 6
		require.InEpsilon(t, want, float64(served[user]), 0.05, "user %s served %d of %d, want %.0f", user, served[user], measured, want)
	}
}

// TestLoneUserTakesAllCapacity: with nobody else asking, one user fills every slot.
func TestLoneUserTakesAllCapacity(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 3), backendCand(2, 3))
	for i := range 6 {
		_, err := h.admit.Admit(t.Context(), h.admitReq(fmt.Sprintf("r%d", i)))
		require.NoError(t, err, "slot %d", i)
	}
	require.Equal(t, 3, h.srv.InFlight(1))
	require.Equal(t, 3, h.srv.InFlight(2))
}

// TestUserQueueLimit: one user cannot fill a model's queue; the refusal says why
// and when to come back.
func TestUserQueueLimit(t *testing.T) {
	t.Parallel()
	policy, err := scheduler.NewFairShare(fairshareParams(2), nil)
	require.NoError(t, err)
	h := newHarness(t, Options{Policy: policy}, backendCand(1, 1))
	_, err = h.admit.Admit(t.Context(), h.admitReq("holder"))
	require.NoError(t, err)
	for i := range 2 {
		go func() { _, _ = h.admit.Admit(t.Context(), h.admitReq(fmt.Sprintf("q%d", i))) }()
		h.waitDepth(t, i+1)
	}
	_, err = h.admit.Admit(t.Context(), h.admitReq("one too many"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "user queue full")
	require.Positive(t, retryAfterOf(err))
}

func fairshareParams(maxPerUser int) fairshare.Params {
	p := fairshare.DefaultParams()
	p.MaxQueuePerUser = maxPerUser
	return p
}
