package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

type decisionJSON struct {
	RequestID     string `json:"request_id"`
	Attempt       int    `json:"attempt"`
	ChosenBackend string `json:"chosen_backend"`
	Candidates    []struct {
		Backend        string  `json:"backend"`
		Eligible       bool    `json:"eligible"`
		ExcludedReason string  `json:"excluded_reason"`
		Total          float64 `json:"total"`
	} `json:"candidates"`
}

type queueJSON struct {
	Backends []struct {
		Name    string `json:"name"`
		Circuit string `json:"circuit"`
	} `json:"backends"`
}

// TestBackendKilledIsFailedOverAndItsCircuitOpens kills the backend the scheduler
// prefers while requests keep coming: every client request still succeeds (the
// data plane retries on the other backend before the first byte), the control
// plane's circuit breaker opens on the dead backend after three live failures, and
// from then on the dead backend is not even tried.
func TestBackendKilledIsFailedOverAndItsCircuitOpens(t *testing.T) {
	t.Parallel()
	model := []enginesim.ModelSpec{{Name: "sim-failover", ContextLength: 4096}}
	doomedCtx, kill := context.WithCancel(context.Background())
	doomed, doomedURL, err := enginesim.Listen(doomedCtx, "127.0.0.1:0", enginesim.Config{Engine: enginesim.EngineVLLM, Models: model, CompletionTokens: 4})
	require.NoError(t, err)
	t.Cleanup(func() { kill(); <-doomed.Done() })
	_, spareURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, Models: model, CompletionTokens: 4})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{
		{Name: "doomed", Engine: "vllm", URL: doomedURL},
		{Name: "spare", Engine: "vllm", URL: spareURL},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The admin prefers the doomed backend: priority is worth 10 points a step.
	var backends []backendJSON
	status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/backends", nil, &backends)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	var doomedID string
	for _, b := range backends {
		if b.Name == "doomed" {
			doomedID = b.ID
		}
	}
	require.NotEmpty(t, doomedID)
	status, err = c.AdminJSON(ctx, c.RESTURL, http.MethodPatch, "/api/admin/backends/"+doomedID, map[string]any{"priority": 5}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)

	client := openaiClient(c, c.AdminKey)
	chat := func() {
		t.Helper()
		resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "sim-failover", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(4),
		})
		require.NoError(t, err, c.Logs())
		require.NotEmpty(t, resp.Choices[0].Message.Content)
	}
	decisions := func(limit string) []decisionJSON {
		t.Helper()
		var ds []decisionJSON
		status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/scheduler/decisions?limit="+limit, nil, &ds)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		return ds
	}
	circuit := func(name string) string {
		t.Helper()
		var q queueJSON
		status, err := c.AdminJSON(ctx, c.RESTURL, http.MethodGet, "/api/admin/queue", nil, &q)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		for _, b := range q.Backends {
			if b.Name == name {
				return b.Circuit
			}
		}
		return ""
	}

	chat()
	require.Equal(t, "doomed", decisions("1")[0].ChosenBackend, "the preferred backend serves while alive")
	require.Equal(t, "closed", circuit("doomed"))

	kill()
	<-doomed.Done()
	for range 3 {
		chat()
	}
	// Each of the three went to the doomed backend first and was failed over.
	ds := decisions("6")
	require.Len(t, ds, 6)
	for i := 0; i < 6; i += 2 {
		retry, first := ds[i], ds[i+1] // newest first
		require.Equal(t, first.RequestID, retry.RequestID)
		require.Equal(t, [2]any{1, "doomed"}, [2]any{first.Attempt, first.ChosenBackend})
		require.Equal(t, [2]any{2, "spare"}, [2]any{retry.Attempt, retry.ChosenBackend})
	}
	// Releases travel asynchronously (batched on the replica's session), so the
	// third failure may reach the control plane just after the client's answer.
	state := circuit("doomed")
	for deadline := time.Now().Add(5 * time.Second); state != "open" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		state = circuit("doomed")
	}
	require.Equal(t, "open", state, "three live failures open the circuit\n%s", c.Logs())

	// With the circuit open the doomed backend is not tried at all.
	chat()
	last := decisions("1")[0]
	require.Equal(t, 1, last.Attempt)
	require.Equal(t, "spare", last.ChosenBackend)
	var seen bool
	for _, cand := range last.Candidates {
		if cand.Backend == "doomed" {
			seen = true
			require.False(t, cand.Eligible)
			require.Contains(t, []string{"circuit open", "backend unhealthy"}, cand.ExcludedReason)
		}
	}
	require.True(t, seen, "the decision says why the doomed backend was passed over")
}
