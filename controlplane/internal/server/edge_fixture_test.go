package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/mindrouter/mindrouter/controlplane/internal/health"
	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/store/storetest"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// edgeClusterToken is the cluster token every fixture server expects.
const edgeClusterToken = "test-cluster-token-0123456789"

// edgeFixture is a running Server: real gRPC and REST listeners on loopback, real
// identity and registry over SQLite, fakes for the data-plane services.
type edgeFixture struct {
	st      *store.Store
	ident   *identity.Service
	reg     *registry.Registry
	metrics *prometheus.Registry
	adm     *recordingAdmission
	sess    *holdingSession
	srv     *Server
	unready atomic.Bool

	grpcAddr string
	restURL  string
	conn     *grpc.ClientConn

	cancel context.CancelFunc
	done   chan error
}

// newEdgeFixture starts a server that stops gracefully within shutdownTimeout; the test's
// cleanup stops it and requires Serve to return nil.
func newEdgeFixture(t *testing.T, shutdownTimeout time.Duration) *edgeFixture {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st := storetest.SQLite(t)

	f := &edgeFixture{
		st:      st,
		metrics: prometheus.NewRegistry(),
		adm:     newRecordingAdmission(),
		sess:    newHoldingSession(),
	}
	f.ident = identity.New(st, identity.Options{Logger: log, Registerer: f.metrics})
	f.reg = registry.New(st, registry.Options{Logger: log, Registerer: f.metrics, Prober: staticProber{}})
	require.NoError(t, f.reg.Load(ctx))
	accounts, err := identity.NewAccounts(f.ident, st, identity.AccountOptions{})
	require.NoError(t, err)

	f.srv = New(Options{
		Services: Services{
			Admission: f.adm,
			Session:   f.sess,
			Registry:  registry.NewAdminServer(f.reg),
			Identity:  identity.NewAdminServer(f.ident, st, accounts),
			Telemetry: nodeagentv1.UnimplementedTelemetryServiceServer{},
		},
		Verifier:     f.ident,
		ClusterToken: edgeClusterToken,
		Ready: func(ctx context.Context) error {
			if f.unready.Load() {
				return errors.New("database unavailable")
			}
			return st.Ping(ctx)
		},
		Logger:         log,
		Registerer:     f.metrics,
		Gatherer:       f.metrics,
		TracerProvider: noop.NewTracerProvider(),
		Propagator:     propagation.TraceContext{},
	})

	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	restLis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.grpcAddr = grpcLis.Addr().String()
	f.restURL = "http://" + restLis.Addr().String()

	sctx, cancel := context.WithCancel(ctx)
	f.cancel = cancel
	f.done = make(chan error, 1)
	go func() { f.done <- f.srv.Serve(sctx, grpcLis, restLis, shutdownTimeout) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-f.done:
			require.NoError(t, err)
		case <-time.After(shutdownTimeout + 10*time.Second):
			t.Error("Serve did not return after cancellation")
		}
	})

	f.conn, err = grpc.NewClient(f.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.conn.Close() })
	return f
}

// stop cancels Serve's context and returns what Serve returned and how long it took.
func (f *edgeFixture) stop(t *testing.T, limit time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	f.cancel()
	select {
	case err := <-f.done:
		f.done <- err // for the cleanup
		return time.Since(start), err
	case <-time.After(limit):
		t.Fatalf("Serve did not return within %s of cancellation", limit)
		return 0, nil
	}
}

// user creates a user without a password in the named group.
func (f *edgeFixture) user(t *testing.T, name, group string) int64 {
	t.Helper()
	ctx := context.Background()
	g, err := f.st.GetGroupByName(ctx, group)
	require.NoError(t, err)
	u, err := f.st.CreateUser(ctx, store.UserSpec{Username: name, Email: name + "@example.edu", FullName: name, GroupID: g.ID})
	require.NoError(t, err)
	return u.ID
}

// key mints an API key for a user with the given scopes (none: inference only).
func (f *edgeFixture) key(t *testing.T, userID int64, scopes ...string) string {
	t.Helper()
	_, full, err := f.ident.CreateAPIKey(context.Background(), userID, "test key", nil, scopes)
	require.NoError(t, err)
	return full
}

// adminKey bootstraps the administrator and returns its key (scopes inference, admin).
func (f *edgeFixture) adminKey(t *testing.T) string {
	t.Helper()
	res, err := f.ident.Bootstrap(context.Background(), "")
	require.NoError(t, err)
	require.NotEmpty(t, res.Key)
	return res.Key
}

// withKey returns a context that sends key as a bearer token (nothing when empty).
func withKey(key string) context.Context {
	ctx := context.Background()
	if key == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

// withClusterToken returns a context that sends token as the cluster token.
func withClusterToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, ClusterTokenHeader, token)
}

// rest sends one request to the REST listener with the given headers and returns
// the status code and body.
func (f *edgeFixture) rest(t *testing.T, method, path, body string, header http.Header) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.restURL+path, rd)
	require.NoError(t, err)
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// bearerHeader is an Authorization: Bearer header (none when key is empty).
func bearerHeader(key string) http.Header {
	if key == "" {
		return http.Header{}
	}
	return http.Header{"Authorization": {"Bearer " + key}}
}

// counterValue reads a counter from the fixture's registry by name and labels.
func (f *edgeFixture) counterValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := f.metrics.Gather()
	require.NoError(t, err)
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// panicsTotal is the recovered-panic counter.
func (f *edgeFixture) panicsTotal(t *testing.T) float64 {
	t.Helper()
	return testutil.ToFloat64(f.srv.panics)
}

// recordingAdmission records the calls that reach it. ListModels with the credential
// "panic" panics; Admit with the request id "hold" signals entered and waits for gate.
type recordingAdmission struct {
	controlplanev1.UnimplementedAdmissionServiceServer
	admits     atomic.Int64
	listModels atomic.Int64
	entered    chan struct{}
	gate       chan struct{}
}

func newRecordingAdmission() *recordingAdmission {
	return &recordingAdmission{entered: make(chan struct{}, 1), gate: make(chan struct{})}
}

func (a *recordingAdmission) Admit(ctx context.Context, req *controlplanev1.AdmitRequest) (*controlplanev1.AdmitResponse, error) {
	a.admits.Add(1)
	if req.GetRequestId() == "hold" {
		a.entered <- struct{}{}
		select {
		case <-a.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &controlplanev1.AdmitResponse{Lease: &controlplanev1.Lease{LeaseId: "lease-" + req.GetRequestId()}}, nil
}

func (a *recordingAdmission) ListModels(_ context.Context, req *controlplanev1.ListModelsRequest) (*controlplanev1.ListModelsResponse, error) {
	a.listModels.Add(1)
	if req.GetCredential() == "panic" {
		panic("fake admission: asked to panic")
	}
	return &controlplanev1.ListModelsResponse{}, nil
}

// holdingSession answers a Hello with a Welcome and then holds the stream open until the
// client or the server ends it. A Hello from replica "panic" panics.
type holdingSession struct {
	controlplanev1.UnimplementedSessionServiceServer
	mu     sync.Mutex
	opened int
	open   chan string // replica ids of sessions welcomed; buffered
}

func newHoldingSession() *holdingSession { return &holdingSession{open: make(chan string, 16)} }

func (s *holdingSession) Session(stream grpc.BidiStreamingServer[controlplanev1.SessionRequest, controlplanev1.SessionResponse]) error {
	s.mu.Lock()
	s.opened++
	s.mu.Unlock()
	req, err := stream.Recv()
	if err != nil {
		return err
	}
	replica := req.GetHello().GetReplicaId()
	if replica == "panic" {
		panic("fake session: asked to panic")
	}
	if err := stream.Send(&controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_Welcome{
		Welcome: &controlplanev1.Welcome{SessionId: "session-" + replica},
	}}); err != nil {
		return err
	}
	select {
	case s.open <- replica:
	default:
	}
	for {
		if _, err := stream.Recv(); err != nil {
			return nil
		}
	}
}

func (s *holdingSession) sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// staticProber reports every backend healthy with one model, without any network.
type staticProber struct{}

func (staticProber) Probe(context.Context, string, string) (health.Result, error) {
	return health.Result{Healthy: true, Version: "0.9.0", Models: []store.ModelSpec{
		{Name: "llama3.2:3b", Family: "llama", ContextLength: 8192, Capabilities: []string{"completion"}},
	}}, nil
}
