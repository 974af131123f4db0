package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errNotLeader refuses a call on a control plane that stopped leading: a data
// plane takes UNAVAILABLE without a refusal reason for "try the next control
// plane" and retries its admission there.
var errNotLeader = status.Error(codes.Unavailable, "this control plane is not the leader")

// leaderUnary refuses every call while Options.Leading says no: a leader that
// lost its lease (a pause, a partition) must not admit or change anything from
// the moment it resumes.
func (s *Server) leaderUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !s.leading() {
		return nil, errNotLeader
	}
	return handler(ctx, req)
}

func (s *Server) leaderStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !s.leading() {
		return errNotLeader
	}
	return handler(srv, ss)
}
