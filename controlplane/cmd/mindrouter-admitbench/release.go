package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// releaseLinger and maxReleaseBatch are the data plane's (cpclient): the first
// release of a batch waits this long for others.
const (
	releaseLinger   = 2 * time.Millisecond
	maxReleaseBatch = 256
)

// pendingRelease is a release handed to a session, with where to record it.
type pendingRelease struct {
	req     *controlplanev1.ReleaseRequest
	start   time.Time
	rec     *recorder
	measure bool
}

// sessionReleaser sends releases over one replica's session stream as the data
// plane does: batched, acknowledged by ReleasesAck. A release's latency is from
// hand-over to acknowledgement.
type sessionReleaser struct {
	replica string
	st      grpc.BidiStreamingClient[controlplanev1.SessionRequest, controlplanev1.SessionResponse]
	in      chan pendingRelease
	mu      sync.Mutex
	waiting map[string]pendingRelease
	done    chan struct{}
}

// openSession says Hello as replica and starts the sender and the receiver; they
// end when ctx does.
func openSession(ctx context.Context, cc grpc.ClientConnInterface, replica string) (*sessionReleaser, error) {
	st, err := controlplanev1.NewSessionServiceClient(cc).Session(clusterCtx(ctx))
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	hello := &controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Hello{Hello: &controlplanev1.Hello{ReplicaId: replica, Version: "admitbench"}}}
	if err := st.Send(hello); err != nil {
		return nil, fmt.Errorf("session hello: %w", err)
	}
	first, err := st.Recv()
	if err != nil {
		return nil, fmt.Errorf("session welcome: %w", err)
	}
	if first.GetWelcome() == nil {
		return nil, fmt.Errorf("session: first message is %T, want a Welcome", first.GetKind())
	}
	s := &sessionReleaser{replica: replica, st: st, in: make(chan pendingRelease, 65536),
		waiting: make(map[string]pendingRelease), done: make(chan struct{})}
	go s.send(ctx)
	go s.receive()
	return s, nil
}

func (s *sessionReleaser) release(p pendingRelease) { s.in <- p }

func (s *sessionReleaser) send(ctx context.Context) {
	batch := make([]*controlplanev1.ReleaseRequest, 0, maxReleaseBatch)
	for {
		var first pendingRelease
		select {
		case <-ctx.Done():
			_ = s.st.CloseSend()
			return
		case first = <-s.in:
		}
		batch = append(batch[:0], first.req)
		s.mu.Lock()
		s.waiting[first.req.GetLeaseId()] = first
		s.mu.Unlock()
		linger := time.NewTimer(releaseLinger)
	more:
		for len(batch) < maxReleaseBatch {
			select {
			case p := <-s.in:
				batch = append(batch, p.req)
				s.mu.Lock()
				s.waiting[p.req.GetLeaseId()] = p
				s.mu.Unlock()
			case <-linger.C:
				break more
			}
		}
		linger.Stop()
		msg := &controlplanev1.SessionRequest{Kind: &controlplanev1.SessionRequest_Releases{Releases: &controlplanev1.Releases{Releases: batch}}}
		if err := s.st.Send(msg); err != nil {
			return
		}
	}
}

func (s *sessionReleaser) receive() {
	defer close(s.done)
	for {
		m, err := s.st.Recv()
		if err != nil {
			return
		}
		ack := m.GetReleasesAck()
		if ack == nil {
			continue
		}
		now := time.Now()
		s.mu.Lock()
		for _, id := range ack.GetSettledLeaseIds() {
			if p, ok := s.waiting[id]; ok {
				delete(s.waiting, id)
				if p.measure {
					p.rec.addLate(now.Sub(p.start), false)
				}
			}
		}
		for _, id := range ack.GetRefusedLeaseIds() {
			if p, ok := s.waiting[id]; ok {
				delete(s.waiting, id)
				if p.measure {
					p.rec.addLate(0, true)
				}
			}
		}
		s.mu.Unlock()
	}
}
