package admission

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

type fakeQuota map[int64][4]int64

func (f fakeQuota) Usage(userID int64) (used, reserved, budget int64, rpm int) {
	u := f[userID]
	return u[0], u[1], u[2], int(u[3])
}

type fakeCircuits map[int64]string

func (f fakeCircuits) Circuit(backendID int64) string { return f[backendID] }

type fakeBackends []BackendInfo

func (f fakeBackends) Backends() []BackendInfo { return f }

// TestGetQueue shows waiting and in-flight requests per model, user and backend
// over gRPC, with the quota and circuit views filled in.
func TestGetQueue(t *testing.T) {
	t.Parallel()
	admin := AdminOptions{
		Quota:    fakeQuota{42: {1000, 1100, 500_000, 3}},
		Circuits: fakeCircuits{5: "open"},
		Backends: fakeBackends{{ID: 1, Name: "gpu1", MaxConcurrent: 1}, {ID: 5, Name: "gpu5", MaxConcurrent: 8}},
	}
	h := newHarnessWith(t, Options{}, admin, harnessQueue{}, backendCand(1, 1))
	held, err := h.admit.Admit(t.Context(), h.admitReq("a"))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := h.admit.Admit(t.Context(), h.admitReq("b"))
		done <- err
	}()
	h.waitDepth(t, 1)
	h.clock.Advance(2 * time.Second)

	got, err := h.sched.GetQueue(t.Context(), &adminv1.GetQueueRequest{})
	require.NoError(t, err)
	users := got.GetUsers()
	require.Len(t, users, 1)
	// The deficit and burst credits are the pool's own arithmetic (package
	// fairshare tests it); here they only pass through.
	want := &adminv1.GetQueueResponse{
		TotalWaiting:  1,
		TotalInFlight: 1,
		Models:        []*adminv1.ModelQueue{{Model: "llama3", Waiting: 1, InFlight: 1, OldestWait: durationpb.New(2 * time.Second)}},
		Users: []*adminv1.UserShare{{
			UserId: 42, Username: "ada", Weight: 2, Deficit: users[0].GetDeficit(), BurstCredits: users[0].GetBurstCredits(),
			RecentTokens: 1100, Penalty: 1, Waiting: 1, InFlight: 1,
			TokensUsed: 1000, TokensReserved: 1100, TokenBudget: 500_000, RequestsLastMinute: 3,
		}},
		Backends: []*adminv1.BackendLoad{
			{BackendId: 1, Name: "gpu1", InFlight: 1, MaxConcurrent: 1, Circuit: "closed"},
			{BackendId: 5, Name: "gpu5", MaxConcurrent: 8, Circuit: "open"},
		},
		FairnessWindow: durationpb.New(300 * time.Second),
	}
	require.True(t, proto.Equal(want, got), "got %v", got)

	_, err = h.admit.Release(t.Context(), &controlplanev1.ReleaseRequest{LeaseId: held.GetLease().GetLeaseId()})
	require.NoError(t, err)
	require.NoError(t, <-done)
	got, err = h.sched.GetQueue(t.Context(), &adminv1.GetQueueRequest{})
	require.NoError(t, err)
	require.Zero(t, got.GetTotalWaiting())
	require.Equal(t, int64(1), got.GetTotalInFlight())
	require.Len(t, got.GetModels(), 1)
	require.True(t, proto.Equal(&adminv1.ModelQueue{Model: "llama3", InFlight: 1}, got.GetModels()[0]), "got %v", got.GetModels()[0])
}

// TestSchedulerREST serves the queue view and the decisions at the original REST
// paths through the gateway.
func TestSchedulerREST(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{}, backendCand(1, 2))
	_, err := h.admit.Admit(t.Context(), h.admitReq("a"))
	require.NoError(t, err)
	_, err = h.admit.Admit(t.Context(), h.admitReq("b"))
	require.NoError(t, err)

	mux := runtime.NewServeMux()
	require.NoError(t, adminv1.RegisterSchedulerServiceHandlerClient(t.Context(), mux, h.sched))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	get := func(path string, into any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		require.NoError(t, json.Unmarshal(body, into), "%s", body)
	}
	var queue struct {
		TotalInFlight string `json:"totalInFlight"`
		Models        []struct {
			Model    string `json:"model"`
			InFlight int    `json:"inFlight"`
		} `json:"models"`
	}
	get("/api/admin/queue", &queue)
	require.Equal(t, "2", queue.TotalInFlight)
	require.Len(t, queue.Models, 1)
	require.Equal(t, 2, queue.Models[0].InFlight)

	var decisions []struct {
		RequestID string `json:"requestId"`
	}
	get("/api/admin/scheduler/decisions?limit=1&user_id=42", &decisions)
	require.Len(t, decisions, 1)
	require.Equal(t, "b", decisions[0].RequestID)
}
