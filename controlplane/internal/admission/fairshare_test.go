package admission

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

type grant struct {
	user  string
	lease string
}

// workload is one user's simulated requests: what Admit declares and what
// Release reports.
type workload struct {
	weight       int
	prompt       int64
	maxTokens    int64
	realOutput   int64
	backlog      int
	servedTokens int64
}

// TestSharesFollowWeightsUnderContention keeps three users of weights 1, 2 and 3
// backlogged on one backend with two slots, through real gRPC Admit and Release.
// Their requests differ in size, and each uses less output than it declared; the
// tokens served to each user (as released) must follow the weights within 5%.
func TestSharesFollowWeightsUnderContention(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 2))
	users := map[string]*workload{
		"w1": {weight: 1, prompt: 200, maxTokens: 800, realOutput: 500, backlog: 8},
		"w2": {weight: 2, prompt: 600, maxTokens: 1400, realOutput: 900, backlog: 8},
		"w3": {weight: 3, prompt: 100, maxTokens: 400, realOutput: 250, backlog: 8},
	}
	for name, u := range users {
		h.ident.add(name, Principal{UserID: int64(100 + u.weight), Username: name, Inference: true, Weight: u.weight})
	}
	grants := make(chan grant, 64)
	ctx, stop := context.WithCancel(t.Context())
	defer stop() // the requests still queued at the end give up
	seq := 0
	submit := func(user string) {
		seq++
		req := h.admitReq(fmt.Sprintf("%s-%d", user, seq))
		req.Credential, req.PromptTokensEstimate, req.MaxOutputTokens = user, users[user].prompt, users[user].maxTokens
		go func() {
			resp, err := h.admit.Admit(ctx, req)
			if ctx.Err() != nil || !assert.NoError(t, err) {
				return
			}
			grants <- grant{user, resp.GetLease().GetLeaseId()}
		}()
	}
	// Two requests take the slots at once; then everyone queues behind them.
	submit("w1")
	submit("w1")
	held := []grant{<-grants, <-grants}
	queued := 0
	for user, u := range users {
		for range u.backlog {
			submit(user)
			queued++
			h.waitDepth(t, queued)
		}
	}

	const warmup, measured = 60, 600
	for i := range warmup + measured {
		// The oldest slot finishes; its user is served its real usage.
		done := held[0]
		u := users[done.user]
		h.clock.Advance(100 * time.Millisecond)
		_, err := h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{
			LeaseId: done.lease, Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
			Usage: &controlplanev1.Usage{PromptTokens: u.prompt, CompletionTokens: u.realOutput},
		})
		require.NoError(t, err)
		if i >= warmup {
			u.servedTokens += u.prompt + u.realOutput
		}
		next := <-grants
		held = append(held[1:], next)
		submit(next.user) // keep every user backlogged
	}
	var total int64
	for _, u := range users {
		total += u.servedTokens
	}
	for name, u := range users {
		want := float64(u.weight) / 6
		got := float64(u.servedTokens) / float64(total)
		require.InEpsilon(t, want, got, 0.05, "user %s: %.3f of the tokens, want %.3f", name, got, want)
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
	require.Equal(t, 3, h.queue.InFlight(1))
	require.Equal(t, 3, h.queue.InFlight(2))
}

// TestUserQueueLimit: one user cannot fill a model's queue; the refusal says why
// and when to come back, and other users still queue.
func TestUserQueueLimit(t *testing.T) {
	t.Parallel()
	h := newHarnessQueue(t, Options{}, harnessQueue{fairShare: fairshareParams(2), queue: scheduler.Options{RetryAfter: 9 * time.Second}}, backendCand(1, 1))
	h.ident.add("other", Principal{UserID: 77, Username: "other", Inference: true, Weight: 1})
	_, err := h.admit.Admit(t.Context(), h.admitReq("holder"))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for i := range 2 {
		go func() { _, _ = h.admit.Admit(ctx, h.admitReq(fmt.Sprintf("q%d", i))) }()
		h.waitDepth(t, i+1)
	}
	_, err = h.admit.Admit(t.Context(), h.admitReq("one too many"))
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "error: %v", err)
	require.Contains(t, err.Error(), "user queue full")
	require.Equal(t, 9*time.Second, retryAfterOf(err))
	require.Equal(t, 1.0, h.metricValue(t, "mindrouter_admissions_total", map[string]string{"result": "queue_full"}))

	req := h.admitReq("someone else")
	req.Credential = "other"
	go func() { _, _ = h.admit.Admit(ctx, req) }()
	h.waitDepth(t, 3)
}

// TestQueuePositionIsTheFairShareEstimate: the position an Admit reports is the
// request's estimated place in the fair-share order at enqueue, not the length of
// the queue: a newcomer with burst credits goes ahead of a user's backlog.
func TestQueuePositionIsTheFairShareEstimate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1))
	h.ident.add("newcomer", Principal{UserID: 88, Username: "newcomer", Inference: true, Weight: 1})
	resp, err := h.admit.Admit(t.Context(), h.admitReq("holder"))
	require.NoError(t, err)
	require.Zero(t, resp.GetQueuePosition(), "placed at once")
	held := resp.GetLease().GetLeaseId()

	type res struct {
		id, lease string
		pos       int32
	}
	out := make(chan res, 8)
	admit := func(req *controlplanev1.AdmitRequest) {
		go func() {
			resp, err := h.admit.Admit(t.Context(), req)
			if assert.NoError(t, err) {
				out <- res{resp.GetLease().GetRequestId(), resp.GetLease().GetLeaseId(), resp.GetQueuePosition()}
			}
		}()
	}
	for i := range 3 {
		req := h.admitReq(fmt.Sprintf("backlog%d", i))
		req.PromptTokensEstimate, req.MaxOutputTokens = 4000, 4000 // big: the user is soon out of credit
		admit(req)
		h.waitDepth(t, i+1)
	}
	req := h.admitReq("small")
	req.Credential, req.PromptTokensEstimate, req.MaxOutputTokens = "newcomer", 10, 10
	admit(req)
	h.waitDepth(t, 4)

	want := map[string]int32{"backlog0": 1, "backlog1": 2, "backlog2": 3, "small": 1}
	got := map[string]int32{}
	order := []string{}
	for range 4 {
		_, err := h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: held})
		require.NoError(t, err)
		r := <-out
		got[r.id] = r.pos
		order = append(order, r.id)
		held = r.lease
	}
	require.Equal(t, want, got)
	require.Equal(t, "small", order[0], "the newcomer's small request is served first, as its position said")
}

func fairshareParams(maxPerUser int) *fairshare.Params {
	p := fairshare.DefaultParams()
	p.MaxQueuePerUser = maxPerUser
	return &p
}
