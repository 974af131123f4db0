package cpclienttest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Session serves one replica's session: Hello, then Welcome, then a
// HeartbeatAck for every Heartbeat (naming the leases it does not know or has
// settled), with pushes from Push in between.
func (s *Server) Session(st grpc.BidiStreamingServer[controlplanev1.SessionRequest, controlplanev1.SessionResponse]) error {
	if err := s.checkToken(st.Context()); err != nil {
		return err
	}
	first, err := st.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "first message must be a Hello")
	}
	interval := s.HeartbeatInterval
	if interval <= 0 {
		interval = 50 * time.Millisecond
	}
	pushes := make(chan *controlplanev1.SessionResponse, 16)
	s.mu.Lock()
	s.hellos = append(s.hellos, proto.CloneOf(hello))
	id := len(s.hellos)
	s.sessions[id] = pushes
	s.notify()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, id)
		s.notify()
		s.mu.Unlock()
	}()
	s.mu.Lock()
	sessionAdmit := !s.noSessionAdmit
	s.mu.Unlock()
	welcome := &controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_Welcome{Welcome: &controlplanev1.Welcome{
		SessionId: "session-" + hello.GetReplicaId(), HeartbeatInterval: durationpb.New(interval),
		LeaseTtl: durationpb.New(time.Minute), SessionAdmit: sessionAdmit,
	}}}
	if err := st.Send(welcome); err != nil {
		return err
	}
	// Admissions answer from their own goroutines, so every write is serialised.
	var sendMu sync.Mutex
	send := func(m *controlplanev1.SessionResponse) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return st.Send(m)
	}
	admits := newSessionAdmits(s, st.Context(), send)
	defer admits.stop()
	beats := make(chan *controlplanev1.Heartbeat)
	rels := make(chan []*controlplanev1.ReleaseRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := st.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if a := m.GetAdmit(); a != nil {
				admits.start(a)
			}
			if c := m.GetCancel(); c != nil {
				admits.cancel(c.GetSeq())
			}
			if hb := m.GetHeartbeat(); hb != nil {
				select {
				case beats <- hb:
				case <-st.Context().Done():
					return
				}
			}
			if r := m.GetReleases(); r != nil {
				select {
				case rels <- r.GetReleases():
				case <-st.Context().Done():
					return
				}
			}
		}
	}()
	for {
		select {
		case err := <-recvErr:
			return err
		case p := <-pushes:
			if err := send(p); err != nil {
				return err
			}
		case batch := <-rels:
			// Each as the unary Release would (the same gate and injected
			// errors); a transient error leaves the release unacknowledged, so
			// the replica sends it again on its next session.
			// Counted before they are settled: a test that waits for the
			// releases (WaitReleases) then finds them counted.
			s.mu.Lock()
			s.sessionReleases += len(batch)
			s.mu.Unlock()
			ack := &controlplanev1.ReleasesAck{}
			for _, r := range batch {
				_, err := s.Release(st.Context(), r)
				switch status.Code(err) {
				case codes.OK:
					ack.SettledLeaseIds = append(ack.SettledLeaseIds, r.GetLeaseId())
				case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition:
					ack.RefusedLeaseIds = append(ack.RefusedLeaseIds, r.GetLeaseId())
				}
			}
			if err := send(&controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_ReleasesAck{ReleasesAck: ack}}); err != nil {
				return err
			}
		case hb := <-beats:
			ids := hb.GetLeaseIds()
			s.mu.Lock()
			s.heartbeats = append(s.heartbeats, ids)
			s.heartbeatRefs = append(s.heartbeatRefs, hb.GetLeases())
			s.heartbeatSpools = append(s.heartbeatSpools, SpoolFill{hb.GetAuditSpoolBytes(), hb.GetAuditSpoolMaxBytes()})
			var unknown []string
			for _, l := range ids {
				if released, ok := s.settled[l]; !ok || released {
					unknown = append(unknown, l)
				}
			}
			s.notify()
			s.mu.Unlock()
			ack := &controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_HeartbeatAck{
				HeartbeatAck: &controlplanev1.HeartbeatAck{UnknownLeaseIds: unknown}}}
			if err := send(ack); err != nil {
				return err
			}
		}
	}
}

// Push sends m to every open session.
func (s *Server) Push(m *controlplanev1.SessionResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.sessions {
		select {
		case ch <- m:
		default:
		}
	}
}

// Admits returns the Admit requests seen, in order.
func (s *Server) Admits() []relay.AdmitRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]relay.AdmitRequest, len(s.admits))
	for i, a := range s.admits {
		out[i] = admitRequest(a)
	}
	return out
}

// AdmitMessages returns the Admit requests seen, in order, as they came over
// the wire.
func (s *Server) AdmitMessages() []*controlplanev1.AdmitRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.admits)
}

// Releases returns the first Release of each lease, in order.
func (s *Server) Releases() []relay.Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]relay.Release, len(s.releases))
	for i, r := range s.releases {
		out[i] = release(r)
	}
	return out
}

// Unreleased returns the ids of leases granted and not released.
func (s *Server) Unreleased() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, released := range s.settled {
		if !released {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Hellos returns the Hello messages seen.
func (s *Server) Hellos() []*controlplanev1.Hello {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hellos)
}

// HeartbeatLeases returns the lease identities of every heartbeat seen.
func (s *Server) HeartbeatLeases() [][]*controlplanev1.LeaseRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.heartbeatRefs)
}

// SpoolFill is the audit spool's fill as a heartbeat reported it.
type SpoolFill struct{ Bytes, MaxBytes int64 }

// HeartbeatSpools returns the audit spool fill of every heartbeat seen.
func (s *Server) HeartbeatSpools() []SpoolFill {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.heartbeatSpools)
}

// Heartbeats returns the lease ids of every heartbeat seen.
func (s *Server) Heartbeats() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.heartbeats)
}

// ListModelsCalls returns how many ListModels calls were answered.
func (s *Server) ListModelsCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listCalls
}

// CancelledAdmits returns how many held Admits ended because the caller left.
func (s *Server) CancelledAdmits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelledWait
}

// OpenSessions returns how many session streams are open.
func (s *Server) OpenSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// WaitFor waits until cond (evaluated without the fake's lock) holds, failing
// the test after timeout (5s when 0).
func (s *Server) WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("fake control plane: timed out waiting for %s", what)
		}
	}
}

// WaitReleases waits until n leases have been released and returns the releases.
func (s *Server) WaitReleases(t testing.TB, n int) []relay.Release {
	t.Helper()
	s.WaitFor(t, 0, "releases", func() bool { return len(s.Releases()) >= n })
	return s.Releases()
}
