package cpclienttest

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/proto/errinfo"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// DisableSessionAdmit makes later sessions' Welcome leave session_admit unset,
// as a control plane from before admissions rode the session.
func (s *Server) DisableSessionAdmit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noSessionAdmit = true
}

// SessionAdmits is the number of admissions received over sessions.
func (s *Server) SessionAdmits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionAdmits
}

// sessionAdmits answers one session's admissions, each as Admit (or, watched,
// AdmitStream) would, on the session's context.
type sessionAdmits struct {
	s    *Server
	ctx  context.Context
	stop func()
	send func(*controlplanev1.SessionResponse) error
	wg   sync.WaitGroup

	mu      sync.Mutex
	cancels map[uint64]context.CancelFunc
	closed  bool
}

func newSessionAdmits(s *Server, ctx context.Context, send func(*controlplanev1.SessionResponse) error) *sessionAdmits {
	ctx, cancel := context.WithCancel(ctx)
	a := &sessionAdmits{s: s, ctx: ctx, send: send, cancels: map[uint64]context.CancelFunc{}}
	a.stop = func() {
		cancel()
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		a.wg.Wait()
	}
	return a
}

func (a *sessionAdmits) start(m *controlplanev1.SessionAdmit) {
	ctx, cancel := context.WithCancel(a.ctx)
	if d := m.GetTimeout(); d != nil {
		ctx, cancel = context.WithTimeout(a.ctx, d.AsDuration())
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		cancel()
		return
	}
	a.cancels[m.GetSeq()] = cancel
	a.wg.Add(1)
	a.mu.Unlock()
	a.s.mu.Lock()
	a.s.sessionAdmits++
	updates := a.s.queueUpdates
	a.s.mu.Unlock()
	go func() {
		defer a.wg.Done()
		defer func() {
			a.mu.Lock()
			delete(a.cancels, m.GetSeq())
			a.mu.Unlock()
			cancel()
		}()
		result := func(r *controlplanev1.AdmitResult) error {
			r.Seq = m.GetSeq()
			return a.send(&controlplanev1.SessionResponse{Kind: &controlplanev1.SessionResponse_AdmitResult{AdmitResult: r}})
		}
		if m.GetWatch() {
			for _, u := range updates {
				_ = result(&controlplanev1.AdmitResult{Kind: &controlplanev1.AdmitResult_Queued{Queued: u}})
			}
		}
		resp, err := a.s.Admit(ctx, m.GetRequest())
		if err != nil {
			_ = result(&controlplanev1.AdmitResult{Kind: &controlplanev1.AdmitResult_Error{Error: admitError(err)}})
			return
		}
		_ = result(&controlplanev1.AdmitResult{Kind: &controlplanev1.AdmitResult_Admitted{Admitted: resp}})
	}()
}

func (a *sessionAdmits) cancel(seq uint64) {
	a.mu.Lock()
	cancel := a.cancels[seq]
	a.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// admitError carries a status error as an AdmitError.
func admitError(err error) *controlplanev1.AdmitError {
	st := status.Convert(err)
	if st.Code() == codes.Unknown {
		st = status.New(codes.Internal, st.Message())
	}
	return errinfo.AdmitError(st)
}
