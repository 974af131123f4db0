package cpclienttest

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/proto/errinfo"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Backend is a backend the fake grants leases on.
type Backend struct {
	ID     int64
	Name   string
	URL    string
	Engine relay.Engine
	// Model is the name the backend knows; empty means the requested name.
	Model           string
	ContextLength   int64
	MaxOutputTokens int64
	Simulated       bool
}

// Server is the fake control plane. Configure it with the setters before or
// during a test; read what it saw with the getters.
type Server struct {
	controlplanev1.UnimplementedAdmissionServiceServer
	controlplanev1.UnimplementedSessionServiceServer

	// Token is the cluster token the fake requires; "" accepts any.
	Token string
	// HeartbeatInterval is announced in Welcome; default 50ms.
	HeartbeatInterval time.Duration

	addr string
	gs   *grpc.Server

	mu           sync.Mutex
	changed      chan struct{}
	keys         map[string]bool
	backends     []Backend
	models       []*controlplanev1.CatalogModel
	admitErrs    []error
	releaseErrs  []error
	gate         chan struct{}
	releaseGate  chan struct{}
	heldReleases int
	// sessionReleases counts releases received over sessions.
	sessionReleases int
	queuePosition   int32
	queueUpdates    []*controlplanev1.QueueUpdate
	noAdmitStream   bool
	noSessionAdmit  bool
	sessionAdmits   int
	admitStreams    int
	seq             int
	admits          []*controlplanev1.AdmitRequest
	releases        []*controlplanev1.ReleaseRequest
	settled         map[string]bool // lease id -> released
	listCalls       int
	hellos          []*controlplanev1.Hello
	heartbeats      [][]string
	heartbeatRefs   [][]*controlplanev1.LeaseRef
	heartbeatSpools []SpoolFill
	sessions        map[int]chan *controlplanev1.SessionResponse
	cancelledWait   int
}

// Start starts a fake on 127.0.0.1:0, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{changed: make(chan struct{}), settled: map[string]bool{}, sessions: map[int]chan *controlplanev1.SessionResponse{}}
	s.serve(t, "127.0.0.1:0")
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) serve(t testing.TB, addr string) {
	t.Helper()
	// A restart binds the old port again; the kernel may still be releasing it
	// on a loaded machine, so a bind is retried for a few seconds.
	var lis net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if lis, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("fake control plane: listen: %v", err)
	}
	gs := grpc.NewServer()
	controlplanev1.RegisterAdmissionServiceServer(gs, s)
	controlplanev1.RegisterSessionServiceServer(gs, s)
	s.mu.Lock()
	s.addr, s.gs = lis.Addr().String(), gs
	s.mu.Unlock()
	go func() { _ = gs.Serve(lis) }()
}

// Addr is the address to dial.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Stop stops the server at once, breaking streams, as a crash would.
func (s *Server) Stop() {
	s.mu.Lock()
	gs := s.gs
	s.mu.Unlock()
	if gs != nil {
		gs.Stop()
	}
}

// Restart stops the server and starts it again on the same address, keeping
// the recorded history (a control-plane restart, as the data plane sees it).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.serve(t, s.Addr())
}

// SetKeys makes only these credentials valid; with none set any non-empty
// credential is accepted.
func (s *Server) SetKeys(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = map[string]bool{}
	for _, k := range keys {
		s.keys[k] = true
	}
}

// SetBackends replaces the backends, tried in order.
func (s *Server) SetBackends(b ...Backend) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backends = slices.Clone(b)
}

// SetModels sets the catalog ListModels answers.
func (s *Server) SetModels(m ...relay.ModelInfo) {
	models := make([]*controlplanev1.CatalogModel, len(m))
	for i := range m {
		models[i] = catalogModel(m[i])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models = models
}

// SetQueuePosition sets the queue position Admit reports.
func (s *Server) SetQueuePosition(p int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queuePosition = p
}

// FailAdmits makes the next Admit calls fail with these errors, in order.
func (s *Server) FailAdmits(errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admitErrs = append(s.admitErrs, errs...)
}

// FailReleases makes the next Release calls fail with these errors, in order.
func (s *Server) FailReleases(errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseErrs = append(s.releaseErrs, errs...)
}

// HoldAdmits makes Admit wait (as if queued) until the returned func is called
// or the caller cancels.
func (s *Server) HoldAdmits() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gate := make(chan struct{})
	s.gate = gate
	return sync.OnceFunc(func() { close(gate) })
}

// HoldReleases makes Release wait (as a slow control plane would) until the
// returned func is called or the caller gives up. HeldReleases counts the
// calls waiting.
func (s *Server) HoldReleases() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gate := make(chan struct{})
	s.releaseGate = gate
	return sync.OnceFunc(func() { close(gate) })
}

// SessionReleases is the number of releases received over session streams
// (settled or not).
func (s *Server) SessionReleases() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionReleases
}

// HeldReleases is the number of Release calls waiting behind HoldReleases.
func (s *Server) HeldReleases() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heldReleases
}

// Refusal builds the status error the real control plane sends: code, an
// ErrorInfo with the reason (domain mindrouter.dev) and, when retryAfter > 0, a
// RetryInfo.
func Refusal(code codes.Code, reason relay.Reason, msg string, retryAfter time.Duration) error {
	st := status.New(code, msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: controlplanev1.Reason(reason).String(), Domain: errinfo.Domain}}
	if retryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)})
	}
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}

// notify wakes waiters; the caller holds s.mu.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) checkToken(ctx context.Context) error {
	if s.Token == "" {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-mindrouter-cluster-token"); len(v) == 1 && v[0] == s.Token {
		return nil
	}
	return status.Error(codes.Unauthenticated, "bad cluster token")
}

// Admit grants a lease on the first backend not excluded.
func (s *Server) Admit(ctx context.Context, req *controlplanev1.AdmitRequest) (*controlplanev1.AdmitResponse, error) {
	if err := s.checkToken(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.admits = append(s.admits, proto.CloneOf(req))
	s.notify()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			s.mu.Lock()
			s.cancelledWait++
			s.notify()
			s.mu.Unlock()
			return nil, status.Error(codes.Canceled, "caller went away")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys != nil && !s.keys[req.GetCredential()] || req.GetCredential() == "" {
		return nil, Refusal(codes.Unauthenticated, relay.ReasonInvalidCredential, "Invalid API key", 0)
	}
	if len(s.admitErrs) > 0 {
		err := s.admitErrs[0]
		s.admitErrs = s.admitErrs[1:]
		return nil, err
	}
	for _, b := range s.backends {
		if slices.Contains(req.GetExcludedBackendIds(), b.ID) {
			continue
		}
		s.seq++
		id := "lease-" + strconv.Itoa(s.seq)
		s.settled[id] = false
		model := b.Model
		if model == "" {
			model = req.GetModel()
		}
		return &controlplanev1.AdmitResponse{
			QueuePosition: s.queuePosition,
			Queued:        durationpb.New(0),
			Lease: &controlplanev1.Lease{
				LeaseId: id, RequestId: req.GetRequestId(), BackendId: b.ID, BackendName: b.Name,
				BackendUrl: b.URL, Engine: controlplanev1.Engine(b.Engine), Model: model, ContextLength: b.ContextLength,
				MaxOutputTokens: b.MaxOutputTokens, Simulated: b.Simulated,
				ExpiresAt: timestamppb.New(time.Now().Add(time.Minute)),
				Principal: &controlplanev1.Principal{UserId: 1, Username: "test", ApiKeyId: 1, Group: "users"},
			},
		}, nil
	}
	return nil, Refusal(codes.Unavailable, relay.ReasonNoHealthyBackend, "no healthy backend serves "+req.GetModel(), time.Second)
}

// Release records a settlement; it is idempotent by lease id.
func (s *Server) Release(ctx context.Context, req *controlplanev1.ReleaseRequest) (*controlplanev1.ReleaseResponse, error) {
	if err := s.checkToken(ctx); err != nil {
		return nil, err
	}
	if err := s.waitReleaseGate(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.releaseErrs) > 0 {
		err := s.releaseErrs[0]
		s.releaseErrs = s.releaseErrs[1:]
		return nil, err
	}
	released, ok := s.settled[req.GetLeaseId()]
	if !ok {
		return nil, Refusal(codes.NotFound, relay.ReasonLeaseNotFound, "unknown lease", 0)
	}
	if released {
		return &controlplanev1.ReleaseResponse{AlreadySettled: true}, nil
	}
	s.settled[req.GetLeaseId()] = true
	s.releases = append(s.releases, proto.CloneOf(req))
	s.notify()
	return &controlplanev1.ReleaseResponse{}, nil
}

func (s *Server) waitReleaseGate(ctx context.Context) error {
	s.mu.Lock()
	gate := s.releaseGate
	if gate != nil {
		s.heldReleases++
		s.notify()
	}
	s.mu.Unlock()
	if gate == nil {
		return nil
	}
	defer func() {
		s.mu.Lock()
		s.heldReleases--
		s.notify()
		s.mu.Unlock()
	}()
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return status.Error(codes.DeadlineExceeded, "caller gave up")
	}
}

// ListModels answers the catalog set with SetModels.
func (s *Server) ListModels(ctx context.Context, req *controlplanev1.ListModelsRequest) (*controlplanev1.ListModelsResponse, error) {
	if err := s.checkToken(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys != nil && !s.keys[req.GetCredential()] || req.GetCredential() == "" {
		return nil, Refusal(codes.Unauthenticated, relay.ReasonInvalidCredential, "Invalid API key", 0)
	}
	s.listCalls++
	s.notify()
	return &controlplanev1.ListModelsResponse{Models: s.models}, nil
}
