package registry

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/controlplane/internal/health"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// Engine is the native API a backend speaks.
type Engine string

// The engines the registry knows.
const (
	EngineOllama Engine = "ollama"
	EngineVLLM   Engine = "vllm"
	// EngineTTS is an OpenAI-compatible text-to-speech server (/v1/audio/speech).
	EngineTTS Engine = "tts"
	// EngineSTT is an OpenAI-compatible speech-to-text server (/v1/audio/transcriptions).
	EngineSTT Engine = "stt"
)

// Status is a backend's routing status.
type Status string

// The backend statuses. Only healthy backends are routable; disabled and
// draining are set by an administrator and survive probes.
const (
	StatusHealthy   Status = "healthy"
	StatusUnhealthy Status = "unhealthy"
	StatusDisabled  Status = "disabled"
	StatusDraining  Status = "draining"
	StatusUnknown   Status = "unknown"
)

// sticky reports whether probes leave the status alone.
func (s Status) sticky() bool { return s == StatusDisabled || s == StatusDraining }

// Defaults for Options.
const (
	DefaultContextCap          = 32768
	DefaultPollInterval        = 30 * time.Second
	DefaultFastPollInterval    = 10 * time.Second
	DefaultFastPollWindow      = 120 * time.Second
	DefaultStartupRepoll       = 5 * time.Second
	DefaultProbeConcurrency    = 8
	DefaultUnhealthyThreshold  = 3
	DefaultCircuitThreshold    = 3
	DefaultCircuitOpenFor      = 30 * time.Second
	DefaultCircuitMaxOpenFor   = 5 * time.Minute
	DefaultCircuitTrialTimeout = 60 * time.Second
	DefaultEMAAlpha            = 0.3
	DefaultGPUCacheTTL         = time.Second
)

// Backend is a snapshot of one backend. Its slices are shared with the
// registry's view and must not be modified.
type Backend struct {
	ID                  int64
	Name                string
	URL                 string
	Engine              Engine
	Status              Status
	MaxConcurrent       int
	Priority            int
	GPUMemoryGB         float64
	GPUType             string
	NodeID              int64
	NodeName            string
	GPUIndices          []int
	Version             string
	Simulated           bool
	LastError           string
	ConsecutiveFailures int
	// LiveFailures counts failed requests since the last success (Observe).
	LiveFailures int
	// Circuit is the state of the backend's circuit breaker when the
	// snapshot was taken.
	Circuit         CircuitState
	LastHealthCheck time.Time
	LastSuccess     time.Time
	CreatedAt       time.Time
	// Models are the names of the models the backend serves, sorted.
	Models []string
}

// Model is one model as served by one backend. Its slices are shared with the
// registry's view and must not be modified.
type Model struct {
	ID          int64
	BackendID   int64
	BackendName string
	Name        string
	Family      string
	// ContextLength is the model's own maximum; the gateway uses
	// min(ContextLength, Registry.ContextCap()).
	ContextLength int64
	// Capabilities are engine capability names: completion, tools, vision,
	// thinking, embedding, insert, rerank. Empty means unknown.
	Capabilities    []string
	Loaded          bool
	ParameterSize   string
	Quantization    string
	SizeBytes       int64
	EmbeddingLength int64
	// CreatedAt is when the registry first recorded the model on this backend.
	CreatedAt time.Time
	// DisplayName and Description are an administrator's (ModelOverride).
	DisplayName string
	Description string
	// noStructuredOutput is set by an override that says the model cannot
	// constrain its output to a schema.
	noStructuredOutput bool
}

// Candidate is a backend that can serve a request, with its model.
type Candidate struct {
	Backend Backend
	Model   Model
}

// GPUSource gives the latest GPU samples (the telemetry package).
type GPUSource interface {
	Latest() []*adminv1.GPU
}

// Prober probes one backend (health.Prober).
type Prober interface {
	Probe(ctx context.Context, engine, baseURL string) (health.Result, error)
}

// Options configures a Registry. Zero values select the defaults.
type Options struct {
	Logger     *slog.Logger
	Now        func() time.Time
	Registerer prometheus.Registerer
	// InFlight reports the leases in flight on a backend, fleet-wide (the
	// scheduler queue's exact counts); nil reports none.
	InFlight func(backendID int64) int
	// GPUs feeds the admin ListGPUs call and the GPU utilisation of
	// ScoringInputs; may be nil.
	GPUs GPUSource
	// Prober probes backends; default health.NewProber(nil, Logger).
	Prober Prober
	// ContextCap bounds every model's context window; default 32768.
	ContextCap int64
	// UnhealthyThreshold is the number of consecutive failed probes that
	// turn a healthy backend unhealthy; default 3. A backend whose status is
	// still unknown turns unhealthy at its first failed probe.
	UnhealthyThreshold int
	// CircuitThreshold is the number of failed requests in a row that open a
	// backend's circuit; default 3.
	CircuitThreshold int
	// CircuitOpenFor is how long a circuit stays open before it lets a trial
	// request through; default 30s.
	CircuitOpenFor time.Duration
	// CircuitMaxOpenFor bounds the open period, which doubles with every
	// failed trial; default 5m. Set it to CircuitOpenFor for a fixed period.
	CircuitMaxOpenFor time.Duration
	// CircuitTrialTimeout is how long a half-open circuit waits for its trial
	// request's outcome before it lets another trial through; default 60s.
	CircuitTrialTimeout time.Duration
	// EMAAlpha is the weight of the newest request in the latency, time to
	// first byte and throughput averages; default 0.3, as the original.
	EMAAlpha float64
	// GPUCacheTTL is how long ScoringInputs reuses one reading of the GPU
	// source; default 1s.
	GPUCacheTTL time.Duration
	// FastPollInterval is how often troubled backends are probed; default 10s.
	FastPollInterval time.Duration
	// FastPollWindow is how long a backend stays troubled after a failure;
	// default 120s.
	FastPollWindow time.Duration
	// StartupRepoll is the delay of the second full poll at start; default 5s.
	StartupRepoll time.Duration
	// ProbeConcurrency bounds the probes in flight; default 8.
	ProbeConcurrency int
}

// withDefaults fills zero values.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Prober == nil {
		o.Prober = health.NewProber(nil, o.Logger)
	}
	setDefault(&o.ContextCap, DefaultContextCap)
	setDefault(&o.UnhealthyThreshold, DefaultUnhealthyThreshold)
	setDefault(&o.CircuitThreshold, DefaultCircuitThreshold)
	setDefault(&o.CircuitOpenFor, DefaultCircuitOpenFor)
	setDefault(&o.CircuitMaxOpenFor, DefaultCircuitMaxOpenFor)
	o.CircuitMaxOpenFor = max(o.CircuitMaxOpenFor, o.CircuitOpenFor)
	setDefault(&o.CircuitTrialTimeout, DefaultCircuitTrialTimeout)
	if o.EMAAlpha <= 0 || o.EMAAlpha > 1 {
		o.EMAAlpha = DefaultEMAAlpha
	}
	setDefault(&o.GPUCacheTTL, DefaultGPUCacheTTL)
	setDefault(&o.FastPollInterval, DefaultFastPollInterval)
	setDefault(&o.FastPollWindow, DefaultFastPollWindow)
	setDefault(&o.StartupRepoll, DefaultStartupRepoll)
	setDefault(&o.ProbeConcurrency, DefaultProbeConcurrency)
	return o
}

func setDefault[T int | int64 | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Registry is the live registry. Create it with New and fill it with Load.
type Registry struct {
	st      Store
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	prober  Prober
	metrics *metrics
	breaker breakerConfig
	version atomic.Int64
	view    atomic.Pointer[view]
	// kicks asks RunHealth to look at one backend now (live failures, drains).
	kicks chan int64
	// sem bounds probes in flight across overlapping polls.
	sem chan struct{}

	// wmu serializes writes to the store so that a probe result computed
	// before an administrator's change cannot overwrite it.
	wmu sync.Mutex

	mu      sync.Mutex // guards entries, rules and the rebuild of view
	entries map[int64]*entry
	rules   rules

	subMu   sync.Mutex
	subs    map[int]chan struct{}
	nextSub int

	// gpus caches the GPU source's reading for ScoringInputs; gpuMu lets one
	// caller refresh it.
	gpus  atomic.Pointer[gpuReading]
	gpuMu sync.Mutex
}

// entry is the mutable state of one backend.
type entry struct {
	b             Backend
	models        []Model
	troubledUntil time.Time
	probing       bool
	// live is the backend's breaker and averages; it outlives rebuilds.
	live *live
}

// New returns an empty Registry; call Load before use.
func New(st Store, opts Options) *Registry {
	opts = opts.withDefaults()
	r := &Registry{
		st:      st,
		opts:    opts,
		log:     opts.Logger,
		now:     opts.Now,
		prober:  opts.Prober,
		metrics: newMetrics(opts.Registerer),
		breaker: breakerConfig{
			threshold: opts.CircuitThreshold, openFor: opts.CircuitOpenFor, maxOpenFor: opts.CircuitMaxOpenFor,
			trialTimeout: opts.CircuitTrialTimeout, alpha: opts.EMAAlpha,
		},
		kicks:   make(chan int64, 64),
		sem:     make(chan struct{}, opts.ProbeConcurrency),
		entries: map[int64]*entry{},
		subs:    map[int]chan struct{}{},
	}
	r.version.Store(1)
	r.view.Store(buildView(nil, opts.ContextCap, rules{}))
	return r
}

// InFlight returns the leases in flight on a backend (0 when unknown).
func (r *Registry) InFlight(backendID int64) int {
	if f := r.opts.InFlight; f != nil {
		return f(backendID)
	}
	return 0
}

// ContextCap returns the configured bound on context windows.
func (r *Registry) ContextCap() int64 { return r.opts.ContextCap }

// Version returns the catalog version; it grows whenever the catalog changes.
func (r *Registry) Version() int64 { return r.version.Load() }

// Load replaces the in-memory registry with the store's backends and models.
// As the original did, a backend that was failing when the last process
// stopped starts as unknown with its failure count cleared.
func (r *Registry) Load(ctx context.Context) error {
	bs, err := r.st.ListBackends(ctx)
	if err != nil {
		return fmt.Errorf("load backends: %w", err)
	}
	ms, err := r.st.ListModels(ctx)
	if err != nil {
		return fmt.Errorf("load models: %w", err)
	}
	rs, err := r.loadRules(ctx)
	if err != nil {
		return err
	}
	entries := make(map[int64]*entry, len(bs))
	for _, sb := range bs {
		e := &entry{b: backendFromStore(sb), live: newLive()}
		if e.b.ConsecutiveFailures > 0 && !e.b.Status.sticky() {
			e.b.Status, e.b.ConsecutiveFailures = StatusUnknown, 0
		}
		entries[sb.ID] = e
	}
	for _, sm := range ms {
		if e, ok := entries[sm.BackendID]; ok {
			e.models = append(e.models, modelFromStore(sm))
		}
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, e := range entries {
		if old, ok := r.entries[id]; ok {
			e.live = old.live
		}
	}
	r.entries, r.rules = entries, rs
	r.rebuildLocked()
	r.log.InfoContext(ctx, "registry loaded", slog.Int("backends", len(bs)), slog.Int("models", len(ms)))
	return nil
}

// Subscribe returns a channel that receives a signal (buffered 1, never
// blocking the registry) after any change to what routing depends on:
// backend status, models, capacity settings. The function unsubscribes.
func (r *Registry) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	r.subMu.Lock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = ch
	r.subMu.Unlock()
	return ch, sync.OnceFunc(func() {
		r.subMu.Lock()
		delete(r.subs, id)
		r.subMu.Unlock()
	})
}

// notify signals every subscriber without blocking.
func (r *Registry) notify() {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	for _, ch := range r.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// rebuildLocked publishes a new view of the entries; r.mu must be held. It
// bumps the version when the catalog changed and notifies subscribers when
// anything routing depends on changed.
func (r *Registry) rebuildLocked() {
	old := r.view.Load()
	v := buildView(r.entries, r.opts.ContextCap, r.rules)
	r.view.Store(v)
	catalogChanged := !slices.EqualFunc(old.catalog, v.catalog, catalogEqual)
	if catalogChanged {
		r.version.Add(1)
	}
	r.metrics.observeView(v)
	if catalogChanged || !sameRouting(old, v) {
		r.notify()
	}
}

// ListBackends returns every backend, ordered by id.
func (r *Registry) ListBackends() []Backend {
	v := r.view.Load()
	out := slices.Clone(v.backends)
	now := r.now()
	for i := range out {
		out[i].withLive(v.live[out[i].ID], now)
	}
	return out
}

// GetBackend returns one backend.
func (r *Registry) GetBackend(id int64) (Backend, error) {
	v := r.view.Load()
	if i, ok := v.byID[id]; ok {
		b := v.backends[i]
		b.withLive(v.live[id], r.now())
		return b, nil
	}
	return Backend{}, fmt.Errorf("backend %d: %w", id, store.ErrNotFound)
}

// withLive fills the fields that live traffic sets.
func (b *Backend) withLive(lv *live, now time.Time) {
	if lv == nil {
		return
	}
	b.Circuit, b.LiveFailures, _ = lv.peek(now)
}

// ListModels returns every model on every backend, ordered by backend id and name.
func (r *Registry) ListModels() []Model {
	return slices.Clone(r.view.Load().models)
}

// GPUs returns the latest GPU samples, or none without a GPU source.
func (r *Registry) GPUs() []*adminv1.GPU {
	if r.opts.GPUs == nil {
		return nil
	}
	return r.opts.GPUs.Latest()
}
