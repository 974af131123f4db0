package admission

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

var (
	errInvalidCredential = errors.New("invalid API key")
	errModelNotFound     = errors.New("model not found")
)

// fakeIdentity knows a set of keys.
type fakeIdentity struct {
	mu   sync.Mutex
	keys map[string]Principal
}

func (f *fakeIdentity) Verify(_ context.Context, credential string) (Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.keys[credential]
	if !ok {
		return Principal{}, errInvalidCredential
	}
	return p, nil
}

// add registers a key.
func (f *fakeIdentity) add(key string, p Principal) {
	f.mu.Lock()
	f.keys[key] = p
	f.mu.Unlock()
}

// fakeRegistry is a small stateful registry: candidates per model, a version that
// moves on every change, subscribers, and a record of the outcomes it was told.
type fakeRegistry struct {
	mu       sync.Mutex
	models   map[string][]Candidate
	cap      int64
	version  atomic.Int64
	subs     map[chan struct{}]struct{}
	outcomes []outcome
	observed []registry.Observation
	loaded   []string
	// breaker scripts AcquireCircuit per backend: absent lets everything through,
	// breakerOpen refuses, breakerTrial lets one trial through and then refuses
	// until the trial is observed or abandoned.
	breaker   map[int64]breakerState
	abandoned []int64
}

type breakerState int

const (
	breakerOpen breakerState = iota + 1
	breakerTrial
	breakerTrialOut
)

type outcome struct {
	backendID int64
	failure   bool
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{models: make(map[string][]Candidate), subs: make(map[chan struct{}]struct{}), breaker: make(map[int64]breakerState)}
}

// set replaces the candidates of a model (nil removes it) and signals subscribers.
func (f *fakeRegistry) set(model string, cands ...Candidate) {
	f.mu.Lock()
	if cands == nil {
		delete(f.models, model)
	} else {
		f.models[model] = cands
	}
	f.version.Add(1)
	for ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	f.mu.Unlock()
}

func (f *fakeRegistry) Candidates(model string, _ controlplanev1.Operation, _ []controlplanev1.Capability) ([]Candidate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.models[model]
	if !ok {
		return nil, fmt.Errorf("model %q: %w", model, errModelNotFound)
	}
	return c, nil
}

func (f *fakeRegistry) Catalog() []*controlplanev1.CatalogModel {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*controlplanev1.CatalogModel
	for name := range f.models {
		out = append(out, &controlplanev1.CatalogModel{Name: name})
	}
	return out
}

func (f *fakeRegistry) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}

func (f *fakeRegistry) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeRegistry) Version() int64 { return f.version.Load() }

func (f *fakeRegistry) Observe(backendID int64, o registry.Observation) {
	f.mu.Lock()
	f.outcomes = append(f.outcomes, outcome{backendID, o.Failure})
	f.observed = append(f.observed, o)
	if f.breaker[backendID] == breakerTrialOut {
		delete(f.breaker, backendID)
		if o.Failure {
			f.breaker[backendID] = breakerOpen
		}
	}
	f.mu.Unlock()
}

func (f *fakeRegistry) AcquireCircuit(backendID int64) (ok, trial bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch f.breaker[backendID] {
	case breakerOpen, breakerTrialOut:
		return false, false
	case breakerTrial:
		f.breaker[backendID] = breakerTrialOut
		return true, true
	}
	return true, false
}

func (f *fakeRegistry) AbandonTrial(backendID int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.abandoned = append(f.abandoned, backendID)
	if f.breaker[backendID] == breakerTrialOut {
		f.breaker[backendID] = breakerTrial
	}
}

// setBreaker scripts a backend's breaker.
func (f *fakeRegistry) setBreaker(backendID int64, st breakerState) {
	f.mu.Lock()
	f.breaker[backendID] = st
	f.mu.Unlock()
}

func (f *fakeRegistry) breakerOf(backendID int64) breakerState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.breaker[backendID]
}

func (f *fakeRegistry) MarkLoaded(backendID int64, model string) {
	f.mu.Lock()
	f.loaded = append(f.loaded, fmt.Sprintf("%d/%s", backendID, model))
	f.mu.Unlock()
}

func (f *fakeRegistry) ContextCap() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cap
}

// fakeRevocations hands out one channel.
type fakeRevocations struct{ ch chan string }

func (f *fakeRevocations) Revocations() (<-chan string, func()) { return f.ch, func() {} }

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// harness is a Server behind a real gRPC server on a loopback port.
type harness struct {
	srv     *Server
	ident   *fakeIdentity
	reg     *fakeRegistry
	metrics *prometheus.Registry
	clock   *clock
	admit   controlplanev1.AdmissionServiceClient
	session controlplanev1.SessionServiceClient
	sched   adminv1.SchedulerServiceClient
	// queue is the scheduler the server takes its slots from.
	queue slotCounter
	// stopRun ends the server's Run, as a control-plane shutdown does.
	stopRun context.CancelFunc
}

const (
	userKey     = "mr2_user"
	readOnlyKey = "mr2_readonly"
)

func backendCand(id int64, slots int) Candidate {
	return Candidate{
		BackendID: id, BackendName: fmt.Sprintf("gpu%d", id), URL: fmt.Sprintf("http://gpu%d:11434", id),
		Engine: controlplanev1.Engine_ENGINE_OLLAMA, MaxConcurrent: slots, Model: "llama3", ContextLength: 8192,
	}
}

// slotCounter is a Scheduler that reports its in-flight slots, as *scheduler.Queue does.
type slotCounter interface {
	Scheduler
	InFlight(backendID int64) int
}

// harnessQueue says how a harness builds its scheduler: sched when set, else a
// fair-share queue (as the control plane builds it) with these options, on the
// harness's clock.
type harnessQueue struct {
	sched     slotCounter
	queue     scheduler.Options
	fairShare *fairshare.Params
}

// newHarness starts a server with model "llama3" on the given candidates.
func newHarness(t testing.TB, opts Options, cands ...Candidate) *harness {
	t.Helper()
	return newHarnessWith(t, opts, AdminOptions{}, harnessQueue{}, cands...)
}

// newHarnessQueue is newHarness with a scheduler of the test's choosing.
func newHarnessQueue(t testing.TB, opts Options, q harnessQueue, cands ...Candidate) *harness {
	t.Helper()
	return newHarnessWith(t, opts, AdminOptions{}, q, cands...)
}

// newHarnessWith is newHarness with options for the admin SchedulerService.
func newHarnessWith(t testing.TB, opts Options, admin AdminOptions, hq harnessQueue, cands ...Candidate) *harness {
	t.Helper()
	h := &harness{reg: newFakeRegistry(), metrics: prometheus.NewRegistry(), clock: newClock()}
	if len(cands) > 0 {
		h.reg.set("llama3", cands...)
	}
	ident := &fakeIdentity{keys: map[string]Principal{
		userKey:     {UserID: 42, Username: "ada", APIKeyID: 7, KeyPrefix: "mr2_user", Group: "faculty", Inference: true, Weight: 2},
		readOnlyKey: {UserID: 43, Username: "bob", APIKeyID: 8, KeyPrefix: "mr2_read", Group: "staff"},
	}}
	if opts.Now == nil {
		opts.Now = h.clock.Now
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = time.Hour // tests sweep explicitly
	}
	opts.Registerer = h.metrics
	if opts.Status == nil {
		// Session admissions get the same error table as the unary calls.
		opts.Status = func(ctx context.Context, err error) error {
			_, err = mapErrors(ctx, nil, nil, func(context.Context, any) (any, error) { return nil, err })
			return err
		}
	}
	h.ident = ident
	h.queue = hq.sched
	if h.queue == nil {
		h.queue = newTestQueue(t, hq.queue, hq.fairShare, opts.Now, h.metrics)
	}
	srv, err := New(ident, h.reg, h.queue, opts)
	require.NoError(t, err)
	h.srv = srv

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer(grpc.UnaryInterceptor(mapErrors), grpc.StreamInterceptor(mapStreamErrors))
	controlplanev1.RegisterAdmissionServiceServer(gs, srv)
	controlplanev1.RegisterSessionServiceServer(gs, srv)
	adminv1.RegisterSchedulerServiceServer(gs, NewSchedulerService(srv, admin))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = gs.Serve(lis) })
	wg.Go(func() { _ = srv.Run(ctx) })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		gs.Stop()
		wg.Wait()
	})
	h.admit = controlplanev1.NewAdmissionServiceClient(conn)
	h.session = controlplanev1.NewSessionServiceClient(conn)
	h.sched = adminv1.NewSchedulerServiceClient(conn)
	h.stopRun = cancel
	// Run has subscribed once it is running; tests that change the registry rely on it.
	require.Eventually(t, func() bool { return h.reg.subscribers() == 1 }, 5*time.Second, time.Millisecond)
	return h
}

// mapErrors stands in for the server package's error mapping, so that the tests
// can check codes and Retry-After on the wire.
// mapStreamErrors is mapErrors for streams.
func mapStreamErrors(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	_, err := mapErrors(ss.Context(), nil, nil, func(context.Context, any) (any, error) { return nil, handler(srv, ss) })
	return err
}

func mapErrors(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err == nil {
		return resp, nil
	}
	if _, ok := status.FromError(err); ok {
		return nil, err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, errInvalidCredential):
		code = codes.Unauthenticated
	case errors.Is(err, ErrPermissionDenied):
		code = codes.PermissionDenied
	case errors.Is(err, errModelNotFound), errors.Is(err, ErrLeaseNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrContextExceeded), errors.Is(err, ErrInvalidRequest):
		code = codes.InvalidArgument
	case errors.Is(err, scheduler.ErrQueueFull):
		code = codes.ResourceExhausted
	case errors.Is(err, scheduler.ErrQueueTimeout), errors.Is(err, ErrAllExcluded), errors.Is(err, ErrShuttingDown), errors.Is(err, ErrServiceOffline):
		code = codes.Unavailable
	case errors.Is(err, ErrSessionEnded):
		code = codes.Aborted
	}
	st := status.New(code, err.Error())
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		if withDetails, derr := st.WithDetails(protoadapt.MessageV1Of(&errdetails.RetryInfo{RetryDelay: durationpb.New(ra.RetryAfter())})); derr == nil {
			st = withDetails
		}
	}
	return nil, st.Err()
}

// retryAfterOf returns the RetryInfo delay of a status error (0 when absent).
func retryAfterOf(err error) time.Duration {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

func (h *harness) admitReq(requestID string) *controlplanev1.AdmitRequest {
	return &controlplanev1.AdmitRequest{
		RequestId: requestID, Credential: userKey, Model: "llama3",
		Operation: controlplanev1.Operation_OPERATION_CHAT, PromptTokensEstimate: 100, Attempt: 1,
	}
}

// metricValue reads one series of a gauge or counter (0 when absent).
func (h *harness) metricValue(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := h.metrics.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// queueDepth is the scheduler's depth for llama3.
func (h *harness) queueDepth() int {
	return h.srv.sched.(*scheduler.Queue).Depth("llama3")
}

func (h *harness) waitDepth(t testing.TB, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return h.queueDepth() == n }, 5*time.Second, time.Millisecond,
		"queue depth never reached %d", n)
}

// Backends lists every backend the fake registry knows (BackendView).
func (f *fakeRegistry) Backends() []BackendInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[int64]bool{}
	var out []BackendInfo
	for _, cands := range f.models {
		for _, c := range cands {
			if !seen[c.BackendID] {
				seen[c.BackendID] = true
				out = append(out, BackendInfo{ID: c.BackendID, Name: c.BackendName, MaxConcurrent: c.MaxConcurrent})
			}
		}
	}
	return out
}

// newTestQueue builds a fair-share queue the way the control plane does.
func newTestQueue(t testing.TB, qo scheduler.Options, prm *fairshare.Params, now func() time.Time, reg prometheus.Registerer) *scheduler.Queue {
	t.Helper()
	if qo.Now == nil {
		qo.Now = now
	}
	if qo.Registerer == nil {
		qo.Registerer = reg
	}
	p := fairshare.DefaultParams()
	if prm != nil {
		p = *prm
	}
	q, err := scheduler.NewFairShareQueue(p, qo)
	require.NoError(t, err)
	return q
}
