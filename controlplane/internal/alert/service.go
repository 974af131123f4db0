package alert

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// Lister reads alerts (store.Store).
type Lister interface {
	ListAlerts(ctx context.Context, f store.AlertFilter) ([]store.Alert, error)
}

// Service is the AlertService.
type Service struct {
	adminv1.UnimplementedAlertServiceServer
	st Lister
}

// NewService returns the AlertService over st.
func NewService(st Lister) *Service { return &Service{st: st} }

// ListAlerts lists the active alerts, or every one kept.
func (s *Service) ListAlerts(ctx context.Context, req *adminv1.ListAlertsRequest) (*adminv1.ListAlertsResponse, error) {
	f := store.AlertFilter{Kind: req.GetKind(), Limit: int(req.GetLimit())}
	switch req.GetState() {
	case "", "active":
		f.ActiveOnly = true
	case "all":
	default:
		return nil, fmt.Errorf("%w: state %q: want active or all", store.ErrInvalid, req.GetState())
	}
	if f.Kind != "" && !slices.Contains(Kinds, f.Kind) {
		return nil, fmt.Errorf("%w: unknown alert kind %q", store.ErrInvalid, f.Kind)
	}
	if f.Limit < 0 || f.Limit > 1000 {
		return nil, fmt.Errorf("%w: limit %d: want 1 to 1000", store.ErrInvalid, f.Limit)
	}
	rows, err := s.st.ListAlerts(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]*adminv1.Alert, len(rows))
	for i, a := range rows {
		out[i] = &adminv1.Alert{Id: a.ID, Kind: a.Kind, Subject: a.Subject, Severity: a.Severity, Message: a.Message,
			FirstSeen: timestamppb.New(a.FirstSeen), LastSeen: timestamppb.New(a.LastSeen), Active: a.ClearedAt == nil}
		if a.ClearedAt != nil {
			out[i].ClearedAt = timestamppb.New(*a.ClearedAt)
		}
	}
	return &adminv1.ListAlertsResponse{Alerts: out}, nil
}
