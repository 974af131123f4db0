package admission

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Session keeps one replica's stream: Hello → Welcome, then each Heartbeat renews
// the replica's leases and is acknowledged, while catalog changes and revocations
// are pushed. When the stream ends, the replica's leases survive for SessionGrace;
// a new Session from the same replica within it keeps them.
func (s *Server) Session(stream grpc.BidiStreamingServer[controlplanev1.SessionRequest, controlplanev1.SessionResponse]) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	select {
	case <-s.stopping:
		return ErrShuttingDown
	default:
	}
	hello := first.GetHello()
	if hello == nil || hello.GetReplicaId() == "" {
		return invalidError("the first message of a session must be a Hello with a replica_id")
	}
	sess := &session{
		id:      newSessionID(),
		replica: hello.GetReplicaId(),
		push:    make(chan *controlplanev1.SessionResponse, s.opts.SessionBuffer),
		gone:    make(chan struct{}),
	}
	if old := s.sessions.open(sess); old != nil {
		old.end("replaced by a newer session of the same replica")
	}
	s.metrics.sessions.Inc()
	log := s.log.With(slog.String("replica_id", sess.replica), slog.String("session_id", sess.id))
	log.Info("replica session opened", slog.String("version", hello.GetVersion()))
	defer func() {
		s.metrics.sessions.Dec()
		if s.sessions.close(sess, s.opts.Now()) {
			log.Info("replica session closed; leases kept for the grace period", slog.Duration("grace", s.opts.SessionGrace))
		}
	}()

	err = stream.Send(&controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_Welcome{Welcome: &controlplanev1.Welcome{
		SessionId:         sess.id,
		HeartbeatInterval: durationpb.New(s.opts.HeartbeatInterval),
		LeaseTtl:          durationpb.New(s.opts.LeaseTTL),
		SessionAdmit:      true,
	}}})
	if err != nil {
		return err
	}

	// Admissions answer from their own goroutines: every write goes through
	// send. Once the handler returns nothing is written (a grant then counts as
	// undelivered and is freed), and the handler waits for its admissions.
	var sendMu sync.Mutex
	closed := false
	send := func(m *controlplanev1.SessionResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		if closed {
			return ErrSessionEnded
		}
		return stream.Send(m)
	}
	actx, cancelAdmits := context.WithCancel(ctx)
	admits := &sessionAdmits{s: s, ctx: actx, send: send, cancels: map[uint64]context.CancelFunc{}}
	defer func() {
		cancelAdmits()
		sendMu.Lock()
		closed = true
		sendMu.Unlock()
		admits.close()
	}()

	// The receiver ends when the stream does, which gRPC guarantees once this
	// handler returns.
	msgs := make(chan *controlplanev1.SessionRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			// Admissions start here, not behind a release batch being settled.
			switch k := m.GetKind().(type) {
			case *controlplanev1.SessionRequest_Admit:
				admits.start(k.Admit)
				continue
			case *controlplanev1.SessionRequest_Cancel:
				admits.cancel(k.Cancel.GetSeq())
				continue
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()

	for {
		var out *controlplanev1.SessionResponse
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-sess.gone:
			return sessionEnded(sess.reason)
		case <-s.stopping:
			return ErrShuttingDown
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case m := <-msgs:
			switch k := m.GetKind().(type) {
			case *controlplanev1.SessionRequest_Heartbeat:
				unknown := s.heartbeat(sess.replica, k.Heartbeat)
				sess.spoolBytes.Store(k.Heartbeat.GetAuditSpoolBytes())
				sess.spoolMax.Store(k.Heartbeat.GetAuditSpoolMaxBytes())
				out = &controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_HeartbeatAck{
					HeartbeatAck: &controlplanev1.HeartbeatAck{UnknownLeaseIds: unknown},
				}}
			case *controlplanev1.SessionRequest_Releases:
				out = &controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_ReleasesAck{
					ReleasesAck: s.releaseBatch(ctx, k.Releases.GetReleases()),
				}}
			default:
				return invalidError("expected a Heartbeat, Releases, Admit or Cancel after the Hello")
			}
		case out = <-sess.push:
		}
		if err := send(out); err != nil {
			return err
		}
	}
}

// maxReleaseBatch bounds the releases one Releases message may carry.
const maxReleaseBatch = 1024

// releaseBatch settles releases sent over a session, each as Release would, and
// says which were settled and which refused for good. Release itself counts
// them in the release metrics.
func (s *Server) releaseBatch(ctx context.Context, reqs []*controlplanev1.ReleaseRequest) *controlplanev1.ReleasesAck {
	ack := &controlplanev1.ReleasesAck{}
	for i, r := range reqs {
		if i >= maxReleaseBatch {
			// Unanswered: the replica sends them again.
			break
		}
		if _, err := s.releaseTraced(ctx, r); err != nil {
			s.log.Warn("release over the session refused", slog.String("lease_id", r.GetLeaseId()),
				slog.String("request_id", r.GetRequestId()), slog.Any("error", err))
			ack.RefusedLeaseIds = append(ack.RefusedLeaseIds, r.GetLeaseId())
			continue
		}
		ack.SettledLeaseIds = append(ack.SettledLeaseIds, r.GetLeaseId())
	}
	return ack
}

var (
	// ErrShuttingDown ends sessions when the control plane stops; replicas
	// reconnect (to this process after a restart, or to another behind the same
	// address). The server's error table maps it to Unavailable.
	ErrShuttingDown = errors.New("control plane shutting down")
	// ErrSessionEnded ends a session that the control plane ended (a newer
	// session of the same replica, a buffer its replica did not drain); the
	// refusal's own message says why. It maps to Aborted.
	ErrSessionEnded = errors.New("session ended")
)

// sessionEnded is an ended session: it maps like ErrSessionEnded and reads as
// the reason the session ended.
type sessionEnded string

func (e sessionEnded) Error() string      { return string(e) }
func (sessionEnded) Is(target error) bool { return target == ErrSessionEnded }

// broadcast queues msg for every open session; a session whose buffer is full is
// ended (its replica reconnects and starts from fresh caches).
func (s *Server) broadcast(msg *controlplanev1.SessionResponse) {
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	for _, sess := range s.sessions.live {
		select {
		case sess.push <- msg:
		default:
			sess.end("too far behind on control-plane pushes; reconnect")
		}
	}
}

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// session is one open replica stream.
type session struct {
	id      string
	replica string
	push    chan *controlplanev1.SessionResponse
	// gone is closed (once) to end the stream; reason is set before.
	gone    chan struct{}
	endOnce sync.Once
	reason  string
	// The audit spool's fill as the replica's last heartbeat reported it.
	spoolBytes, spoolMax atomic.Int64
}

func (s *session) end(reason string) {
	s.endOnce.Do(func() {
		s.reason = reason
		close(s.gone)
	})
}

// sessionTable tracks the open session of each replica and, for replicas whose
// session ended, when it did.
type sessionTable struct {
	mu   sync.Mutex
	live map[string]*session
	lost map[string]time.Time
}

func newSessionTable() *sessionTable {
	return &sessionTable{live: make(map[string]*session), lost: make(map[string]time.Time)}
}

// open makes sess the replica's session, cancels a running grace, and returns the
// session it replaces, if any.
func (t *sessionTable) open(sess *session) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.live[sess.replica]
	t.live[sess.replica] = sess
	delete(t.lost, sess.replica)
	return old
}

// close ends sess and starts the replica's grace, unless a newer session replaced
// it; it reports whether the grace started.
func (t *sessionTable) close(sess *session, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.live[sess.replica] != sess {
		return false
	}
	delete(t.live, sess.replica)
	t.lost[sess.replica] = now
	return true
}

// lapsed returns, and forgets, the replicas whose grace has run out.
func (t *sessionTable) lapsed(now time.Time, grace time.Duration) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for replica, since := range t.lost {
		if now.Sub(since) >= grace {
			out = append(out, replica)
			delete(t.lost, replica)
		}
	}
	return out
}

// SpoolFill is a connected replica's audit spool as its last heartbeat reported it.
type SpoolFill struct {
	Replica  string
	Bytes    int64
	MaxBytes int64 // 0: unbounded
}

// SpoolFills returns the audit spool fill of every connected replica, sorted by
// replica id.
func (s *Server) SpoolFills() []SpoolFill {
	s.sessions.mu.Lock()
	out := make([]SpoolFill, 0, len(s.sessions.live))
	for id, sess := range s.sessions.live {
		out = append(out, SpoolFill{Replica: id, Bytes: sess.spoolBytes.Load(), MaxBytes: sess.spoolMax.Load()})
	}
	s.sessions.mu.Unlock()
	slices.SortFunc(out, func(a, b SpoolFill) int { return strings.Compare(a.Replica, b.Replica) })
	return out
}

// releaseSpanName is the name the gRPC instrumentation gives a unary Release's
// server span; a release that rides a session gets a span of the same name.
const releaseSpanName = "mindrouter.controlplane.v1.AdmissionService/Release"

// releaseTraced settles a release that rode a session inside a server span
// whose parent is the request's own span (the release's traceparent), so that
// the request's trace shows its Release like its Admit. A release without one
// runs untraced: the session stream's own span would only mislead.
func (s *Server) releaseTraced(ctx context.Context, r *controlplanev1.ReleaseRequest) (*controlplanev1.ReleaseResponse, error) {
	sctx, span := s.startRemoteSpan(ctx, r.GetTraceparent(), releaseSpanName, "Release",
		attribute.Bool("mindrouter.release.session", true), attribute.String("mindrouter.lease_id", r.GetLeaseId()))
	if span == nil {
		return s.Release(ctx, r)
	}
	defer span.End()
	resp, err := s.Release(sctx, r)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return resp, err
}
