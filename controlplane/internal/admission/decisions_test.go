package admission

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// TestDecisionLogRecordsTheChoice: every grant is recorded with the user, the
// attempt and every candidate's verdict, and ListDecisions serves them over gRPC,
// newest first, filtered.
func TestDecisionLogRecordsTheChoice(t *testing.T) {
	t.Parallel()
	loaded := backendCand(1, 2)
	loaded.Loaded = true
	small := backendCand(3, 2)
	small.ContextLength = 512
	h := newHarness(t, Options{}, loaded, backendCand(2, 4), small)

	req := h.admitReq("r1")
	req.PromptTokensEstimate = 1000
	_, err := h.admit.Admit(t.Context(), req)
	require.NoError(t, err)
	h.clock.Advance(time.Second)
	retry := h.admitReq("r1")
	retry.PromptTokensEstimate, retry.Attempt, retry.ExcludedBackendIds = 1000, 2, []int64{1}
	_, err = h.admit.Admit(t.Context(), retry)
	require.NoError(t, err)

	resp, err := h.sched.ListDecisions(t.Context(), &adminv1.ListDecisionsRequest{})
	require.NoError(t, err)
	ds := resp.GetDecisions()
	require.Len(t, ds, 2)
	d := ds[0]
	assert.Equal(t, "r1", d.GetRequestId())
	assert.Equal(t, h.clock.Now(), d.GetDecidedAt().AsTime())
	assert.Equal(t, "llama3", d.GetModel())
	assert.Equal(t, int64(42), d.GetUserId())
	assert.Equal(t, "ada", d.GetUsername())
	assert.Equal(t, int32(2), d.GetWeight())
	assert.Equal(t, int32(2), d.GetAttempt())
	assert.Zero(t, d.GetQueuePosition())
	assert.Zero(t, d.GetWaited().AsDuration())
	assert.Equal(t, int64(2), d.GetChosenBackendId())
	assert.Equal(t, "gpu2", d.GetChosenBackend())
	require.Len(t, d.GetCandidates(), 3)
	c := d.GetCandidates()[0]
	assert.Equal(t, int64(2), c.GetBackendId())
	assert.Equal(t, "gpu2", c.GetBackend())
	assert.True(t, c.GetEligible())
	assert.Empty(t, c.GetExcludedReason())
	assert.Equal(t, map[string]float64{"loaded": 0, "priority": 0, "free_slots": 1}, c.GetComponents())
	assert.InDelta(t, 1.0, c.GetTotal(), 1e-9)
	assert.Equal(t, &adminv1.CandidateScore{BackendId: 1, Backend: "gpu1", ExcludedReason: reasonExcluded},
		stripState(d.GetCandidates()[1]))
	assert.Equal(t, &adminv1.CandidateScore{BackendId: 3, Backend: "gpu3", ExcludedReason: reasonContext},
		stripState(d.GetCandidates()[2]))

	first := ds[1]
	assert.Equal(t, int32(1), first.GetAttempt())
	assert.Equal(t, int64(1), first.GetChosenBackendId(), "the loaded backend wins")
	require.Len(t, first.GetCandidates(), 3)
	assert.Equal(t, 1.0, first.GetCandidates()[0].GetComponents()["loaded"])

	for _, tt := range []struct {
		name string
		req  *adminv1.ListDecisionsRequest
		want int
	}{
		{"limit", &adminv1.ListDecisionsRequest{Limit: 1}, 1},
		{"user", &adminv1.ListDecisionsRequest{UserId: 42}, 2},
		{"other user", &adminv1.ListDecisionsRequest{UserId: 7}, 0},
		{"model", &adminv1.ListDecisionsRequest{Model: "llama3"}, 2},
		{"other model", &adminv1.ListDecisionsRequest{Model: "qwen"}, 0},
	} {
		resp, err := h.sched.ListDecisions(t.Context(), tt.req)
		require.NoError(t, err, tt.name)
		assert.Len(t, resp.GetDecisions(), tt.want, tt.name)
	}
	_, err = h.sched.ListDecisions(t.Context(), &adminv1.ListDecisionsRequest{Limit: -1})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

// stripState drops protobuf's internal state so that candidates compare by value.
func stripState(c *adminv1.CandidateScore) *adminv1.CandidateScore {
	return &adminv1.CandidateScore{BackendId: c.GetBackendId(), Backend: c.GetBackend(), Eligible: c.GetEligible(),
		ExcludedReason: c.GetExcludedReason(), Total: c.GetTotal(), Components: c.GetComponents()}
}

// TestDecisionOfAQueuedRequest records its queue position, its wait and the full
// backend it could not use.
func TestDecisionOfAQueuedRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1), backendCand(2, 1))
	a, err := h.admit.Admit(t.Context(), h.admitReq("a"))
	require.NoError(t, err)
	_, err = h.admit.Admit(t.Context(), h.admitReq("b"))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := h.admit.Admit(t.Context(), h.admitReq("queued"))
		done <- err
	}()
	h.waitDepth(t, 1)
	h.clock.Advance(3 * time.Second)
	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: a.GetLease().GetLeaseId()})
	require.NoError(t, err)
	require.NoError(t, <-done)

	ds := h.srv.Decisions(DecisionFilter{Limit: 1})
	require.Len(t, ds, 1)
	d := ds[0]
	assert.Equal(t, "queued", d.RequestID)
	assert.Equal(t, 1, d.QueuePosition)
	assert.Equal(t, 3*time.Second, d.Waited)
	assert.Equal(t, int64(1), d.BackendID)
	require.Len(t, d.Candidates, 2)
	assert.True(t, d.Candidates[0].Eligible)
	assert.False(t, d.Candidates[1].Eligible)
	assert.Equal(t, reasonFull, d.Candidates[1].ExcludedReason)
}

// preferScorer prefers the backend with the highest id, calls backend 3 broken
// and (wrongly) calls every backend eligible otherwise.
type preferScorer struct{}

func (preferScorer) Score(in ScoreInput, out []Score) {
	for i, c := range in.Candidates {
		out[i] = Score{Eligible: c.BackendID != 3, Total: float64(c.BackendID),
			Components: append(out[i].Components[:0], Component{"id", float64(c.BackendID)})}
		if c.BackendID == 3 {
			out[i].ExcludedReason = "circuit open"
		}
	}
}

// TestCustomScorer: the Scorer chooses among the backends with a free slot, and
// its verdicts are what the decision log shows; a full backend is never chosen
// whatever the scorer says.
func TestCustomScorer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{Scorer: preferScorer{}}, backendCand(1, 4), backendCand(2, 1), backendCand(3, 4))
	want := []int64{2, 1, 1}
	for i, id := range want {
		resp, err := h.admit.Admit(t.Context(), h.admitReq(fmt.Sprintf("r%d", i)))
		require.NoError(t, err)
		require.Equal(t, id, resp.GetLease().GetBackendId(), "admission %d", i)
	}
	d := h.srv.Decisions(DecisionFilter{Limit: 1})[0]
	require.Len(t, d.Candidates, 3)
	assert.Equal(t, []Component{{"id", 1}}, d.Candidates[0].Components)
	assert.Equal(t, Score{ExcludedReason: reasonFull, Total: 2, Components: []Component{{"id", 2}}}, d.Candidates[1].Score)
	assert.Equal(t, "circuit open", d.Candidates[2].ExcludedReason)
}

// TestDecisionRing is not parallel: it counts allocations.
func TestDecisionRing(t *testing.T) {
	l := newDecisionLog(3)
	cands := []Candidate{backendCand(1, 1), backendCand(2, 1)}
	scores := []Score{{Eligible: true, Total: 1, Components: []Component{{"a", 1}}}, {ExcludedReason: "x"}}
	rec := func(i int) {
		d := l.slot()
		d.RequestID, d.UserID, d.Model = fmt.Sprint(i), int64(i%2), "m"
		for j := range cands {
			d.addCandidate(&cands[j], &scores[j])
		}
		l.commit()
	}
	require.Empty(t, l.list(DecisionFilter{}))
	for i := range 5 {
		rec(i)
	}
	ids := func(ds []Decision) (out []string) {
		for _, d := range ds {
			out = append(out, d.RequestID)
		}
		return out
	}
	require.Equal(t, []string{"4", "3", "2"}, ids(l.list(DecisionFilter{})))
	require.Equal(t, []string{"3"}, ids(l.list(DecisionFilter{UserID: 1})))
	require.Equal(t, []string{"4"}, ids(l.list(DecisionFilter{Limit: 1})))

	// Listing copies: the caller may keep and change what it got.
	got := l.list(DecisionFilter{Limit: 1})[0]
	got.Candidates[0].Components[0].Value = 99
	require.Equal(t, 1.0, l.list(DecisionFilter{Limit: 1})[0].Candidates[0].Components[0].Value)
	require.Len(t, got.Candidates, 2)

	// Once the ring is full, recording reuses the storage it overwrites.
	allocs := testing.AllocsPerRun(100, func() { rec(7) })
	require.Zero(t, allocs)
}

// screeningRegistry also says which backends its hard filters removed.
type screeningRegistry struct {
	*fakeRegistry
	removed []Exclusion
}

func (s screeningRegistry) Screen(model string, op controlplanev1.Operation, needs []controlplanev1.Capability) ([]Candidate, []Exclusion, error) {
	cands, err := s.Candidates(model, op, needs)
	return cands, s.removed, err
}

// TestDecisionListsRegistryExclusions: with a registry that screens, the backends
// its filters removed appear in the decision as not eligible, with its reason.
func TestDecisionListsRegistryExclusions(t *testing.T) {
	t.Parallel()
	reg := newFakeRegistry()
	reg.set("llama3", backendCand(1, 1))
	ident := &fakeIdentity{keys: map[string]Principal{userKey: {UserID: 42, Username: "ada", Inference: true, Weight: 2}}}
	srv, err := New(ident, screeningRegistry{reg, []Exclusion{{BackendID: 9, BackendName: "gpu9", Reason: "circuit open"}}},
		newTestQueue(t, scheduler.Options{}, nil, nil, nil), Options{})
	require.NoError(t, err)
	resp, err := srv.Admit(t.Context(), &controlplanev1.AdmitRequest{
		RequestId: "r", Credential: userKey, Model: "llama3", Operation: controlplanev1.Operation_OPERATION_CHAT, Attempt: 1,
	})
	require.NoError(t, err)
	require.Equal(t, int64(1), resp.GetLease().GetBackendId())
	d := srv.Decisions(DecisionFilter{})[0]
	require.Len(t, d.Candidates, 2)
	require.Equal(t, CandidateScore{BackendID: 9, Backend: "gpu9", Score: Score{ExcludedReason: "circuit open"}}, d.Candidates[1])
}
