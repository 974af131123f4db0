package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// System is the service's on/off switch as the console needs it.
type System interface {
	SystemStatus(ctx context.Context, c cpclient.Caller) (cpclient.SystemStatus, error)
	SetSystemStatus(ctx context.Context, c cpclient.Caller, online bool, message string) error
}

// maxOfflineMessage bounds the maintenance message the console sends (the
// control plane enforces the same limit).
const maxOfflineMessage = 500

func (h *Handler) routeSystem() {
	h.mux.HandleFunc("POST /admin/system", h.setSystem)
}

// setSystem takes the service offline (with the form's message) or brings
// it back online; the overview shows the new position.
func (h *Handler) setSystem(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin", func(c cpclient.Caller) (string, error) {
		online := r.PostForm.Get("online") == "1"
		msg := strings.TrimSpace(r.PostForm.Get("message"))
		if !online && msg == "" {
			return "", &cpclient.WebError{Status: http.StatusBadRequest, Message: "Say why the service is going offline: the message is shown to every client."}
		}
		if len([]rune(msg)) > maxOfflineMessage {
			return "", &cpclient.WebError{Status: http.StatusBadRequest, Message: "The message must be at most 500 characters."}
		}
		done := "system-offline"
		if online {
			done, msg = "system-online", ""
		}
		return done, h.cp.SetSystemStatus(r.Context(), c, online, msg)
	})
}
