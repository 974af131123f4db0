package modeljob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// Store keeps the jobs (store.Store).
type Store interface {
	QueuedModelJobs(ctx context.Context, limit int) ([]store.ModelJob, error)
	StartModelJob(ctx context.Context, id int64, at time.Time) (store.ModelJob, bool, error)
	ReportModelJob(ctx context.Context, id int64, p store.ModelJobProgress) error
	FinishModelJob(ctx context.Context, id int64, state string, p store.ModelJobProgress, at time.Time) error
	RequeueRunningModelJobs(ctx context.Context) (int, error)
}

// Backends finds backends and rediscovers their models (registry.Registry).
type Backends interface {
	GetBackend(id int64) (registry.Backend, error)
	ListBackends() []registry.Backend
	RefreshBackend(ctx context.Context, id int64) (registry.Backend, error)
}

// Options configure a Runner. Zero values select the defaults.
type Options struct {
	// Backoff is the wait before the second attempt; it doubles before each
	// further one. Default 2s (the original's 2 s, 4 s).
	Backoff time.Duration
	// ReadTimeout bounds the silence of Ollama's pull stream between two
	// lines; default 600s, as the original's read timeout.
	ReadTimeout time.Duration
	// ProgressInterval is the least time between two progress writes of a
	// job; default 1s.
	ProgressInterval time.Duration
	// PollInterval is how often the queue is read when nothing wakes the
	// runner; default 1s.
	PollInterval time.Duration
	// Concurrency bounds the jobs running at once (one per backend at most);
	// default 4.
	Concurrency int
	// Client calls Ollama; default a client without an overall timeout (a
	// pull takes as long as it takes; ReadTimeout bounds the silences).
	Client     *http.Client
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

func (o Options) withDefaults() Options {
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 600 * time.Second
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// errCancelled is the cause of a job's context when an admin cancels it.
var errCancelled = errors.New("cancelled by an administrator")

// Runner runs queued jobs; see the package comment.
type Runner struct {
	st       Store
	backends Backends
	opts     Options
	log      *slog.Logger
	wake     chan struct{}

	mu      sync.Mutex
	running map[int64]context.CancelCauseFunc // by job id
	busy    map[int64]bool                    // backend ids with a job running

	jobs   *prometheus.CounterVec
	active prometheus.Gauge
}

// NewRunner returns a Runner over st and backends.
func NewRunner(st Store, backends Backends, opts Options) *Runner {
	opts = opts.withDefaults()
	r := &Runner{st: st, backends: backends, opts: opts, log: opts.Logger, wake: make(chan struct{}, 1),
		running: map[int64]context.CancelCauseFunc{}, busy: map[int64]bool{}}
	r.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mindrouter_model_jobs_total",
		Help: "Ollama model jobs finished, by kind (pull, delete) and result (succeeded, failed, cancelled)."}, []string{"kind", "result"})
	r.active = prometheus.NewGauge(prometheus.GaugeOpts{Name: "mindrouter_model_jobs_running",
		Help: "Ollama model jobs running on this control plane."})
	for _, k := range []string{store.ModelJobPull, store.ModelJobDelete} {
		for _, res := range []string{store.ModelJobSucceeded, store.ModelJobFailed, store.ModelJobCancelled} {
			r.jobs.WithLabelValues(k, res)
		}
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(r.jobs, r.active)
	}
	return r
}

// Wake makes the runner read the queue now.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Cancel stops a running job; false when this runner is not running it.
func (r *Runner) Cancel(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	cancel, ok := r.running[id]
	if ok {
		cancel(errCancelled)
	}
	return ok
}

// Run resumes the jobs a previous leader left running, then runs queued jobs
// until ctx ends. Jobs still running then stay running in the database: the
// next leader (or this one, restarted) resumes them.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(r.opts.PollInterval)
	defer t.Stop()
	resumed := false
	for {
		if !resumed {
			n, err := r.st.RequeueRunningModelJobs(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				r.log.Warn("resuming model jobs failed; retrying", slog.Any("error", err))
			case err == nil:
				resumed = true
				if n > 0 {
					r.log.Info("resuming model jobs left running by the previous control plane", slog.Int("jobs", n))
				}
			}
		}
		if resumed {
			r.dispatch(ctx, &wg)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.wake:
		}
	}
}

// dispatch starts queued jobs while there is room, one per backend.
func (r *Runner) dispatch(ctx context.Context, wg *sync.WaitGroup) {
	queued, err := r.st.QueuedModelJobs(ctx, 100)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("reading the model job queue failed", slog.Any("error", err))
		}
		return
	}
	for _, j := range queued {
		r.mu.Lock()
		skip := r.busy[j.BackendID] || len(r.running) >= r.opts.Concurrency
		r.mu.Unlock()
		if skip {
			continue
		}
		started, ok, err := r.st.StartModelJob(ctx, j.ID, r.opts.Now())
		if err != nil {
			r.log.Warn("starting a model job failed", slog.Int64("job", j.ID), slog.Any("error", err))
			continue
		}
		if !ok {
			continue
		}
		jctx, cancel := context.WithCancelCause(ctx)
		r.mu.Lock()
		r.running[j.ID] = cancel
		r.busy[j.BackendID] = true
		r.mu.Unlock()
		r.active.Inc()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.run(jctx, started)
			cancel(nil)
			r.mu.Lock()
			delete(r.running, j.ID)
			delete(r.busy, j.BackendID)
			r.mu.Unlock()
			r.active.Dec()
			r.Wake() // the backend is free for its next job
		}()
	}
}

// run runs one job to its end and records it.
func (r *Runner) run(ctx context.Context, j store.ModelJob) {
	log := r.log.With(slog.Int64("job", j.ID), slog.String("kind", j.Kind), slog.String("model", j.Model), slog.String("backend", j.BackendName))
	p := &progress{r: r, id: j.ID, p: store.ModelJobProgress{Attempts: j.Attempts}}
	log.Info("model job started", slog.Int("attempts_before", j.Attempts))
	state, err := r.execute(ctx, j, p)
	if ctx.Err() != nil && !errors.Is(context.Cause(ctx), errCancelled) {
		// The control plane is stopping: the job stays running for the
		// next leader to resume.
		log.Info("model job interrupted by shutdown; the next leader resumes it")
		return
	}
	if err != nil {
		p.p.Error = err.Error()
	}
	if state == store.ModelJobCancelled {
		p.p.Status = "cancelled"
	}
	if ferr := r.st.FinishModelJob(context.WithoutCancel(ctx), j.ID, state, p.p, r.opts.Now()); ferr != nil {
		log.Error("recording a finished model job failed", slog.Any("error", ferr))
	}
	r.jobs.WithLabelValues(j.Kind, state).Inc()
	log.Info("model job finished", slog.String("state", state), slog.Int("attempts", p.p.Attempts), slog.String("error", p.p.Error))
}

// execute makes the job's attempts and returns its final state.
func (r *Runner) execute(ctx context.Context, j store.ModelJob, p *progress) (string, error) {
	b, err := r.backends.GetBackend(j.BackendID)
	if err != nil {
		return store.ModelJobFailed, fmt.Errorf("backend %d (%s) no longer exists", j.BackendID, j.BackendName)
	}
	if b.Engine != registry.EngineOllama {
		return store.ModelJobFailed, fmt.Errorf("backend %q runs %s, not ollama", b.Name, b.Engine)
	}
	// An attempt interrupted by a leader change did not fail by itself: a
	// resumed job gets at least one more.
	limit := max(j.MaxAttempts, j.Attempts+1)
	resumed := j.Attempts > 0
	for attempt := j.Attempts + 1; ; attempt++ {
		p.p.Attempts = attempt
		p.set(ctx, fmt.Sprintf("attempt %d of %d", attempt, limit))
		if j.Kind == store.ModelJobPull {
			err = r.pull(ctx, b.URL, j.Model, j.Insecure, p)
		} else {
			var gone bool
			gone, err = r.remove(ctx, b.URL, j.Model)
			if gone && resumed {
				// The interrupted attempt deleted it.
				err = nil
			}
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return store.ModelJobCancelled, nil
		}
		r.log.Warn("model job attempt failed", slog.Int64("job", j.ID), slog.Int("attempt", attempt), slog.Any("error", err))
		if permanent(err) || attempt >= limit {
			return store.ModelJobFailed, err
		}
		wait := r.opts.Backoff << (attempt - j.Attempts - 1)
		p.p.Error = err.Error()
		p.set(ctx, fmt.Sprintf("retrying in %s", wait))
		select {
		case <-ctx.Done():
			return store.ModelJobCancelled, nil
		case <-time.After(wait):
		}
	}
	p.p.Error = ""
	p.p.Status = "success"
	if j.Kind == store.ModelJobDelete {
		p.p.Status = "deleted"
	}
	if msg := r.refresh(context.WithoutCancel(ctx), b); msg != "" {
		p.p.Status += "; " + msg
	}
	return store.ModelJobSucceeded, nil
}

// refresh rediscovers the models of b and of every other Ollama backend on
// its node (they share the model directory). It returns what failed, if
// anything; the job succeeded all the same.
func (r *Runner) refresh(ctx context.Context, b registry.Backend) string {
	ids := []int64{b.ID}
	if b.NodeID != 0 {
		for _, o := range r.backends.ListBackends() {
			if o.ID != b.ID && o.NodeID == b.NodeID && o.Engine == registry.EngineOllama {
				ids = append(ids, o.ID)
			}
		}
	}
	var failed []string
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := r.backends.RefreshBackend(ctx, id); err != nil {
			failed = append(failed, fmt.Sprintf("backend %d: %v", id, err))
		}
		cancel()
	}
	if len(failed) > 0 {
		r.log.Warn("model discovery after a model job failed", slog.String("backends", strings.Join(failed, "; ")))
		return "model discovery failed for " + strings.Join(failed, "; ")
	}
	return ""
}

// progress holds a running job's progress and writes it, throttled.
type progress struct {
	r       *Runner
	id      int64
	p       store.ModelJobProgress
	written time.Time
}

// set records a status of the runner's own and writes it at once.
func (p *progress) set(ctx context.Context, status string) {
	p.p.Status = status
	p.write(ctx)
}

// line records one line of Ollama's stream; it is written at once when it
// starts a step without bytes to count (pulling manifest, verifying, writing
// manifest), else at most once per ProgressInterval.
func (p *progress) line(ctx context.Context, l pullLine) {
	step := l.Digest == "" && l.Status != p.p.Status
	p.p.Status, p.p.Digest = l.Status, l.Digest
	if l.Digest != "" {
		p.p.Total, p.p.Completed = l.Total, l.Completed
	}
	if step || p.r.opts.Now().Sub(p.written) >= p.r.opts.ProgressInterval {
		p.write(ctx)
	}
}

func (p *progress) write(ctx context.Context) {
	p.written = p.r.opts.Now()
	if err := p.r.st.ReportModelJob(ctx, p.id, p.p); err != nil && ctx.Err() == nil {
		p.r.log.Warn("recording model job progress failed", slog.Int64("job", p.id), slog.Any("error", err))
	}
}
