package ctl_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/health/healthtest"
)

// ollamaShaped serves Ollama's pull and delete (streamed the way Ollama
// streams them) and, through healthtest, its discovery endpoints, whose model
// list follows the pulls and deletes.
func ollamaShaped(t *testing.T) *httptest.Server {
	eng := healthtest.NewOllama(t, "0.17.4")
	var mu sync.Mutex
	have := map[string]bool{}
	publish := func() {
		var ms []healthtest.Model
		for m := range have {
			ms = append(ms, healthtest.Model{Name: m, ContextLength: 2048})
		}
		eng.SetModels(ms...)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/pull", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Model string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		if strings.HasPrefix(req.Model, "nosuch") {
			fmt.Fprintln(w, `{"status":"pulling manifest"}`)
			fmt.Fprintln(w, `{"error":"pull model manifest: file does not exist"}`)
			return
		}
		fmt.Fprintln(w, `{"status":"pulling manifest"}`)
		for c := 0; c <= 1000; c += 125 {
			fmt.Fprintf(w, `{"status":"pulling 0123456789ab","digest":"sha256:0123456789ab","total":1000,"completed":%d}`+"\n", c)
			w.(http.Flusher).Flush()
			time.Sleep(150 * time.Millisecond)
		}
		fmt.Fprintln(w, `{"status":"success"}`)
		mu.Lock()
		have[req.Model] = true
		publish()
		mu.Unlock()
	})
	mux.HandleFunc("DELETE /api/delete", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Model string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		defer mu.Unlock()
		if !have[req.Model] {
			http.Error(w, fmt.Sprintf(`{"error":"model '%s' not found"}`, req.Model), http.StatusNotFound)
			return
		}
		delete(have, req.Model)
		publish()
	})
	mux.Handle("/", eng.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestCLIModelPullAndDelete pulls and deletes through mindrouterctl against
// the real control plane, following the jobs on the terminal, and watches a
// job over REST as newline-delimited JSON.
func TestCLIModelPullAndDelete(t *testing.T) {
	t.Parallel()
	ol := ollamaShaped(t)
	addr, restAddr, key := startControlPlaneREST(t, "-model-pull-backoff", "100ms", "-model-job-progress-interval", "100ms")
	env := []string{"MINDROUTER_ADDR=" + addr, "MINDROUTER_API_KEY=" + key}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := ctl(t, env, args...)
		require.Equal(t, 0, code, "mindrouterctl %v: %s", args, errOut)
		return out
	}
	run("backends", "register", "--name", "o1", "--url", ol.URL, "--engine", "ollama")

	out := run("models", "pull", "--backend", "o1", "tiny:latest")
	assert.Contains(t, out, "queued")
	assert.Regexp(t, `(?m)^running\s+pulling 0123456789ab\s+\d+\.\d% \(`, out, "progress lines")
	assert.Regexp(t, `(?m)^succeeded\s+success`, out)
	assert.Contains(t, run("models", "list"), "tiny:latest", "discovery ran after the pull")
	jobs := run("models", "jobs", "--state", "succeeded")
	assert.Regexp(t, `(?m)^\d+\s+pull\s+o1\s+tiny:latest\s+succeeded`, jobs)

	_, errOut, code := ctl(t, env, "models", "pull", "--backend", "o1", "nosuch:latest")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "failed: ollama: pull model manifest: file does not exist")
	_, errOut, code = ctl(t, env, "models", "pull", "--backend", "nope", "tiny:latest")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "NotFound: ")

	// Detached: the job is printed queued; REST watches it to the end.
	out = run("models", "delete", "--backend", "o1", "tiny:latest", "--detach", "-o", "json")
	var queued struct{ Job struct{ ID, State string } }
	require.NoError(t, json.Unmarshal([]byte(out), &queued), out)
	assert.Equal(t, "queued", queued.Job.State)
	req, err := http.NewRequest(http.MethodGet, "http://"+restAddr+"/api/admin/model-jobs/"+queued.Job.ID+"/watch", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var states []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var line struct {
			Result struct{ Job struct{ State string } }
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), "one JSON object a line: %q", sc.Text())
		states = append(states, line.Result.Job.State)
	}
	require.NotEmpty(t, states)
	assert.Equal(t, "succeeded", states[len(states)-1], states)
	assert.NotContains(t, run("models", "list"), "tiny:latest", "discovery ran after the delete")
	assert.Contains(t, run("models", "job", queued.Job.ID), "deleted")

	// The admin-action trail has the pull and the delete.
	actions := run("audit", "actions", "--action", "model_job.create")
	assert.GreaterOrEqual(t, strings.Count(actions, "model_job.create"), 3, actions)
}
