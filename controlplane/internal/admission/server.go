package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Defaults of Options.
const (
	DefaultLeaseTTL          = 30 * time.Second
	DefaultSessionGrace      = 15 * time.Second
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultSweepInterval     = time.Second
	DefaultSettledMemory     = 100_000
	DefaultSettledTTL        = 10 * time.Minute
	DefaultSessionBuffer     = 64
	DefaultMaxTokens         = 1000
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	// LeaseTTL is how long a lease lives without a heartbeat (default 30 s).
	LeaseTTL time.Duration
	// SessionGrace is how long a replica's leases survive its broken Session before
	// they are reclaimed (default 15 s).
	SessionGrace time.Duration
	// HeartbeatInterval is what Welcome asks replicas to keep (default 10 s).
	HeartbeatInterval time.Duration
	// SweepInterval is how often Run looks for expired leases and lapsed graces
	// (default 1 s).
	SweepInterval time.Duration
	// SettledMemory and SettledTTL bound the memory of settled lease ids that makes
	// a late Release answer "already settled" (default 100 000 ids, 10 minutes).
	SettledMemory int
	SettledTTL    time.Duration
	// SessionBuffer bounds the pushes queued for one replica; a replica that falls
	// further behind is disconnected (it resyncs on reconnect). Default 64.
	SessionBuffer int

	// Scorer ranks the candidates of a request (default SlotScorer).
	Scorer Scorer
	// DecisionLog is how many scheduling decisions are kept for the admin view
	// (default 1000).
	DecisionLog int
	// Accountant reserves quota (default NoQuota).
	Accountant Accountant
	// DefaultMaxTokens is the output allowance of a chat or completion request
	// that sets no limit (default 1000, the reference's estimate). For a user with
	// a token budget it is also the cap sent to the backend, so that the request
	// cannot generate more than was reserved.
	DefaultMaxTokens int64
	// Revocations, when set, feeds CredentialRevoked pushes.
	Revocations Revocations
	// Gate, when set, is the service's on/off switch: while it is off every
	// Admit is refused with ErrServiceOffline, before the credential is even
	// looked up.
	Gate Gate
	// Usage, when set, receives every settled request that ran on a backend (for
	// the telemetry history and the energy attribution). It must not block.
	Usage UsageSink

	// Status converts an admission's error into the status error the unary
	// Admit returns (the gRPC server's error table), for admissions that ride a
	// session and so pass no interceptor. Default: status errors pass, context
	// errors keep their meaning, anything else is Internal.
	Status func(context.Context, error) error
	// Leading, when set, says whether this control plane leads; a session
	// admission on one that does not is refused as a unary Admit would be.
	Leading func() bool

	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives operational events (default: discard).
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// TracerProvider records a Release span for each release that rides a
	// session (unary calls get theirs from the gRPC instrumentation); nil
	// records none.
	TracerProvider trace.TracerProvider
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.LeaseTTL, DefaultLeaseTTL)
	def(&o.SessionGrace, DefaultSessionGrace)
	def(&o.HeartbeatInterval, DefaultHeartbeatInterval)
	def(&o.SweepInterval, DefaultSweepInterval)
	def(&o.SettledTTL, DefaultSettledTTL)
	if o.SettledMemory <= 0 {
		o.SettledMemory = DefaultSettledMemory
	}
	if o.SessionBuffer <= 0 {
		o.SessionBuffer = DefaultSessionBuffer
	}
	if o.Accountant == nil {
		o.Accountant = NoQuota{}
	}
	if o.Scorer == nil {
		o.Scorer = SlotScorer{}
	}
	if o.DefaultMaxTokens <= 0 {
		o.DefaultMaxTokens = DefaultMaxTokens
	}
	if o.DecisionLog <= 0 {
		o.DecisionLog = DefaultDecisionLog
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Status == nil {
		o.Status = plainStatus
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TracerProvider == nil {
		o.TracerProvider = noop.NewTracerProvider()
	}
	return o
}

// Server implements controlplanev1.AdmissionServiceServer and
// controlplanev1.SessionServiceServer.
type Server struct {
	controlplanev1.UnimplementedAdmissionServiceServer
	controlplanev1.UnimplementedSessionServiceServer

	ident     Identity
	reg       Registry
	sched     Scheduler
	scorer    Scorer
	acct      Accountant
	opts      Options
	log       *slog.Logger
	metrics   *metrics
	tracer    trace.Tracer
	leases    *leaseTable
	sessions  *sessionTable
	decisions *decisionLog
	served    servedTokens
	names     *directory
	// plans recycles the per-Admit plans and their buffers.
	plans sync.Pool
	// stopping is closed when Run returns: open sessions end and new ones are
	// refused, so that a graceful gRPC stop does not wait for streams that would
	// otherwise never end.
	stopping chan struct{}
	stopOnce sync.Once
}

// New returns a Server over ident and reg that takes its backend slots from
// sched (built by the caller: the composition root chooses the queue's policy).
func New(ident Identity, reg Registry, sched Scheduler, opts Options) (*Server, error) {
	if sched == nil {
		return nil, errors.New("admission: no scheduler")
	}
	opts = opts.withDefaults()
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("admission metrics: %w", err)
	}
	return &Server{
		ident:     ident,
		reg:       reg,
		sched:     sched,
		scorer:    opts.Scorer,
		acct:      opts.Accountant,
		opts:      opts,
		log:       opts.Logger,
		metrics:   m,
		tracer:    opts.TracerProvider.Tracer("github.com/mindrouter/mindrouter/controlplane/internal/admission"),
		leases:    newLeaseTable(opts.SettledMemory, opts.SettledTTL),
		sessions:  newSessionTable(),
		decisions: newDecisionLog(opts.DecisionLog),
		names:     newDirectory(),
		stopping:  make(chan struct{}),
	}, nil
}

// Run sweeps expired leases and lapsed replica sessions, re-evaluates waiters and
// tells replicas when the registry changes, and forwards revocations. It returns
// nil when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	defer s.stopOnce.Do(func() { close(s.stopping) })
	changes, unsubscribe := s.reg.Subscribe()
	defer unsubscribe()
	var revoked <-chan string
	if s.opts.Revocations != nil {
		ch, stop := s.opts.Revocations.Revocations()
		defer stop()
		revoked = ch
	}
	ticker := time.NewTicker(s.opts.SweepInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			s.sched.Kick()
			s.broadcast(&controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_CatalogChanged{
				CatalogChanged: &controlplanev1.CatalogChanged{Version: s.reg.Version()},
			}})
		case prefix, ok := <-revoked:
			if !ok {
				revoked = nil
				continue
			}
			s.broadcast(&controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_CredentialRevoked{
				CredentialRevoked: &controlplanev1.CredentialRevoked{KeyPrefix: prefix},
			}})
		case <-ticker.C:
			s.sweep(s.opts.Now())
		}
	}
}

// sweep frees leases past their expiry and the leases of replicas whose grace ran out.
func (s *Server) sweep(now time.Time) {
	for _, l := range s.leases.takeExpired(now) {
		s.metrics.expired.Inc()
		s.log.Warn("lease expired", slog.String("lease_id", l.id), slog.String("request_id", l.requestID),
			slog.String("replica_id", l.replica), slog.Int64("backend_id", l.cand.BackendID),
			slog.Duration("held", now.Sub(l.admitted)))
		s.free(l, Settlement{Outcome: controlplanev1.Outcome_OUTCOME_CLIENT_CANCELLED, Lost: true})
	}
	for _, replica := range s.sessions.lapsed(now, s.opts.SessionGrace) {
		leases := s.leases.takeReplica(replica, now)
		if len(leases) > 0 {
			s.log.Warn("replica gone, reclaiming its leases", slog.String("replica_id", replica), slog.Int("leases", len(leases)))
		}
		for _, l := range leases {
			s.metrics.reclaimed.Inc()
			s.free(l, Settlement{Outcome: controlplanev1.Outcome_OUTCOME_CLIENT_CANCELLED, Lost: true})
		}
	}
}

var (
	_ controlplanev1.AdmissionServiceServer = (*Server)(nil)
	_ controlplanev1.SessionServiceServer   = (*Server)(nil)
)
