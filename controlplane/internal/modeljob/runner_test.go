package modeljob_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/health"
	"github.com/mindrouter/mindrouter/controlplane/internal/health/healthtest"
	"github.com/mindrouter/mindrouter/controlplane/internal/modeljob"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// ollama is an HTTP server shaped like Ollama: /api/pull and /api/delete are
// the test's, every discovery endpoint is healthtest's imitation, whose model
// list a successful pull or delete changes.
type ollama struct {
	eng    *healthtest.Engine
	srv    *httptest.Server
	pulls  atomic.Int32
	delets atomic.Int32
	// pull answers the n-th pull (1-based); when it returns true the model
	// is added and the success line written.
	pull func(w http.ResponseWriter, r *http.Request, n int) bool
	mu   sync.Mutex
	have map[string]bool
}

func newOllama(t *testing.T, models ...string) *ollama {
	o := &ollama{eng: healthtest.NewOllama(t, "0.17.4"), have: map[string]bool{}}
	for _, m := range models {
		o.have[m] = true
	}
	o.sync()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/pull", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		if json.NewDecoder(r.Body).Decode(&req) != nil || req.Model == "" || !req.Stream {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		if o.pull(w, r, int(o.pulls.Add(1))) {
			// Like Ollama, the model is in place before it says success.
			o.mu.Lock()
			o.have[req.Model] = true
			o.mu.Unlock()
			o.sync()
			lines(w, 0, `{"status":"success"}`)
		}
	})
	mux.HandleFunc("DELETE /api/delete", func(w http.ResponseWriter, r *http.Request) {
		o.delets.Add(1)
		var req struct {
			Model string `json:"model"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		o.mu.Lock()
		found := o.have[req.Model]
		delete(o.have, req.Model)
		o.mu.Unlock()
		if !found {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":"model '%s' not found"}`, req.Model)
			return
		}
		o.sync()
	})
	mux.Handle("/", o.eng.Handler())
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	return o
}

func (o *ollama) sync() {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ms []healthtest.Model
	for m := range o.have {
		ms = append(ms, healthtest.Model{Name: m, ContextLength: 2048})
	}
	o.eng.SetModels(ms...)
}

// lines writes Ollama's pull stream lines, flushing each, pause apart.
func lines(w http.ResponseWriter, pause time.Duration, ls ...string) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	for _, l := range ls {
		_, _ = fmt.Fprintln(w, l)
		w.(http.Flusher).Flush()
		time.Sleep(pause)
	}
}

// progressLines are a layer's lines from done to total by step.
func progressLines(digest string, total, step int64) []string {
	var out []string
	for c := int64(0); c <= total; c += step {
		out = append(out, fmt.Sprintf(`{"status":"pulling %s","digest":"sha256:%s","total":%d,"completed":%d}`, digest[:12], digest, total, c))
	}
	return out
}

const digest = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

func successfulPull(w http.ResponseWriter) bool {
	ls := append([]string{`{"status":"pulling manifest"}`}, progressLines(digest, 4000, 100)...)
	ls = append(ls, `{"status":"verifying sha256 digest"}`, `{"status":"writing manifest"}`)
	lines(w, 5*time.Millisecond, ls...)
	return true
}

// countingStore counts progress writes.
type countingStore struct {
	*store.Store
	reports atomic.Int32
}

func (c *countingStore) ReportModelJob(ctx context.Context, id int64, p store.ModelJobProgress) error {
	c.reports.Add(1)
	return c.Store.ReportModelJob(ctx, id, p)
}

type fixture struct {
	st      *countingStore
	reg     *registry.Registry
	ollama  *ollama
	runner  *modeljob.Runner
	svc     *modeljob.Service
	metrics *prometheus.Registry
	backend registry.Backend
}

func newFixture(t *testing.T, models ...string) *fixture {
	ctx := t.Context()
	f := &fixture{st: &countingStore{Store: storetest.SQLite(t)}, ollama: newOllama(t, models...), metrics: prometheus.NewRegistry()}
	f.reg = registry.New(f.st.Store, registry.Options{Prober: health.NewProber(nil, nil)})
	require.NoError(t, f.reg.Load(ctx))
	var err error
	f.backend, _, err = f.reg.RegisterBackend(ctx, store.BackendSpec{Name: "ollama-1", URL: f.ollama.srv.URL, Engine: "ollama"}, false)
	require.NoError(t, err)
	f.runner = f.newRunner(f.metrics)
	f.svc = modeljob.NewService(f.st.Store, f.reg, f.runner, modeljob.ServiceOptions{MaxAttempts: 3, WatchInterval: 10 * time.Millisecond})
	return f
}

func (f *fixture) newRunner(metrics prometheus.Registerer) *modeljob.Runner {
	return modeljob.NewRunner(f.st, f.reg, modeljob.Options{Backoff: 20 * time.Millisecond, ProgressInterval: 50 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, ReadTimeout: 2 * time.Second, Registerer: metrics})
}

// run runs r until the test ends.
func run(t *testing.T, r *modeljob.Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// wait polls the job until cond holds.
func (f *fixture) wait(t *testing.T, id int64, cond func(store.ModelJob) bool) store.ModelJob {
	t.Helper()
	var j store.ModelJob
	require.Eventually(t, func() bool {
		var err error
		j, err = f.st.GetModelJob(t.Context(), id)
		require.NoError(t, err)
		return cond(j)
	}, 10*time.Second, 10*time.Millisecond, "job %d never got there: %+v", id, j)
	return j
}

func finished(j store.ModelJob) bool { return j.Finished() }

func (f *fixture) pull(t *testing.T, model string) int64 {
	resp, err := f.svc.PullModel(t.Context(), &adminv1.PullModelRequest{Backend: "ollama-1", Model: model})
	require.NoError(t, err)
	require.Equal(t, store.ModelJobQueued, resp.GetJob().GetState())
	return resp.GetJob().GetId()
}

func (f *fixture) models(t *testing.T) []string {
	var out []string
	for _, m := range f.reg.ListModels() {
		if m.BackendID == f.backend.ID {
			out = append(out, m.Name)
		}
	}
	return out
}

// watcher collects what WatchModelJob sends.
type watcher struct {
	grpc.ServerStream
	ctx  context.Context
	mu   sync.Mutex
	sent []*adminv1.ModelJob
}

func (w *watcher) Context() context.Context { return w.ctx }
func (w *watcher) Send(r *adminv1.WatchModelJobResponse) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent = append(w.sent, r.GetJob())
	return nil
}

// A pull streams progress to a watcher, writes it throttled (far fewer
// writes than Ollama's lines), succeeds at Ollama's "success", and the
// backend's models are rediscovered.
func TestPullProgressAndDiscovery(t *testing.T) {
	f := newFixture(t)
	f.ollama.pull = func(w http.ResponseWriter, _ *http.Request, _ int) bool { return successfulPull(w) }
	id := f.pull(t, "tiny:latest")
	w := &watcher{ctx: t.Context()}
	watched := make(chan error, 1)
	go func() { watched <- f.svc.WatchModelJob(&adminv1.WatchModelJobRequest{Id: id}, w) }()
	run(t, f.runner)

	j := f.wait(t, id, finished)
	assert.Equal(t, store.ModelJobSucceeded, j.State, j.Error)
	assert.Equal(t, 1, j.Attempts)
	assert.Equal(t, "success", j.Status)
	assert.Equal(t, int64(4000), j.Total)
	assert.Equal(t, int64(4000), j.Completed)
	assert.NotNil(t, j.StartedAt)
	assert.NotNil(t, j.FinishedAt)
	assert.Contains(t, f.models(t), "tiny:latest")
	// 45 lines over ~225 ms at one write per 50 ms, plus the steps.
	assert.Less(t, int(f.st.reports.Load()), 20, "progress writes are throttled")
	assert.Positive(t, int(f.st.reports.Load()))

	require.NoError(t, <-watched)
	w.mu.Lock()
	defer w.mu.Unlock()
	require.NotEmpty(t, w.sent)
	assert.Contains(t, []string{store.ModelJobQueued, store.ModelJobRunning}, w.sent[0].GetState())
	assert.Equal(t, store.ModelJobSucceeded, w.sent[len(w.sent)-1].GetState())
	partial := false
	for _, s := range w.sent {
		if s.GetState() == store.ModelJobRunning && s.GetCompletedBytes() > 0 && s.GetCompletedBytes() < s.GetTotalBytes() {
			partial = true
		}
	}
	assert.True(t, partial, "the watcher saw the pull part-way")
	assert.InDelta(t, 1, counter(t, f, "pull", "succeeded"), 0)
}

func counter(t *testing.T, f *fixture, kind, result string) float64 {
	t.Helper()
	mfs, err := f.metrics.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "mindrouter_model_jobs_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no mindrouter_model_jobs_total{kind=%q,result=%q}", kind, result)
	return 0
}

// A stream broken part-way is retried after the backoff, and the retry
// succeeds.
func TestPullRetriesAfterBrokenStream(t *testing.T) {
	f := newFixture(t)
	f.ollama.pull = func(w http.ResponseWriter, _ *http.Request, n int) bool {
		if n == 1 {
			lines(w, 0, append([]string{`{"status":"pulling manifest"}`}, progressLines(digest, 4000, 1000)[:2]...)...)
			panic(http.ErrAbortHandler) // the connection drops mid-stream
		}
		return successfulPull(w)
	}
	id := f.pull(t, "tiny:latest")
	run(t, f.runner)
	j := f.wait(t, id, finished)
	assert.Equal(t, store.ModelJobSucceeded, j.State, j.Error)
	assert.Equal(t, 2, j.Attempts)
	assert.Empty(t, j.Error, "the earlier attempt's error is cleared on success")
	assert.Equal(t, int32(2), f.ollama.pulls.Load())
}

// An error line saying the model does not exist fails the job at once; a
// transient one is retried until the attempts run out.
func TestPullErrorLines(t *testing.T) {
	f := newFixture(t)
	f.ollama.pull = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		lines(w, 0, `{"status":"pulling manifest"}`, `{"error":"pull model manifest: file does not exist"}`)
		return false
	}
	run(t, f.runner)
	id := f.pull(t, "nosuch:latest")
	j := f.wait(t, id, finished)
	assert.Equal(t, store.ModelJobFailed, j.State)
	assert.Equal(t, 1, j.Attempts)
	assert.Contains(t, j.Error, "file does not exist")
	assert.Equal(t, int32(1), f.ollama.pulls.Load())

	f.ollama.pull = func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		lines(w, 0, `{"status":"pulling manifest"}`, `{"error":"max retries exceeded: unexpected EOF"}`)
		return false
	}
	f.ollama.pulls.Store(0)
	id = f.pull(t, "flaky:latest")
	j = f.wait(t, id, finished)
	assert.Equal(t, store.ModelJobFailed, j.State)
	assert.Equal(t, 3, j.Attempts)
	assert.Contains(t, j.Error, "max retries exceeded")
	assert.Equal(t, int32(3), f.ollama.pulls.Load())
	assert.NotContains(t, f.models(t), "flaky:latest")
}

// Cancelling a running pull ends Ollama's request and records the job
// cancelled; cancelling a queued job needs no runner at all.
func TestCancel(t *testing.T) {
	f := newFixture(t)
	ended := make(chan struct{})
	f.ollama.pull = func(w http.ResponseWriter, r *http.Request, _ int) bool {
		for _, l := range progressLines(digest, 1<<30, 1<<20) {
			select {
			case <-r.Context().Done():
				close(ended)
				return false
			default:
			}
			lines(w, 10*time.Millisecond, l)
		}
		return true
	}
	id := f.pull(t, "big:latest")
	run(t, f.runner)
	f.wait(t, id, func(j store.ModelJob) bool { return j.Completed > 0 })
	resp, err := f.svc.CancelModelJob(t.Context(), &adminv1.CancelModelJobRequest{Id: id})
	require.NoError(t, err)
	assert.Equal(t, id, resp.GetJob().GetId())
	j := f.wait(t, id, finished)
	assert.Equal(t, store.ModelJobCancelled, j.State)
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("Ollama's pull request was not ended")
	}

	// A queued job (the runner is busy with nothing, but the backend is
	// unknown to no one: cancel it before a runner sees it).
	g := newFixture(t)
	qid := g.pull(t, "tiny:latest")
	resp, err = g.svc.CancelModelJob(t.Context(), &adminv1.CancelModelJobRequest{Id: qid})
	require.NoError(t, err)
	assert.Equal(t, store.ModelJobCancelled, resp.GetJob().GetState())
	run(t, g.runner)
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, int32(0), g.ollama.pulls.Load(), "a cancelled job never reaches Ollama")
	// Cancelling a finished job changes nothing.
	resp, err = g.svc.CancelModelJob(t.Context(), &adminv1.CancelModelJobRequest{Id: qid})
	require.NoError(t, err)
	assert.Equal(t, store.ModelJobCancelled, resp.GetJob().GetState())
}

// Jobs a dead leader left running are resumed by the next one: the pull is
// made again (Ollama resumes its partial blobs) with one more attempt even
// when the interrupted one was the last, and a delete whose interrupted
// attempt already removed the model succeeds.
func TestLeaderTakeoverResumes(t *testing.T) {
	f := newFixture(t, "old:latest")
	f.ollama.pull = func(w http.ResponseWriter, _ *http.Request, _ int) bool { return successfulPull(w) }
	ctx := t.Context()
	pullID := f.pull(t, "tiny:latest")
	// The old leader started it and was on its third (last) attempt when it died.
	_, ok, err := f.st.StartModelJob(ctx, pullID, time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, f.st.ReportModelJob(ctx, pullID, store.ModelJobProgress{Status: "pulling a1b2", Attempts: 3, Completed: 10, Total: 4000}))

	delResp, err := f.svc.DeleteModel(ctx, &adminv1.DeleteModelRequest{Backend: fmt.Sprint(f.backend.ID), Model: "gone:latest"})
	require.NoError(t, err)
	delID := delResp.GetJob().GetId()
	_, ok, err = f.st.StartModelJob(ctx, delID, time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, f.st.ReportModelJob(ctx, delID, store.ModelJobProgress{Status: "attempt 1 of 3", Attempts: 1}))

	run(t, f.newRunner(nil)) // the new leader's runner
	j := f.wait(t, pullID, finished)
	assert.Equal(t, store.ModelJobSucceeded, j.State, j.Error)
	assert.Equal(t, 4, j.Attempts)
	assert.Contains(t, f.models(t), "tiny:latest")
	d := f.wait(t, delID, finished)
	assert.Equal(t, store.ModelJobSucceeded, d.State, d.Error)
	assert.Equal(t, 2, d.Attempts)
}

// A delete removes the model from the catalog; deleting a model the backend
// does not have fails at once with Ollama's word.
func TestDelete(t *testing.T) {
	f := newFixture(t, "tiny:latest")
	require.Contains(t, f.models(t), "tiny:latest")
	run(t, f.runner)
	resp, err := f.svc.DeleteModel(t.Context(), &adminv1.DeleteModelRequest{Backend: "ollama-1", Model: "tiny:latest"})
	require.NoError(t, err)
	assert.Equal(t, "delete", resp.GetJob().GetKind())
	j := f.wait(t, resp.GetJob().GetId(), finished)
	assert.Equal(t, store.ModelJobSucceeded, j.State, j.Error)
	assert.Equal(t, "deleted", j.Status)
	assert.NotContains(t, f.models(t), "tiny:latest")

	resp, err = f.svc.DeleteModel(t.Context(), &adminv1.DeleteModelRequest{Backend: "ollama-1", Model: "tiny:latest"})
	require.NoError(t, err)
	j = f.wait(t, resp.GetJob().GetId(), finished)
	assert.Equal(t, store.ModelJobFailed, j.State)
	assert.Equal(t, 1, j.Attempts)
	assert.Contains(t, j.Error, "not found")
}

// Bad requests are refused with the right code before anything is queued.
func TestServiceRefusals(t *testing.T) {
	f := newFixture(t)
	vllm := healthtest.NewVLLM(t, "0.8.0")
	_, _, err := f.reg.RegisterBackend(t.Context(), store.BackendSpec{Name: "vllm-1", URL: vllm.URL(), Engine: "vllm"}, false)
	require.NoError(t, err)
	for _, c := range []struct {
		name, backend, model string
		code                 codes.Code
		msg                  string
	}{
		{"vllm backend", "vllm-1", "tiny:latest", codes.FailedPrecondition, "Ollama backends only"},
		{"unknown backend", "nope", "tiny:latest", codes.NotFound, `backend "nope" not found`},
		{"unknown id", "9999", "tiny:latest", codes.NotFound, "not found"},
		{"no backend", "", "tiny:latest", codes.InvalidArgument, "backend"},
		{"no model", "ollama-1", "", codes.InvalidArgument, "model is required"},
		{"space in model", "ollama-1", "tiny latest", codes.InvalidArgument, "spaces"},
		{"long model", "ollama-1", strings.Repeat("m", 256), codes.InvalidArgument, "at most 255"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.svc.PullModel(t.Context(), &adminv1.PullModelRequest{Backend: c.backend, Model: c.model})
			assert.Equal(t, c.code, status.Code(err), err)
			assert.Contains(t, status.Convert(err).Message(), c.msg)
			_, err = f.svc.DeleteModel(t.Context(), &adminv1.DeleteModelRequest{Backend: c.backend, Model: c.model})
			assert.Equal(t, c.code, status.Code(err), err)
		})
	}
	jobs, err := f.svc.ListModelJobs(t.Context(), &adminv1.ListModelJobsRequest{})
	require.NoError(t, err)
	assert.Empty(t, jobs.GetJobs())
	_, err = f.svc.ListModelJobs(t.Context(), &adminv1.ListModelJobsRequest{State: "paused"})
	assert.ErrorIs(t, err, store.ErrInvalid)
	_, err = f.svc.ListModelJobs(t.Context(), &adminv1.ListModelJobsRequest{Limit: 5000})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = f.svc.GetModelJob(t.Context(), &adminv1.GetModelJobRequest{Id: 42})
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// Listings filter by state and backend; the original's route finds a job
// only on its own backend.
func TestListAndGet(t *testing.T) {
	f := newFixture(t)
	a := f.pull(t, "a:latest")
	b := f.pull(t, "b:latest")
	_, err := f.svc.CancelModelJob(t.Context(), &adminv1.CancelModelJobRequest{Id: a})
	require.NoError(t, err)
	list := func(state, backend string) []int64 {
		resp, err := f.svc.ListModelJobs(t.Context(), &adminv1.ListModelJobsRequest{State: state, Backend: backend})
		require.NoError(t, err)
		var ids []int64
		for _, j := range resp.GetJobs() {
			ids = append(ids, j.GetId())
		}
		return ids
	}
	assert.Equal(t, []int64{b, a}, list("", ""))
	assert.Equal(t, []int64{b}, list("active", ""))
	assert.Equal(t, []int64{a}, list("cancelled", "ollama-1"))
	got, err := f.svc.GetModelJob(t.Context(), &adminv1.GetModelJobRequest{Id: b, Backend: "ollama-1"})
	require.NoError(t, err)
	assert.Equal(t, "b:latest", got.GetJob().GetModel())
	_, err = f.svc.GetModelJob(t.Context(), &adminv1.GetModelJobRequest{Id: b, Backend: "other"})
	assert.Equal(t, codes.NotFound, status.Code(err))
}
