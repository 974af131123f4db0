package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/alert"
	"github.com/mindrouter/mindrouter/controlplane/internal/audit"
	"github.com/mindrouter/mindrouter/controlplane/internal/conversation"
	"github.com/mindrouter/mindrouter/controlplane/internal/energy"
	"github.com/mindrouter/mindrouter/controlplane/internal/health"
	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/modeljob"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/responses"
	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
	"github.com/mindrouter/mindrouter/controlplane/internal/system"
	"github.com/mindrouter/mindrouter/controlplane/internal/telemetry"
	"github.com/mindrouter/mindrouter/proto/errinfo"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
	"github.com/mindrouter/mindrouter/spool"
)

const testClusterToken = "cluster-secret"

// fakeAdmission answers ListModels.
type fakeAdmission struct {
	controlplanev1.UnimplementedAdmissionServiceServer
	controlplanev1.UnimplementedSessionServiceServer
}

func (f *fakeAdmission) ListModels(context.Context, *controlplanev1.ListModelsRequest) (*controlplanev1.ListModelsResponse, error) {
	return &controlplanev1.ListModelsResponse{}, nil
}

func (f *fakeAdmission) Release(context.Context, *controlplanev1.ReleaseRequest) (*controlplanev1.ReleaseResponse, error) {
	panic("boom")
}

type testServer struct {
	srv *Server
	// signInCalls counts SignInService calls that reached their handler,
	// whose own refusals (a failed sign-in) the RBAC matrix must tell from
	// the interceptor's.
	signInCalls *atomic.Int64
	grpcAddr    string
	restURL     string
	keys        map[string]string // role -> API key
	spans       *tracetest.SpanRecorder
	metrics     *prometheus.Registry
}

// startServer runs the real server with the real identity, registry and telemetry
// services on SQLite; only admission is a fake.
func startServer(t *testing.T) *testServer {
	t.Helper()
	return startServerOn(t, storetest.SQLite(t))
}

// startServerOn is startServer on the given store (storetest's, whose 30 s
// statement timeout leaves room for an admin write's Argon2 work under -race
// on a loaded machine).
func startServerOn(t *testing.T, st *store.Store) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	ident := identity.New(st, identity.Options{Logger: log})
	boot, err := ident.Bootstrap(ctx, "")
	require.NoError(t, err)
	keys := map[string]string{"admin": boot.Key}
	for _, u := range []struct{ name, group string }{{"student", store.GroupStudent}, {"auditor", store.GroupAuditor}} {
		g, err := st.GetGroupByName(ctx, u.group)
		require.NoError(t, err)
		user, err := ident.CreateUser(ctx, u.name, u.name+"@example.edu", "correct horse battery", g.ID, "")
		require.NoError(t, err)
		_, key, err := ident.CreateAPIKey(ctx, user.ID, "k", nil, []string{identity.ScopeInference, identity.ScopeAdmin})
		require.NoError(t, err)
		keys[u.name] = key
		if u.name == "student" {
			_, narrow, err := ident.CreateAPIKey(ctx, user.ID, "inference only", nil, nil)
			require.NoError(t, err)
			keys["student-inference"] = narrow
		}
	}
	reg := registry.New(st, registry.Options{Logger: log, Prober: health.NewProber(nil, log)})
	require.NoError(t, reg.Load(ctx))
	tele, err := telemetry.New(st, telemetry.Options{Logger: log})
	require.NoError(t, err)
	spans := tracetest.NewSpanRecorder()
	metrics := prometheus.NewRegistry()
	adm := &fakeAdmission{}
	accounts, err := identity.NewAccounts(ident, st, identity.AccountOptions{})
	require.NoError(t, err)
	signIn := &countingSignIn{SignInServer: identity.NewSignInServer(accounts, nil), calls: new(atomic.Int64)}
	spool, err := spool.Open(t.TempDir(), 0)
	require.NoError(t, err)
	srv := New(Options{
		Services: Services{Admission: adm, Session: adm, Registry: registry.NewAdminServer(reg),
			Identity: identity.NewAdminServer(ident, st, accounts), Telemetry: tele,
			Account: identity.NewAccountServer(ident, st, accounts), SignIn: signIn,
			Conversation: conversation.NewServer(st),
			Responses:    responses.NewServer(st, ident),
			// Registered so that the RBAC matrix covers its methods; its handlers
			// are tested with admission.
			Scheduler:        adminv1.UnimplementedSchedulerServiceServer{},
			Audit:            audit.NewService(st, audit.NewRetention(st, audit.RetentionOptions{}), log),
			AuditIngest:      audit.NewIngester(audit.NewWriter(st, spool, audit.WriterOptions{Logger: log}), log),
			Status:           controlplanev1.UnimplementedStatusServiceServer{},
			TelemetryHistory: energy.NewService(st, energy.ServiceOptions{}),
			Catalog:          registry.NewCatalogServer(reg),
			Alert:            alert.NewService(st),
			System:           system.NewService(system.New(st), func(ctx context.Context) string { return actorFrom(ctx).Username }),
			ModelJob:         modeljob.NewService(st, reg, modeljob.NewRunner(st, reg, modeljob.Options{Logger: log}), modeljob.ServiceOptions{})},
		Actions:  st,
		Verifier: ident, Sessions: accounts, ClusterToken: testClusterToken, Ready: st.Ping, Logger: log,
		Registerer: metrics, Gatherer: metrics,
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
		Propagator:     propagation.TraceContext{},
	})
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	restLis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, grpcLis, restLis, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done) // storetest closes st after this
	})
	return &testServer{srv: srv, signInCalls: signIn.calls, grpcAddr: grpcLis.Addr().String(), restURL: "http://" + restLis.Addr().String(), keys: keys, spans: spans, metrics: metrics}
}

func (s *testServer) rest(t *testing.T, method, path, header, value, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.restURL+path, strings.NewReader(body))
	require.NoError(t, err)
	if header != "" {
		req.Header.Set(header, value)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestAdminAuthorizationOverREST(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	bearer := func(role string) string { return "Bearer " + s.keys[role] }
	register := `{"name":"b1","url":"http://127.0.0.1:9","engine":"vllm"}`
	cases := []struct {
		name, method, path, header, value, body string
		want                                    int
	}{
		{"no key", "GET", "/api/admin/backends", "", "", "", http.StatusUnauthorized},
		{"basic auth is not a key", "GET", "/api/admin/backends", "Authorization", "Basic YWRtaW46eA==", "", http.StatusUnauthorized},
		{"malformed key", "GET", "/api/admin/backends", "Authorization", "Bearer sk-not-ours", "", http.StatusUnauthorized},
		{"unknown key", "GET", "/api/admin/backends", "Authorization", "Bearer mr2_" + strings.Repeat("A", 43), "", http.StatusUnauthorized},
		{"inference-only key", "GET", "/api/admin/backends", "Authorization", bearer("student-inference"), "", http.StatusForbidden},
		{"admin scope, student group", "GET", "/api/admin/backends", "Authorization", bearer("student"), "", http.StatusForbidden},
		{"auditor reads", "GET", "/api/admin/backends", "Authorization", bearer("auditor"), "", http.StatusOK},
		{"auditor reads users", "GET", "/api/admin/users", "Authorization", bearer("auditor"), "", http.StatusOK},
		{"auditor cannot write", "POST", "/api/admin/backends/register", "Authorization", bearer("auditor"), register, http.StatusForbidden},
		{"admin reads via X-API-Key", "GET", "/api/admin/groups", "X-API-Key", s.keys["admin"], "", http.StatusOK},
		{"admin writes", "POST", "/api/admin/backends/register", "Authorization", bearer("admin"), register, http.StatusOK},
		{"admin, invalid input", "POST", "/api/admin/backends/register", "Authorization", bearer("admin"), `{"name":"x","url":"ftp://a","engine":"tgi"}`, http.StatusBadRequest},
		{"admin, unknown backend", "GET", "/api/admin/backends/999", "Authorization", bearer("admin"), "", http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, body := s.rest(t, tc.method, tc.path, tc.header, tc.value, tc.body)
			require.Equal(t, tc.want, got, body)
			require.NotContains(t, body, "mr2_", "no key material in answers")
		})
	}
}

func TestRESTShapesAndProbes(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	code, body := s.rest(t, "GET", "/api/admin/groups", "Authorization", "Bearer "+s.keys["admin"], "")
	require.Equal(t, http.StatusOK, code)
	var groups []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &groups), "list endpoints answer a bare array, like the original")
	require.NotEmpty(t, groups)
	require.Contains(t, groups[0], "scheduler_weight", "snake_case field names")

	code, body = s.rest(t, "GET", "/healthz", "", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"alive"`)
	code, _ = s.rest(t, "GET", "/readyz", "", "", "")
	require.Equal(t, http.StatusOK, code)
	code, body = s.rest(t, "GET", "/openapi.json", "", "", "")
	require.Equal(t, http.StatusOK, code)
	var doc struct {
		Paths map[string]any `json:"paths"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	require.Contains(t, doc.Paths, "/api/admin/backends/register")

	code, body = s.rest(t, "GET", "/metrics", "", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `mindrouter_cp_grpc_calls_total{code="OK",method="/mindrouter.admin.v1.IdentityService/ListGroups"} 1`)
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestClusterTokenGuardsInternalServices(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	client := controlplanev1.NewAdmissionServiceClient(dial(t, s.grpcAddr))
	for name, token := range map[string]string{"missing": "", "wrong": "nope", "admin key is not a cluster token": s.keys["admin"]} {
		ctx := context.Background()
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, ClusterTokenHeader, token)
		}
		_, err := client.ListModels(ctx, &controlplanev1.ListModelsRequest{})
		require.Equal(t, codes.Unauthenticated, status.Code(err), name)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), ClusterTokenHeader, testClusterToken)
	_, err := client.ListModels(ctx, &controlplanev1.ListModelsRequest{})
	require.NoError(t, err)

	// A panicking handler becomes a generic Internal error and is counted.
	_, err = client.Release(ctx, &controlplanev1.ReleaseRequest{})
	require.Equal(t, codes.Internal, status.Code(err))
	require.Equal(t, "internal error", status.Convert(err).Message())
	require.Contains(t, metricText(t, s.metrics), "mindrouter_cp_panics_total 1")
}

func TestTraceCrossesTheGRPCHop(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	prop := propagation.TraceContext{}
	clientSpans := tracetest.NewSpanRecorder()
	clientTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(clientSpans))
	conn := dial(t, s.grpcAddr, grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(clientTP), otelgrpc.WithPropagators(prop))))
	ctx, span := clientTP.Tracer("test").Start(context.Background(), "data plane request")
	ctx = metadata.AppendToOutgoingContext(ctx, ClusterTokenHeader, testClusterToken)
	_, err := controlplanev1.NewAdmissionServiceClient(conn).ListModels(ctx, &controlplanev1.ListModelsRequest{})
	require.NoError(t, err)
	span.End()

	require.Eventually(t, func() bool { return len(s.spans.Ended()) > 0 }, 5*time.Second, 10*time.Millisecond)
	server := s.spans.Ended()[0]
	require.Equal(t, span.SpanContext().TraceID(), server.SpanContext().TraceID(), "one trace across the hop")
	require.Equal(t, "mindrouter.controlplane.v1.AdmissionService/ListModels", server.Name())
}

func TestToStatus(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	queueFull := &scheduler.QueueError{Kind: scheduler.ErrQueueFull, Model: "m", After: 7 * time.Second}
	cases := []struct {
		name      string
		err       error
		code      codes.Code
		reason    string
		retryWant time.Duration
	}{
		{"invalid key", fmt.Errorf("verify: %w", identity.ErrInvalidCredential), codes.Unauthenticated, "REASON_INVALID_CREDENTIAL", 0},
		{"revoked", identity.ErrCredentialRevoked, codes.Unauthenticated, "REASON_CREDENTIAL_REVOKED", 0},
		{"forbidden", identity.ErrPermissionDenied, codes.PermissionDenied, "REASON_PERMISSION_DENIED", 0},
		{"no model", registry.ErrModelNotFound, codes.NotFound, "REASON_MODEL_NOT_FOUND", 0},
		{"capability", registry.ErrCapabilityUnsupported, codes.FailedPrecondition, "REASON_CAPABILITY_UNSUPPORTED", 0},
		{"queue full", queueFull, codes.ResourceExhausted, "REASON_QUEUE_FULL", 7 * time.Second},
		{"store conflict", fmt.Errorf("register: %w", store.ErrConflict), codes.AlreadyExists, "", 0},
		{"store invalid", store.ErrInvalid, codes.InvalidArgument, "REASON_INVALID_REQUEST", 0},
		// A text search too broad for the database is the client's to narrow
		// (REST 400), not an outage (503 database unavailable).
		{"search too broad", fmt.Errorf("search audit records: %w (Got error 128)", store.ErrSearchTooBroad), codes.FailedPrecondition, "REASON_INVALID_REQUEST", 0},
		{"database unavailable", store.Unavailable(errors.New("dial tcp")), codes.Unavailable, "REASON_DATABASE_UNAVAILABLE", 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := status.Convert(toStatus(context.Background(), log, "/m", tc.err))
			require.Equal(t, tc.code, st.Code())
			var reason string
			var retry time.Duration
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					reason = d.GetReason()
					require.Equal(t, errinfo.Domain, d.GetDomain())
				case *errdetails.RetryInfo:
					retry = d.GetRetryDelay().AsDuration()
				}
			}
			require.Equal(t, tc.reason, reason)
			require.Equal(t, tc.retryWant, retry)
		})
	}
	broad := status.Convert(toStatus(context.Background(), log, "/m", fmt.Errorf("search: %w (Got error 128 from InnoDB)", store.ErrSearchTooBroad)))
	require.Equal(t, store.ErrSearchTooBroad.Error(), broad.Message(), "tells the user to narrow the search, without the engine's detail")
	require.Contains(t, broad.Message(), "narrow")
	require.Equal(t, http.StatusBadRequest, runtime.HTTPStatusFromCode(broad.Code()), "REST answers 400, not 503")
	require.Equal(t, codes.Canceled, status.Code(toStatus(context.Background(), log, "/m", context.Canceled)))
	passthrough := status.Error(codes.InvalidArgument, "name is required")
	require.Equal(t, passthrough, toStatus(context.Background(), log, "/m", passthrough))
	internal := status.Convert(toStatus(context.Background(), log, "/m", errors.New("dial tcp 10.0.0.7:3306: secret detail")))
	require.Equal(t, codes.Internal, internal.Code())
	require.Equal(t, "internal error", internal.Message(), "internals never leak")
}

func TestAccessForRefusesUnknownMethods(t *testing.T) {
	t.Parallel()
	_, ok := accessFor("/some.other.v1.Service/Do")
	require.False(t, ok)
	level, ok := accessFor("/mindrouter.admin.v1.RegistryService/ListBackends")
	require.True(t, ok)
	require.Equal(t, accessRead, level)
	level, _ = accessFor("/mindrouter.admin.v1.RegistryService/RemoveBackend")
	require.Equal(t, accessWrite, level)
}

func metricText(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetCounter() != nil {
				fmt.Fprintf(&b, "%s %g\n", mf.GetName(), m.GetCounter().GetValue())
			}
		}
	}
	return b.String()
}

// countingSignIn counts the calls that reach the SignInService handlers.
type countingSignIn struct {
	*identity.SignInServer
	calls *atomic.Int64
}

func (c *countingSignIn) PasswordLogin(ctx context.Context, req *controlplanev1.PasswordLoginRequest) (*controlplanev1.PasswordLoginResponse, error) {
	c.calls.Add(1)
	return c.SignInServer.PasswordLogin(ctx, req)
}

func (c *countingSignIn) Logout(ctx context.Context, req *controlplanev1.LogoutRequest) (*controlplanev1.LogoutResponse, error) {
	c.calls.Add(1)
	return c.SignInServer.Logout(ctx, req)
}

func (c *countingSignIn) BeginOIDC(ctx context.Context, req *controlplanev1.BeginOIDCRequest) (*controlplanev1.BeginOIDCResponse, error) {
	c.calls.Add(1)
	return c.SignInServer.BeginOIDC(ctx, req)
}

func (c *countingSignIn) ListProviders(ctx context.Context, req *controlplanev1.ListProvidersRequest) (*controlplanev1.ListProvidersResponse, error) {
	c.calls.Add(1)
	return c.SignInServer.ListProviders(ctx, req)
}

func (c *countingSignIn) CompleteOIDC(ctx context.Context, req *controlplanev1.CompleteOIDCRequest) (*controlplanev1.CompleteOIDCResponse, error) {
	c.calls.Add(1)
	return c.SignInServer.CompleteOIDC(ctx, req)
}
