package admission

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

func TestPickSkipsABackendWhoseBreakerRefuses(t *testing.T) {
	t.Parallel()
	loaded := backendCand(1, 4)
	loaded.Loaded = true // the better score
	h := newHarness(t, Options{}, loaded, backendCand(2, 4))
	h.reg.setBreaker(1, breakerOpen)

	resp, err := h.admit.Admit(t.Context(), h.admitReq("r1"))
	require.NoError(t, err)
	require.EqualValues(t, 2, resp.GetLease().GetBackendId())

	d := h.srv.Decisions(DecisionFilter{Limit: 1})
	require.Len(t, d, 1)
	byID := map[int64]CandidateScore{}
	for _, c := range d[0].Candidates {
		byID[c.BackendID] = c
	}
	require.False(t, byID[1].Eligible)
	require.Equal(t, reasonCircuit, byID[1].ExcludedReason)
	require.True(t, byID[2].Eligible)
}

func TestRequestWaitsWhileEveryBreakerRefuses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 4))
	h.reg.setBreaker(1, breakerOpen)
	done := make(chan *controlplanev1.AdmitResponse, 1)
	go func() {
		resp, err := h.admit.Admit(t.Context(), h.admitReq("r1"))
		if err == nil {
			done <- resp
		}
		close(done)
	}()
	h.waitDepth(t, 1)
	select {
	case <-done:
		t.Fatal("granted through an open circuit")
	default:
	}
	// The circuit half-opens: the registry changes and the waiter becomes the trial.
	h.reg.setBreaker(1, breakerTrial)
	h.reg.set("llama3", backendCand(1, 4))
	resp := <-done
	require.NotNil(t, resp)
	require.Equal(t, breakerTrialOut, h.reg.breakerOf(1))
}

func TestTrialOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		outcome   controlplanev1.Outcome
		abandoned []int64
		after     breakerState
	}{
		{"success closes", controlplanev1.Outcome_OUTCOME_SUCCESS, nil, 0},
		{"failure reopens", controlplanev1.Outcome_OUTCOME_BACKEND_ERROR, nil, breakerOpen},
		{"a client that left gives the trial back", controlplanev1.Outcome_OUTCOME_CLIENT_CANCELLED, []int64{1}, breakerTrial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{}, backendCand(1, 4))
			h.reg.setBreaker(1, breakerTrial)
			resp, err := h.admit.Admit(t.Context(), h.admitReq("r1"))
			require.NoError(t, err)
			_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: resp.GetLease().GetLeaseId(), Outcome: tt.outcome})
			require.NoError(t, err)
			h.reg.mu.Lock()
			defer h.reg.mu.Unlock()
			require.Equal(t, tt.abandoned, h.reg.abandoned)
			require.Equal(t, tt.after, h.reg.breaker[1])
		})
	}
}

func TestLostTrialIsGivenBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{LeaseTTL: 10 * time.Second}, backendCand(1, 4))
	h.reg.setBreaker(1, breakerTrial)
	_, err := h.admit.Admit(t.Context(), h.admitReq("r1"))
	require.NoError(t, err)
	h.clock.Advance(11 * time.Second)
	h.srv.sweep(h.clock.Now())
	h.reg.mu.Lock()
	defer h.reg.mu.Unlock()
	require.Equal(t, []int64{1}, h.reg.abandoned)
	require.Equal(t, breakerTrial, h.reg.breaker[1], "another request may be the trial")
}

func TestClosedCircuitLeaseOwesNothingWhenCancelled(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 4))
	resp, err := h.admit.Admit(t.Context(), h.admitReq("r1"))
	require.NoError(t, err)
	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: resp.GetLease().GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_CLIENT_CANCELLED})
	require.NoError(t, err)
	h.reg.mu.Lock()
	defer h.reg.mu.Unlock()
	require.Empty(t, h.reg.abandoned)
}

func TestSuccessfulReleaseCarriesMeasurements(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 4))
	resp, err := h.admit.Admit(t.Context(), h.admitReq("r1"))
	require.NoError(t, err)
	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{
		LeaseId: resp.GetLease().GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
		Usage: &controlplanev1.Usage{PromptTokens: 10, CompletionTokens: 41},
		Ttft:  durationpb.New(200 * time.Millisecond), Duration: durationpb.New(2200 * time.Millisecond),
	})
	require.NoError(t, err)
	h.reg.mu.Lock()
	defer h.reg.mu.Unlock()
	require.Equal(t, []registry.Observation{{TTFT: 200 * time.Millisecond, Duration: 2200 * time.Millisecond, CompletionTokens: 41}}, h.reg.observed)
}

// grantThenWait grants like the queue it wraps, then holds the answer until the
// caller has gone: the grant that nobody will use.
type grantThenWait struct{ *scheduler.Queue }

func (g grantThenWait) Acquire(ctx context.Context, t scheduler.Ticket, pick scheduler.Picker) (scheduler.Grant, error) {
	gr, err := g.Queue.Acquire(ctx, t, pick)
	<-ctx.Done()
	return gr, err
}

// TestTrialOfADroppedGrantIsGivenBack: when the caller leaves while its slot is
// being granted, the slot goes back and so does the half-open trial it took.
func TestTrialOfADroppedGrantIsGivenBack(t *testing.T) {
	t.Parallel()
	q, err := scheduler.New(scheduler.NewFIFO(), scheduler.Options{})
	require.NoError(t, err)
	h := newHarnessQueue(t, Options{}, harnessQueue{sched: grantThenWait{q}}, backendCand(1, 4))
	h.reg.setBreaker(1, breakerTrial)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = h.admit.Admit(ctx, h.admitReq("r1"))
	require.Error(t, err)
	require.Eventually(t, func() bool { return h.queue.InFlight(1) == 0 && h.reg.breakerOf(1) == breakerTrial }, 5*time.Second, time.Millisecond,
		"the slot and the trial are given back")
	h.reg.mu.Lock()
	defer h.reg.mu.Unlock()
	require.Equal(t, []int64{1}, h.reg.abandoned)
}
