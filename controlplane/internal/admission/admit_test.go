package admission

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

func TestAdmitLeaseFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		modelCtx     int64
		capCtx       int64
		prompt       int64
		maxOut       int64
		wantCtx      int64
		wantMaxOut   int64
		wantSimulate bool
	}{
		{name: "cap below model maximum", modelCtx: 8192, capCtx: 4096, prompt: 1000, maxOut: 8000, wantCtx: 4096, wantMaxOut: 3096},
		{name: "requested output fits", modelCtx: 8192, prompt: 1000, maxOut: 500, wantCtx: 8192, wantMaxOut: 500},
		{name: "no output limit asked", modelCtx: 8192, prompt: 1000, wantCtx: 8192, wantMaxOut: 0},
		{name: "unknown model window takes the cap", capCtx: 2048, prompt: 10, maxOut: 4000, wantCtx: 2048, wantMaxOut: 2038},
		{name: "nothing known", prompt: 10, maxOut: 4000, wantCtx: 0, wantMaxOut: 4000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := backendCand(3, 2)
			c.ContextLength = tt.modelCtx
			c.Simulated = true
			c.Model = "llama3:8b"
			h := newHarness(t, Options{LeaseTTL: 20 * time.Second}, c)
			h.reg.mu.Lock()
			h.reg.cap = tt.capCtx
			h.reg.mu.Unlock()

			req := h.admitReq("req-1")
			req.PromptTokensEstimate, req.MaxOutputTokens, req.ReplicaId = tt.prompt, tt.maxOut, "dp-1"
			resp, err := h.admit.Admit(t.Context(), req)
			require.NoError(t, err)
			l := resp.GetLease()
			require.Len(t, l.GetLeaseId(), 32)
			assert.Equal(t, "req-1", l.GetRequestId())
			assert.Equal(t, int64(3), l.GetBackendId())
			assert.Equal(t, "gpu3", l.GetBackendName())
			assert.Equal(t, "http://gpu3:11434", l.GetBackendUrl())
			assert.Equal(t, controlplanev1.Engine_ENGINE_OLLAMA, l.GetEngine())
			assert.Equal(t, "llama3:8b", l.GetModel())
			assert.Equal(t, tt.wantCtx, l.GetContextLength())
			assert.Equal(t, tt.wantMaxOut, l.GetMaxOutputTokens())
			assert.Equal(t, h.clock.Now().Add(20*time.Second), l.GetExpiresAt().AsTime())
			assert.True(t, l.GetSimulated())
			assert.Equal(t, int64(42), l.GetPrincipal().GetUserId())
			assert.Equal(t, "ada", l.GetPrincipal().GetUsername())
			assert.Equal(t, int64(7), l.GetPrincipal().GetApiKeyId())
			assert.Equal(t, "faculty", l.GetPrincipal().GetGroup())
			assert.Zero(t, resp.GetQueuePosition())
			assert.Zero(t, resp.GetQueued().AsDuration())
			assert.Equal(t, 1, h.queue.InFlight(3))
			assert.Equal(t, 1.0, h.metricValue(t, "mindrouter_leases_in_flight", map[string]string{"backend": "gpu3"}))
			assert.Equal(t, 1.0, h.metricValue(t, "mindrouter_admissions_total", map[string]string{"result": "granted"}))
		})
	}
}

func TestAdmitRefusalsHoldNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		edit      func(*controlplanev1.AdmitRequest)
		code      codes.Code
		retry     bool
		wantLabel string
	}{
		{"invalid credential", func(r *controlplanev1.AdmitRequest) { r.Credential = "mr2_nope" }, codes.Unauthenticated, false, "refused"},
		{"no inference scope", func(r *controlplanev1.AdmitRequest) { r.Credential = readOnlyKey }, codes.PermissionDenied, false, "denied"},
		{"unknown model", func(r *controlplanev1.AdmitRequest) { r.Model = "nope" }, codes.NotFound, false, "refused"},
		{"every backend excluded", func(r *controlplanev1.AdmitRequest) { r.ExcludedBackendIds = []int64{1, 2} }, codes.Unavailable, true, "no_backend"},
		{"prompt fills the window", func(r *controlplanev1.AdmitRequest) { r.PromptTokensEstimate = 8192 }, codes.InvalidArgument, false, "context_exceeded"},
		{"missing request id", func(r *controlplanev1.AdmitRequest) { r.RequestId = "" }, codes.InvalidArgument, false, "invalid"},
		{"missing model", func(r *controlplanev1.AdmitRequest) { r.Model = "" }, codes.InvalidArgument, false, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Options{}, backendCand(1, 1), backendCand(2, 1))
			req := h.admitReq("r")
			tt.edit(req)
			_, err := h.admit.Admit(t.Context(), req)
			require.Equal(t, tt.code, status.Code(err), "error: %v", err)
			if tt.retry {
				require.Equal(t, allExcludedRetryAfter, retryAfterOf(err))
			}
			require.Zero(t, h.queue.InFlight(1)+h.queue.InFlight(2))
			require.Zero(t, h.srv.leases.count())
			require.Equal(t, 1.0, h.metricValue(t, "mindrouter_admissions_total", map[string]string{"result": tt.wantLabel}))
		})
	}
}

func TestAdmitErrorsPassThrough(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1))
	req := h.admitReq("r")
	req.Credential = "bad"
	_, err := h.srv.Admit(t.Context(), req)
	require.ErrorIs(t, err, errInvalidCredential)
	req = h.admitReq("r")
	req.Model = "nope"
	_, err = h.srv.Admit(t.Context(), req)
	require.ErrorIs(t, err, errModelNotFound)
	req = h.admitReq("r")
	req.PromptTokensEstimate = 9000
	_, err = h.srv.Admit(t.Context(), req)
	require.ErrorIs(t, err, ErrContextExceeded)
}

func TestExcludedBackendIsSkipped(t *testing.T) {
	t.Parallel()
	best := backendCand(1, 4)
	best.Loaded = true
	h := newHarness(t, Options{}, best, backendCand(2, 4))

	resp, err := h.admit.Admit(t.Context(), h.admitReq("a"))
	require.NoError(t, err)
	require.Equal(t, int64(1), resp.GetLease().GetBackendId(), "the loaded backend scores best")

	retry := h.admitReq("a")
	retry.Attempt, retry.ExcludedBackendIds = 2, []int64{1}
	resp, err = h.admit.Admit(t.Context(), retry)
	require.NoError(t, err)
	require.Equal(t, int64(2), resp.GetLease().GetBackendId())
}

func TestPickScoring(t *testing.T) {
	t.Parallel()
	c := func(id int64, slots, prio int, loaded bool) Candidate {
		return Candidate{BackendID: id, MaxConcurrent: slots, Priority: prio, Loaded: loaded}
	}
	tests := []struct {
		name  string
		cands []Candidate
		load  map[int64]int
		want  int
	}{
		{"loaded first", []Candidate{c(1, 4, 9, false), c(2, 4, 0, true)}, nil, 1},
		{"then priority", []Candidate{c(1, 4, 0, true), c(2, 4, 1, true)}, nil, 1},
		{"then lowest share in use", []Candidate{c(1, 2, 0, false), c(2, 8, 0, false)}, map[int64]int{1: 1, 2: 2}, 1},
		{"ties keep order", []Candidate{c(1, 2, 0, false), c(2, 2, 0, false)}, nil, 0},
		{"full backends are skipped", []Candidate{c(1, 2, 5, true), c(2, 2, 0, false)}, map[int64]int{1: 2}, 1},
		{"all full", []Candidate{c(1, 1, 0, false), c(2, 0, 0, false)}, map[int64]int{1: 1, 2: 1}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := make([]Score, len(tt.cands))
			got, trial := choose(SlotScorer{}, nil, ScoreInput{Candidates: tt.cands, Load: loadMap(tt.load)}, out)
			require.Equal(t, tt.want, got)
			require.False(t, trial)
			for i, c := range tt.cands {
				full := tt.load[c.BackendID] >= slotLimit(c.MaxConcurrent)
				assert.Equal(t, !full, out[i].Eligible, "candidate %d", i)
				if full {
					assert.Equal(t, reasonFull, out[i].ExcludedReason)
				}
			}
		})
	}
}

type loadMap map[int64]int

func (l loadMap) InFlight(id int64) int { return l[id] }

// TestMaxConcurrentUnderLoad sends 50 concurrent Admits at 2 backends of 2 slots:
// never more than 2 leases per backend, and every request is served.
func TestMaxConcurrentUnderLoad(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 2), backendCand(2, 2))
	var mu sync.Mutex
	held := map[int64]int{}
	var peak int
	var served atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			resp, err := h.admit.Admit(t.Context(), h.admitReq(fmt.Sprintf("r%d", i)))
			if !assert.NoError(t, err) {
				return
			}
			id := resp.GetLease().GetBackendId()
			mu.Lock()
			held[id]++
			assert.LessOrEqual(t, held[id], 2, "backend %d over its max_concurrent", id)
			peak = max(peak, held[1]+held[2])
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			held[id]--
			mu.Unlock()
			_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{
				LeaseId: resp.GetLease().GetLeaseId(), Outcome: controlplanev1.Outcome_OUTCOME_SUCCESS,
			})
			assert.NoError(t, err)
			served.Add(1)
		})
	}
	wg.Wait()
	require.Equal(t, int32(50), served.Load())
	require.LessOrEqual(t, peak, 4)
	require.Zero(t, h.queue.InFlight(1)+h.queue.InFlight(2))
	require.Zero(t, h.queueDepth())
	require.Zero(t, h.metricValue(t, "mindrouter_leases_in_flight", map[string]string{"backend": "gpu1"}))
}

// TestFIFOOrderForOneModel fills every slot, queues requests one by one, and frees
// slots one at a time: the queued requests get them in arrival order.
func TestFIFOOrderForOneModel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 2), backendCand(2, 2))
	var leases []string
	for i := range 4 {
		resp, err := h.admit.Admit(t.Context(), h.admitReq(fmt.Sprintf("busy%d", i)))
		require.NoError(t, err)
		leases = append(leases, resp.GetLease().GetLeaseId())
	}
	type granted struct {
		i    int
		resp *controlplanev1.AdmitResponse
	}
	const n = 10
	out := make(chan granted, n)
	for i := range n {
		go func() {
			resp, err := h.admit.Admit(t.Context(), h.admitReq(fmt.Sprintf("wait%d", i)))
			assert.NoError(t, err)
			out <- granted{i, resp}
		}()
		h.waitDepth(t, i+1)
	}
	for want := range n {
		_, err := h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: leases[0]})
		require.NoError(t, err)
		leases = leases[1:]
		g := <-out
		require.Equal(t, want, g.i)
		require.Equal(t, int32(want+1), g.resp.GetQueuePosition())
		require.Equal(t, fmt.Sprintf("wait%d", want), g.resp.GetLease().GetRequestId())
		leases = append(leases, g.resp.GetLease().GetLeaseId())
	}
}

func TestCancelledAdmitLeavesTheQueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1))
	resp, err := h.admit.Admit(t.Context(), h.admitReq("busy"))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.admit.Admit(ctx, h.admitReq("gives-up"))
		errc <- err
	}()
	h.waitDepth(t, 1)
	require.Equal(t, 1.0, h.metricValue(t, "mindrouter_queue_depth", map[string]string{"model": "llama3"}))
	cancel()
	require.Equal(t, codes.Canceled, status.Code(<-errc))
	h.waitDepth(t, 0)
	require.Zero(t, h.metricValue(t, "mindrouter_queue_depth", map[string]string{"model": "llama3"}))

	// The freed slot is not owed to the cancelled request.
	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: resp.GetLease().GetLeaseId()})
	require.NoError(t, err)
	require.Zero(t, h.queue.InFlight(1))
}

func TestQueueFullAndTimeout(t *testing.T) {
	t.Parallel()
	h := newHarnessQueue(t, Options{}, harnessQueue{queue: scheduler.Options{
		MaxQueuePerModel: 1, QueueTimeout: 100 * time.Millisecond, RetryAfter: 7 * time.Second,
	}}, backendCand(1, 1))
	_, err := h.admit.Admit(t.Context(), h.admitReq("busy"))
	require.NoError(t, err)

	errc := make(chan error, 1)
	go func() {
		_, err := h.admit.Admit(t.Context(), h.admitReq("waits"))
		errc <- err
	}()
	h.waitDepth(t, 1)
	_, err = h.admit.Admit(t.Context(), h.admitReq("no-room"))
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.Equal(t, 7*time.Second, retryAfterOf(err))

	err = <-errc
	require.Equal(t, codes.Unavailable, status.Code(err), "error: %v", err)
	require.Equal(t, 7*time.Second, retryAfterOf(err))
	require.Zero(t, h.queueDepth())
	require.Equal(t, 1, h.queue.InFlight(1))
	require.Equal(t, 1.0, h.metricValue(t, "mindrouter_admissions_total", map[string]string{"result": "queue_full"}))
	require.Equal(t, 1.0, h.metricValue(t, "mindrouter_admissions_total", map[string]string{"result": "queue_timeout"}))
}

func TestRegistryChangeWakesWaiters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 1))
	_, err := h.admit.Admit(t.Context(), h.admitReq("busy"))
	require.NoError(t, err)
	type res struct {
		resp *controlplanev1.AdmitResponse
		err  error
	}
	out := make(chan res, 1)
	go func() {
		resp, err := h.admit.Admit(t.Context(), h.admitReq("waits"))
		out <- res{resp, err}
	}()
	h.waitDepth(t, 1)

	h.reg.set("llama3", backendCand(1, 1), backendCand(9, 1)) // a backend joins
	r := <-out
	require.NoError(t, r.err)
	require.Equal(t, int64(9), r.resp.GetLease().GetBackendId())

	go func() {
		resp, err := h.admit.Admit(t.Context(), h.admitReq("waits-again"))
		out <- res{resp, err}
	}()
	h.waitDepth(t, 1)
	h.reg.set("llama3") // the model disappears
	require.Equal(t, codes.NotFound, status.Code((<-out).err))
}

func TestLeaseCapsOutputAtTheReservationForBudgetedUsers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{DefaultMaxTokens: 300}, backendCand(1, 8))
	h.ident.add("mr2_budget", Principal{UserID: 50, Username: "cy", APIKeyID: 9, Inference: true, Weight: 1, TokenBudget: 50_000})
	tests := []struct {
		name       string
		credential string
		maxTokens  int64
		want       int64
	}{
		{"budget, no client limit: the allowance", "mr2_budget", 0, 300},
		{"budget, client limit: the client's", "mr2_budget", 120, 120},
		{"no budget, no client limit: none", userKey, 0, 0},
		{"client limit beyond the window: what the window leaves", userKey, 9000, 8192 - 100},
	}
	for i, tt := range tests {
		req := h.admitReq(fmt.Sprintf("r%d", i))
		req.Credential, req.MaxOutputTokens, req.PromptTokensEstimate = tt.credential, tt.maxTokens, 100
		resp, err := h.admit.Admit(t.Context(), req)
		require.NoError(t, err, tt.name)
		require.Equal(t, tt.want, resp.GetLease().GetMaxOutputTokens(), tt.name)
	}
}
