package cpclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// TokenMetadataKey is the gRPC metadata key of the cluster token.
const TokenMetadataKey = "x-mindrouter-cluster-token"

// Config configures a Client. Zero durations take the defaults shown.
type Config struct {
	// ClusterToken authenticates this replica to the control plane.
	ClusterToken string
	// ReplicaID names this replica in Hello and Admit.
	ReplicaID string
	// Version is this binary's version, sent in Hello.
	Version string
	// AdmitTimeout bounds one Admit including its wait in the queue; 0 = none
	// (the control plane's queue timeout decides).
	AdmitTimeout time.Duration
	// ReleaseTimeout bounds one Release attempt; default 5s.
	ReleaseTimeout time.Duration
	// ReleaseRetryFor is how long a release that failed keeps being retried in
	// the background; default 10m.
	ReleaseRetryFor time.Duration
	// MaxPendingReleases bounds the background retry queue; default 10000.
	MaxPendingReleases int
	// DrainTimeout is how long Run keeps retrying pending releases after its
	// context ends; default 10s.
	DrainTimeout time.Duration
	// HeartbeatInterval is used until the control plane's Welcome names one;
	// default 10s.
	HeartbeatInterval time.Duration
	// CatalogTTL is how long a ListModels answer is cached; default 30s.
	CatalogTTL time.Duration
	// BackoffBase and BackoffMax bound the reconnect and release-retry delays;
	// defaults 250ms and 10s.
	BackoffBase, BackoffMax time.Duration
	// AuditSpool, when set, reports the audit spool's fill (bytes waiting and the
	// limit, 0 for none); each heartbeat carries it so that the control plane can
	// alert before the spool fills.
	AuditSpool func() (bytes, maxBytes int64)
	// SessionReleases sends releases over the session stream, in batches,
	// whenever the session is up, instead of one unary Release call each; they
	// are acknowledged there and re-sent on the next session if the stream breaks.
	// Without a session, releases take the unary Release call.
	SessionReleases bool
	// UnaryAdmit sends every admission as its own unary Admit (or AdmitStream)
	// call. Otherwise admissions ride the session stream whenever it is up and
	// its control plane answers them there (its Welcome says so), and take the
	// unary call only while it is not.
	UnaryAdmit bool
	// FailoverWait is how long an admission that finds no control plane
	// reachable (UNAVAILABLE without a refusal reason: a leader killed, a
	// standby not yet promoted) keeps retrying before the client is told; 0
	// fails at once. Set it when several control planes are listed.
	FailoverWait time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ReleaseTimeout, 5*time.Second)
	def(&c.ReleaseRetryFor, 10*time.Minute)
	def(&c.DrainTimeout, 10*time.Second)
	def(&c.HeartbeatInterval, 10*time.Second)
	def(&c.CatalogTTL, 30*time.Second)
	def(&c.BackoffBase, 250*time.Millisecond)
	def(&c.BackoffMax, 10*time.Second)
	if c.MaxPendingReleases <= 0 {
		c.MaxPendingReleases = 10000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Dial returns a lazily connecting client connection to the control plane at
// addr (host:port, or a comma-separated list): it does not fail when the control plane is down and reconnects quickly
// (at most 5s between tries, 1s with several addresses). opts add to that, e.g.
// the tracing instrumentation (tracing.DialOption). The admin REST gateway
// shares it.
//
// Several addresses name a leader and its standbys. A standby does not open its
// gRPC port, so the connection (gRPC's pick_first over the list, in order)
// lands on whichever control plane answers, which is the leader, and moves to
// the new leader by itself when the old one goes away.
func Dial(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	var addrs []string
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	target, maxDelay := "", 5*time.Second
	var extra []grpc.DialOption
	switch len(addrs) {
	case 0:
		return nil, errors.New("dial control plane: no address")
	case 1:
		target = addrs[0]
	default:
		target, extra = listTarget(addrs)
		maxDelay = time.Second
	}
	conn, err := grpc.NewClient(target, append(append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxDelay},
			MinConnectTimeout: 5 * time.Second,
		}),
	}, extra...), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial control plane %q: %w", addr, err)
	}
	return conn, nil
}

// listTarget resolves to the fixed list addrs, each verified (with TLS)
// against its own host name.
func listTarget(addrs []string) (string, []grpc.DialOption) {
	r := manual.NewBuilderWithScheme("mindrouter-cp")
	state := resolver.State{}
	for _, a := range addrs {
		host, _, _ := net.SplitHostPort(a)
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: host})
	}
	r.InitialState(state)
	return r.Scheme() + ":///controlplanes", []grpc.DialOption{grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"pick_first":{}}]}`)}
}

// Client talks to the control plane. Its methods are safe for concurrent use;
// Run must be running for the session and for background release retries.
type Client struct {
	cfg       Config
	log       *slog.Logger
	admission controlplanev1.AdmissionServiceClient
	sessions  controlplanev1.SessionServiceClient
	leases    leaseSet
	catalog   catalogCache
	pending   chan *controlplanev1.ReleaseRequest
	// outbox holds releases for the session to send; unacked those sent and not
	// yet acknowledged (by lease id).
	outbox  chan *controlplanev1.ReleaseRequest
	unacked unackedSet
	// outMu and outClosed stop Release from handing releases to the session once
	// Run has taken the outbox over at shutdown.
	outMu     sync.RWMutex
	outClosed bool
	connected atomic.Bool
	// lostAt is when the last session ended (Unix nanoseconds), 0 while one is
	// up or before the first.
	lostAt atomic.Int64
	// unaryOnly is set once the control plane answered AdmitStream with
	// Unimplemented (an older release): AdmitWatch then uses Admit.
	unaryOnly atomic.Bool
	// live is the established session, nil while there is none.
	live    atomic.Pointer[liveSession]
	tracer  trace.Tracer
	metrics *metrics
}

// New returns a client over conn. Metrics are registered on reg when it is not nil.
func New(conn grpc.ClientConnInterface, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Client, error) {
	cfg.setDefaults()
	c := &Client{
		cfg:       cfg,
		log:       log,
		admission: controlplanev1.NewAdmissionServiceClient(conn),
		sessions:  controlplanev1.NewSessionServiceClient(conn),
		leases:    leaseSet{ids: map[string]*leaseEntry{}},
		catalog:   catalogCache{entries: map[[32]byte]catalogEntry{}},
		pending:   make(chan *controlplanev1.ReleaseRequest, cfg.MaxPendingReleases),
		outbox:    make(chan *controlplanev1.ReleaseRequest, cfg.MaxPendingReleases),
		unacked:   unackedSet{m: map[string]*controlplanev1.ReleaseRequest{}},
		tracer:    defaultTracer(),
	}
	m, err := newMetrics(reg, func() int { return len(c.pending) })
	if err != nil {
		return nil, err
	}
	c.metrics = m
	return c, nil
}

// outgoing adds the cluster token to a context's outgoing metadata.
func (c *Client) outgoing(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, TokenMetadataKey, c.cfg.ClusterToken)
}

// Connected reports whether the session stream is established, i.e. the
// control plane is reachable and accepts this replica.
func (c *Client) Connected() bool { return c.connected.Load() }

// Available reports whether the session is up, or went down less than grace
// ago: during a control-plane failover a replica stays in its load balancer,
// since its admissions wait for the new leader (Config.FailoverWait).
func (c *Client) Available(grace time.Duration) bool {
	if c.connected.Load() {
		return true
	}
	lost := c.lostAt.Load()
	return lost != 0 && grace > 0 && c.cfg.Now().Sub(time.Unix(0, lost)) < grace
}

// ReplicaID returns the replica id this client announces.
func (c *Client) ReplicaID() string { return c.cfg.ReplicaID }

// Admit asks for a lease. It blocks while the request is queued; cancelling ctx
// takes it off the queue. The granted lease is renewed by the session until it
// is released. Failures are *Error (refusals carry their relay.Reason, which
// errors.As finds), or the context's error when the caller went away.
func (c *Client) Admit(ctx context.Context, req relay.AdmitRequest) (relay.Grant, error) {
	return c.admit(ctx, req, c.admitCall(nil))
}

// admit runs one admission through call (unary Admit or AdmitStream).
func (c *Client) admit(ctx context.Context, r relay.AdmitRequest, call func(context.Context, *controlplanev1.AdmitRequest) (*controlplanev1.AdmitResponse, error)) (relay.Grant, error) {
	req := admitRequestProto(r, c.cfg.ReplicaID)
	callCtx := c.outgoing(ctx)
	if c.cfg.AdmitTimeout > 0 {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(callCtx, c.cfg.AdmitTimeout)
		defer cancel()
	}
	resp, err := c.callFailingOver(ctx, callCtx, req, call)
	if err != nil {
		// The control plane may answer for the expired deadline (even with
		// Canceled) a moment before the local context notices it.
		deadline, hasDeadline := callCtx.Deadline()
		ownDeadline := errors.Is(callCtx.Err(), context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded ||
			(hasDeadline && !time.Now().Before(deadline))
		if c.cfg.AdmitTimeout > 0 && ctx.Err() == nil && ownDeadline {
			return relay.Grant{}, &Error{Code: codes.DeadlineExceeded, Reason: relay.ReasonQueueTimeout,
				Message: "timed out waiting for a backend", Wait: time.Second}
		}
		return relay.Grant{}, fromStatus(ctx, err)
	}
	if resp.GetLease().GetLeaseId() == "" {
		return relay.Grant{}, &Error{Code: codes.Internal, Message: "admit answered without a lease"}
	}
	c.leases.add(resp.GetLease())
	return grantOf(resp), nil
}

// callFailingOver runs call, and while it fails because no control plane can
// be reached, runs it again (with backoff) for up to Config.FailoverWait: an
// admission in flight when the leader died, or one that arrives before the
// standby has taken over, waits for the new leader instead of failing. Nothing
// has been sent to the client yet; an admission the old leader granted without
// answering died with its memory (its quota reservation was memory-only).
func (c *Client) callFailingOver(ctx, callCtx context.Context, req *controlplanev1.AdmitRequest,
	call func(context.Context, *controlplanev1.AdmitRequest) (*controlplanev1.AdmitResponse, error),
) (*controlplanev1.AdmitResponse, error) {
	resp, err := call(callCtx, req)
	if err == nil || c.cfg.FailoverWait <= 0 {
		return resp, err
	}
	deadline := time.Now().Add(c.cfg.FailoverWait)
	for attempt := 0; unreachable(err) && time.Now().Before(deadline) && callCtx.Err() == nil; attempt++ {
		c.metrics.admitRetries.Inc()
		t := time.NewTimer(min(c.backoff(attempt), time.Second))
		select {
		case <-callCtx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		resp, err = call(callCtx, req)
	}
	return resp, err
}

// unreachable reports whether a call failed because no control plane answered
// it (as opposed to a refusal, which always carries a reason).
func unreachable(err error) bool {
	var e *Error
	return errors.As(fromStatus(context.Background(), err), &e) && e.Code == codes.Unavailable && e.Reason == relay.ReasonUnspecified
}

// Release settles a lease. It runs on a context detached from ctx (a client
// that went away must still be accounted for) with its own timeout. When the
// control plane cannot be reached the release is queued and retried in the
// background and Release returns nil; it returns an error only when the release
// is lost (queue full) or refused for good (e.g. the lease already expired).
//
// With Config.SessionReleases and the session up, the release is handed to the
// session instead and Release returns at once; a refusal is then logged when the
// acknowledgement arrives.
func (c *Client) Release(ctx context.Context, rel relay.Release) error {
	req := releaseProto(rel)
	req.Traceparent = traceparent(ctx)
	if c.cfg.SessionReleases && c.connected.Load() && c.toSession(req) {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	err := c.releaseOnce(ctx, req)
	switch {
	case err == nil:
		c.leases.remove(req.GetLeaseId())
		c.metrics.releases.WithLabelValues("ok").Inc()
		return nil
	case !retryableRelease(err):
		c.leases.remove(req.GetLeaseId())
		c.metrics.releases.WithLabelValues("refused").Inc()
		return fmt.Errorf("release lease %s: %w", req.GetLeaseId(), err)
	}
	select {
	case c.pending <- req:
		c.metrics.releases.WithLabelValues("deferred").Inc()
		return nil
	default:
		c.leases.remove(req.GetLeaseId())
		c.metrics.releases.WithLabelValues("dropped").Inc()
		return fmt.Errorf("release lease %s: retry queue full: %w", req.GetLeaseId(), err)
	}
}

// toSession hands a release to the session; false when the session is behind
// or shutting down (then the unary path takes it).
func (c *Client) toSession(req *controlplanev1.ReleaseRequest) bool {
	c.outMu.RLock()
	defer c.outMu.RUnlock()
	if c.outClosed {
		return false
	}
	select {
	case c.outbox <- req:
		return true
	default:
		return false
	}
}

func (c *Client) releaseOnce(ctx context.Context, req *controlplanev1.ReleaseRequest) error {
	ctx, cancel := context.WithTimeout(c.outgoing(ctx), c.cfg.ReleaseTimeout)
	defer cancel()
	_, err := c.admission.Release(ctx, req)
	if err != nil {
		return fromStatus(context.Background(), err)
	}
	return nil
}

// retryableRelease reports whether a failed release may succeed later.
func retryableRelease(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Unknown, codes.Internal:
		return true
	}
	return false
}

// ListModels returns the catalog visible to credential, from a short-lived cache
// that the control plane's pushes invalidate.
func (c *Client) ListModels(ctx context.Context, credential string) ([]relay.ModelInfo, error) {
	now := c.cfg.Now()
	key := credentialKey(credential)
	if models, ok := c.catalog.get(key, now); ok {
		return models, nil
	}
	gen := c.catalog.generation()
	resp, err := c.admission.ListModels(c.outgoing(ctx), &controlplanev1.ListModelsRequest{Credential: credential})
	if err != nil {
		return nil, fromStatus(ctx, err)
	}
	models := modelsOf(resp.GetModels())
	c.catalog.put(key, gen, models, now.Add(c.cfg.CatalogTTL))
	return models, nil
}

// leaseSet is the set of leases in flight, renewed by heartbeats. Each lease keeps
// its identity so that a restarted control plane can adopt it again.
type leaseSet struct {
	mu  sync.Mutex
	ids map[string]*leaseEntry
}

// leaseEntry is a lease in flight: its identity and its progress.
type leaseEntry struct {
	ref      *controlplanev1.LeaseRef // never changed after add
	progress Progress
}

// Progress is what a lease in flight has used so far; heartbeats carry it to
// the control plane, which charges it if this replica dies before its Release.
type Progress struct {
	prompt, completion atomic.Int64
	reported           atomic.Bool
}

// Report records the prompt tokens (estimated until the backend says) and the
// completion tokens generated so far. Safe for concurrent use; a nil Progress
// ignores it.
func (p *Progress) Report(prompt, completion int64) {
	if p == nil {
		return
	}
	p.prompt.Store(prompt)
	p.completion.Store(completion)
	p.reported.Store(true)
}

func (s *leaseSet) add(l *controlplanev1.Lease) {
	ref := &controlplanev1.LeaseRef{
		LeaseId: l.GetLeaseId(), RequestId: l.GetRequestId(), BackendId: l.GetBackendId(),
		UserId: l.GetPrincipal().GetUserId(), Model: l.GetModel(), ApiKeyId: l.GetPrincipal().GetApiKeyId(),
	}
	s.mu.Lock()
	s.ids[l.GetLeaseId()] = &leaseEntry{ref: ref}
	s.mu.Unlock()
}

// progress returns the lease's progress record, nil when it is not in flight.
func (s *leaseSet) progress(id string) *Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.ids[id]; e != nil {
		return &e.progress
	}
	return nil
}

// refs returns the identities of the leases in flight with their progress,
// as fresh messages (a heartbeat marshals them while progress moves on).
func (s *leaseSet) refs() []*controlplanev1.LeaseRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*controlplanev1.LeaseRef, 0, len(s.ids))
	for _, e := range s.ids {
		r := &controlplanev1.LeaseRef{
			LeaseId: e.ref.GetLeaseId(), RequestId: e.ref.GetRequestId(), BackendId: e.ref.GetBackendId(),
			UserId: e.ref.GetUserId(), Model: e.ref.GetModel(), ApiKeyId: e.ref.GetApiKeyId(),
		}
		if e.progress.reported.Load() {
			r.PromptTokens, r.CompletionTokens, r.ProgressReported = e.progress.prompt.Load(), e.progress.completion.Load(), true
		}
		out = append(out, r)
	}
	return out
}

func (s *leaseSet) remove(ids ...string) {
	s.mu.Lock()
	for _, id := range ids {
		delete(s.ids, id)
	}
	s.mu.Unlock()
}

func (s *leaseSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.ids))
	for id := range s.ids {
		out = append(out, id)
	}
	return out
}

// ProgressReporter returns the function the relay reports a lease's progress
// to as its stream goes (nil when the lease is not in flight).
func (c *Client) ProgressReporter(leaseID string) func(prompt, completion int64) {
	if p := c.leases.progress(leaseID); p != nil {
		return p.Report
	}
	return nil
}

// InFlight returns the ids of the leases this replica holds (admitted and not
// yet released).
func (c *Client) InFlight() []string { return c.leases.list() }

// traceparent is the W3C trace context of ctx's span, for a release that rides
// the session: the control plane parents its Release span on it. Empty when
// ctx carries no sampled span context.
func traceparent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "" // no map, no injection: the common case without tracing
	}
	var carrier propagation.MapCarrier = map[string]string{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier["traceparent"]
}
