package cpclienttest

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mindrouter/mindrouter/dataplane/internal/relay"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// SetQueueUpdates sets the updates AdmitStream sends before it waits (see
// HoldAdmits) and grants.
func (s *Server) SetQueueUpdates(u ...relay.QueueUpdate) {
	updates := make([]*controlplanev1.QueueUpdate, len(u))
	for i, q := range u {
		updates[i] = &controlplanev1.QueueUpdate{Position: q.Position}
		if q.EstimatedWait > 0 {
			updates[i].EstimatedWait = durationpb.New(q.EstimatedWait)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queueUpdates = updates
}

// DisableAdmitStream makes AdmitStream answer Unimplemented, as a control
// plane from before it does.
func (s *Server) DisableAdmitStream() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noAdmitStream = true
}

// AdmitStreams is the number of AdmitStream calls received.
func (s *Server) AdmitStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admitStreams
}

// AdmitStream sends the queue updates, then answers as Admit does.
func (s *Server) AdmitStream(in *controlplanev1.AdmitStreamRequest, st grpc.ServerStreamingServer[controlplanev1.AdmitStreamResponse]) error {
	req := in.GetRequest()
	if err := s.checkToken(st.Context()); err != nil {
		return err
	}
	s.mu.Lock()
	off, updates := s.noAdmitStream, s.queueUpdates
	if !off {
		s.admitStreams++
	}
	s.mu.Unlock()
	if off {
		return status.Error(codes.Unimplemented, "unknown method AdmitStream")
	}
	for _, u := range updates {
		if err := st.Send(&controlplanev1.AdmitStreamResponse{Kind: &controlplanev1.AdmitStreamResponse_Queued{Queued: u}}); err != nil {
			return err
		}
	}
	resp, err := s.Admit(st.Context(), req)
	if err != nil {
		return err
	}
	return st.Send(&controlplanev1.AdmitStreamResponse{Kind: &controlplanev1.AdmitStreamResponse_Admitted{Admitted: resp}})
}
