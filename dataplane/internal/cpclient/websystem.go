package cpclient

import (
	"context"
	"time"

	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
)

// SystemStatus is the service's on/off switch.
type SystemStatus struct {
	Online    bool
	Message   string
	ChangedBy string
	ChangedAt time.Time
}

// SystemStatus returns the switch's position (admins and auditors).
func (w *Web) SystemStatus(ctx context.Context, c Caller) (SystemStatus, error) {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	r, err := w.system.GetSystemStatus(ctx, &adminv1.GetSystemStatusRequest{})
	if err != nil {
		return SystemStatus{}, webError(err)
	}
	return systemStatus(r.GetStatus()), nil
}

// SetSystemStatus takes the service offline with a message, or back online
// (admins; the control plane records it in the admin-action log).
func (w *Web) SetSystemStatus(ctx context.Context, c Caller, online bool, message string) error {
	ctx, cancel := w.as(ctx, c)
	defer cancel()
	_, err := w.system.SetSystemStatus(ctx, &adminv1.SetSystemStatusRequest{Online: online, Message: message})
	return webError(err)
}

func systemStatus(s *adminv1.SystemStatus) SystemStatus {
	out := SystemStatus{Online: s.GetOnline(), Message: s.GetMessage(), ChangedBy: s.GetChangedBy()}
	if s.GetChangedAt() != nil {
		out.ChangedAt = s.GetChangedAt().AsTime()
	}
	return out
}
