package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/mindrouter/mindrouter/proto/gateway"
	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	auditv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/audit/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// Services are the gRPC services the control plane serves.
type Services struct {
	Admission controlplanev1.AdmissionServiceServer
	Session   controlplanev1.SessionServiceServer
	Registry  adminv1.RegistryServiceServer
	Identity  adminv1.IdentityServiceServer
	Scheduler adminv1.SchedulerServiceServer
	Telemetry nodeagentv1.TelemetryServiceServer
	// Account and SignIn (people's own accounts and browser sign-in) are
	// served when set.
	Account accountv1.AccountServiceServer
	SignIn  controlplanev1.SignInServiceServer
	// Conversation (the web chat's conversations) is served when set.
	Conversation accountv1.ConversationServiceServer
	// Responses (the Responses API's stored responses) is served when set.
	Responses controlplanev1.ResponseStoreServiceServer
	// Audit (the admin API's audit reads) and AuditIngest (records from data
	// planes) are served when set.
	Audit       auditv1.AuditServiceServer
	AuditIngest controlplanev1.AuditIngestServiceServer
	// Status (the public status page's data) is served when set.
	Status controlplanev1.StatusServiceServer
	// TelemetryHistory (history, export, energy) is served when set.
	TelemetryHistory adminv1.TelemetryHistoryServiceServer
	// Catalog (model overrides and aliases) is served when set.
	Catalog adminv1.CatalogServiceServer
	// Alert (the fleet's alerts) is served when set.
	Alert adminv1.AlertServiceServer
	// System (the service's on/off switch) is served when set.
	System adminv1.SystemServiceServer
	// ModelJob (Ollama pulls and deletes) is served when set.
	ModelJob adminv1.ModelJobServiceServer
}

// Options configure a Server.
type Options struct {
	Services Services
	Verifier Verifier
	// Actions records every state-changing admin call in the transaction of its
	// change; nil records nothing.
	Actions ActionRecorder
	// Sessions resolves browser sessions; nil refuses them.
	Sessions     SessionVerifier
	ClusterToken string
	// Ready reports whether the control plane can serve (e.g. the database answers).
	Ready func(ctx context.Context) error
	// Leading reports whether this control plane is the leader; while it says
	// no, every call is refused with UNAVAILABLE and /readyz answers 503. Nil
	// means always (no leader election).
	Leading    func() bool
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// TracerProvider records the server's spans; nil records none and installs no
	// tracing instrumentation at all (the control plane calls nothing downstream
	// that a trace context would have to reach, so without an exporter spans are
	// pure cost).
	TracerProvider trace.TracerProvider
	// Propagator extracts the caller's trace context (W3C trace context), so that a
	// data-plane request and its Admit/Release are one trace.
	Propagator propagation.TextMapPropagator
}

// streamWorkers is the size of the gRPC server's handler goroutine pool.
const streamWorkers = 64

// Server serves gRPC on one listener and the REST admin gateway, /metrics, /healthz,
// /readyz and the OpenAPI document on another.
type Server struct {
	log      *slog.Logger
	auth     *authenticator
	actions  ActionRecorder
	grpc     *grpc.Server
	health   *health.Server
	ready    func(ctx context.Context) error
	leading  func() bool
	gatherer prometheus.Gatherer
	calls    *prometheus.CounterVec
	panics   prometheus.Counter
}

// New builds the gRPC server with its interceptors and registers every service.
func New(opts Options) *Server {
	s := &Server{
		log:      opts.Logger,
		auth:     newAuthenticator(opts.Verifier, opts.Sessions, opts.ClusterToken),
		actions:  opts.Actions,
		health:   health.NewServer(),
		ready:    opts.Ready,
		leading:  opts.Leading,
		gatherer: opts.Gatherer,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_cp_grpc_calls_total",
			Help: "gRPC calls served by the control plane, by method and status code.",
		}, []string{"method", "code"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_cp_panics_total",
			Help: "Panics recovered in gRPC handlers.",
		}),
	}
	if s.leading == nil {
		s.leading = func() bool { return true }
	}
	opts.Registerer.MustRegister(s.calls, s.panics)
	sopts := []grpc.ServerOption{
		// Handlers run on pooled goroutines whose stacks have already grown, instead
		// of a fresh goroutine per call growing its stack through the interceptors
		// each time (runtime.copystack was 8% of the control plane's CPU at 5,000
		// Admit+Release pairs/s, 3% with workers). Long-lived streams (replica
		// sessions, node agents) each hold a worker, hence more than a few; when all
		// are busy a call gets a goroutine of its own.
		grpc.NumStreamWorkers(streamWorkers),
		grpc.ChainUnaryInterceptor(s.countUnary, s.leaderUnary, s.unary),
		grpc.ChainStreamInterceptor(s.countStream, s.leaderStream, s.stream),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
	if opts.TracerProvider != nil {
		sopts = append(sopts, grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(opts.TracerProvider), otelgrpc.WithPropagators(opts.Propagator))))
	}
	s.grpc = grpc.NewServer(sopts...)
	svc := opts.Services
	controlplanev1.RegisterAdmissionServiceServer(s.grpc, svc.Admission)
	controlplanev1.RegisterSessionServiceServer(s.grpc, svc.Session)
	adminv1.RegisterRegistryServiceServer(s.grpc, svc.Registry)
	adminv1.RegisterIdentityServiceServer(s.grpc, svc.Identity)
	if svc.Scheduler != nil {
		adminv1.RegisterSchedulerServiceServer(s.grpc, svc.Scheduler)
	}
	if svc.Account != nil {
		accountv1.RegisterAccountServiceServer(s.grpc, svc.Account)
	}
	if svc.SignIn != nil {
		controlplanev1.RegisterSignInServiceServer(s.grpc, svc.SignIn)
	}
	if svc.Responses != nil {
		controlplanev1.RegisterResponseStoreServiceServer(s.grpc, svc.Responses)
	}
	if svc.Conversation != nil {
		accountv1.RegisterConversationServiceServer(s.grpc, svc.Conversation)
	}
	if svc.Audit != nil {
		auditv1.RegisterAuditServiceServer(s.grpc, svc.Audit)
	}
	if svc.AuditIngest != nil {
		controlplanev1.RegisterAuditIngestServiceServer(s.grpc, svc.AuditIngest)
	}
	if svc.Status != nil {
		controlplanev1.RegisterStatusServiceServer(s.grpc, svc.Status)
	}
	if svc.Catalog != nil {
		adminv1.RegisterCatalogServiceServer(s.grpc, svc.Catalog)
	}
	if svc.TelemetryHistory != nil {
		adminv1.RegisterTelemetryHistoryServiceServer(s.grpc, svc.TelemetryHistory)
	}
	if svc.Alert != nil {
		adminv1.RegisterAlertServiceServer(s.grpc, svc.Alert)
	}
	if svc.System != nil {
		adminv1.RegisterSystemServiceServer(s.grpc, svc.System)
	}
	if svc.ModelJob != nil {
		adminv1.RegisterModelJobServiceServer(s.grpc, svc.ModelJob)
	}
	nodeagentv1.RegisterTelemetryServiceServer(s.grpc, svc.Telemetry)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s
}

// Serve runs until ctx is cancelled, then stops gracefully: REST first, then gRPC
// (in-flight calls and open streams get until shutdownTimeout).
func (s *Server) Serve(ctx context.Context, grpcLis, restLis net.Listener, shutdownTimeout time.Duration) error {
	// The REST gateway reaches the gRPC server in memory, not through grpcLis:
	// that port may demand TLS and client certificates of the outside world,
	// and the gateway's callers are authorized by the same interceptor anyway.
	inproc := bufconn.Listen(1 << 20)
	conn, err := grpc.NewClient("passthrough:///gateway",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return inproc.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial own gRPC server: %w", err)
	}
	defer conn.Close()
	gw := NewGatewayMux()
	if err := gateway.RegisterAdmin(ctx, gw, conn); err != nil {
		return err
	}
	rest := &http.Server{
		Handler:           s.restHandler(gw),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ignoreClosed(s.grpc.Serve(grpcLis)) })
	g.Go(func() error { return ignoreClosed(s.grpc.Serve(inproc)) })
	g.Go(func() error { return ignoreClosed(rest.Serve(restLis)) })
	g.Go(func() error {
		<-gctx.Done()
		s.health.Shutdown()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		_ = rest.Shutdown(sctx)
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-sctx.Done():
			s.grpc.Stop()
		}
		return nil
	})
	return g.Wait()
}

// NewGatewayMux returns the REST gateway mux with the JSON conventions of the
// original API: snake_case field names and every field present.
func NewGatewayMux() *runtime.ServeMux {
	return runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, gateway.Marshaler()),
		runtime.WithErrorHandler(restErrorHandler),
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			if http.CanonicalHeaderKey(key) == "X-Api-Key" {
				return "x-api-key", true
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
	)
}

func (s *Server) restHandler(gw http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/admin/", gw)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"status":"alive","timestamp":%q}`, time.Now().UTC().Format(time.RFC3339))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !s.leading() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"not_leader"}`))
		return
	}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			s.log.WarnContext(ctx, "not ready", slog.Any("error", err))
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"not_ready"}`))
			return
		}
	}
	_, _ = w.Write([]byte(`{"status":"ready"}`))
}

func (s *Server) recoverPanic(ctx context.Context, method string, err *error) {
	if r := recover(); r != nil {
		s.panics.Inc()
		s.log.ErrorContext(ctx, "panic in handler", slog.String("method", method), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
		*err = status.Error(codes.Internal, "internal error")
	}
}

func (s *Server) countUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	s.calls.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	return resp, err
}

func (s *Server) countStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, ss)
	s.calls.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	return err
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
