package system

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// ActorFunc names the administrator a call comes from (the server's actor
// context); nil names nobody.
type ActorFunc func(ctx context.Context) string

// Service implements adminv1.SystemServiceServer over a Switch.
type Service struct {
	adminv1.UnimplementedSystemServiceServer
	sw    *Switch
	actor ActorFunc
}

var _ adminv1.SystemServiceServer = (*Service)(nil)

// NewService returns the admin API of sw.
func NewService(sw *Switch, actor ActorFunc) *Service {
	return &Service{sw: sw, actor: actor}
}

// GetSystemStatus says whether the system is online.
func (s *Service) GetSystemStatus(context.Context, *adminv1.GetSystemStatusRequest) (*adminv1.GetSystemStatusResponse, error) {
	return &adminv1.GetSystemStatusResponse{Status: toProto(s.sw.State())}, nil
}

// SetSystemStatus moves the switch.
func (s *Service) SetSystemStatus(ctx context.Context, req *adminv1.SetSystemStatusRequest) (*adminv1.SetSystemStatusResponse, error) {
	by := ""
	if s.actor != nil {
		by = s.actor(ctx)
	}
	st, err := s.sw.Set(ctx, !req.GetOnline(), req.GetMessage(), by)
	if err != nil {
		return nil, err
	}
	return &adminv1.SetSystemStatusResponse{Status: toProto(st)}, nil
}

func toProto(st State) *adminv1.SystemStatus {
	out := &adminv1.SystemStatus{Online: !st.Offline, Message: st.Message, ChangedBy: st.ChangedBy}
	if !st.ChangedAt.IsZero() {
		out.ChangedAt = timestamppb.New(st.ChangedAt)
	}
	return out
}
