package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

func (f *fakeCP) SystemStatus(_ context.Context, c cpclient.Caller) (cpclient.SystemStatus, error) {
	if err := f.admin(c, false); err != nil {
		return cpclient.SystemStatus{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.offline
	s.Online = !f.status.Offline
	return s, nil
}

func (f *fakeCP) SetSystemStatus(_ context.Context, c cpclient.Caller, online bool, message string) error {
	if err := f.admin(c, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offline = cpclient.SystemStatus{Message: message, ChangedBy: "ada"}
	f.status.Offline, f.status.OfflineMessage = !online, message
	return nil
}

// TestSystemSwitchInTheConsole: an admin takes the service offline with a
// message (required, escaped wherever it is shown), the status page and the
// overview say so, and the admin brings it back; auditors see the state and
// no control, and their post is refused.
func TestSystemSwitchInTheConsole(t *testing.T) {
	t.Parallel()
	h, cp := newTestHandler(t)
	body := get(h, "/admin", "s-admin").Body.String()
	assert.Contains(t, body, "Online: requests are served.")
	assert.Contains(t, body, `action="/admin/system"`)
	assert.Contains(t, body, "Take the service offline")

	w := post(h, "/admin/system", "s-admin", url.Values{"csrf_token": {"c-admin"}, "online": {"0"}, "message": {"  "}}, nil)
	assert.Equal(t, http.StatusBadRequest, w.Code, "going offline needs a message")
	assert.Contains(t, w.Body.String(), "the message is shown to every client")
	w = post(h, "/admin/system", "s-admin", url.Values{"csrf_token": {"c-admin"}, "online": {"0"}, "message": {strings.Repeat("x", 501)}}, nil)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	w = post(h, "/admin/system", "s-admin", url.Values{"online": {"0"}, "message": {"x"}}, nil)
	assert.Equal(t, http.StatusForbidden, w.Code, "no CSRF token")

	w = post(h, "/admin/system", "s-admin", url.Values{"csrf_token": {"c-admin"}, "online": {"0"}, "message": {"Upgrading <b>drivers</b>"}}, nil)
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	assert.Equal(t, "/admin?done=system-offline", w.Header().Get("Location"))
	assert.True(t, cp.status.Offline)
	body = get(h, "/admin?done=system-offline", "s-admin").Body.String()
	assert.Contains(t, body, "The service is offline: every inference request is refused")
	assert.Contains(t, body, "Upgrading &lt;b&gt;drivers&lt;/b&gt;")
	assert.Contains(t, body, "Bring the service back online")
	status := get(h, "/", "").Body.String()
	assert.Contains(t, status, "The service is offline for maintenance: Upgrading &lt;b&gt;drivers&lt;/b&gt;")
	assert.NotContains(t, status, "Degraded:", "the maintenance message takes the health line's place")

	audit := get(h, "/admin", "s-auditor").Body.String()
	assert.Contains(t, audit, "Offline for maintenance")
	assert.NotContains(t, audit, `action="/admin/system"`)
	w = post(h, "/admin/system", "s-auditor", url.Values{"csrf_token": {"c-auditor"}, "online": {"1"}}, nil)
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.True(t, cp.status.Offline, "the auditor changed nothing")

	w = post(h, "/admin/system", "s-admin", url.Values{"csrf_token": {"c-admin"}, "online": {"1"}, "message": {"ignored"}}, nil)
	assert.Equal(t, "/admin?done=system-online", w.Header().Get("Location"))
	assert.False(t, cp.status.Offline)
	assert.Empty(t, cp.status.OfflineMessage, "going online drops the message")
	status = get(h, "/", "").Body.String()
	assert.NotContains(t, status, "offline for maintenance")
	assert.Contains(t, status, "Degraded: 1 backend(s) unhealthy", "the health line is back")
}
