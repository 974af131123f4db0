package server

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSystemSwitchOverREST: an admin takes the system offline and back over
// the REST API (a message is required); each change is in the admin-action
// log with the old and new values; auditors read it and cannot move it.
func TestSystemSwitchOverREST(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	admin, auditor := "Bearer "+s.keys["admin"], "Bearer "+s.keys["auditor"]

	code, body := s.rest(t, http.MethodGet, "/api/admin/system", "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"online":true`)

	code, body = s.rest(t, http.MethodPost, "/api/admin/system", "Authorization", admin, `{"online":false}`)
	assert.Equal(t, http.StatusBadRequest, code, body)
	assert.Contains(t, body, "a message is required")
	code, _ = s.rest(t, http.MethodPost, "/api/admin/system", "Authorization", auditor, `{"online":false,"message":"x"}`)
	assert.Equal(t, http.StatusForbidden, code)

	code, body = s.rest(t, http.MethodPost, "/api/admin/system", "Authorization", admin, `{"online":false,"message":"upgrading drivers"}`)
	require.Equal(t, http.StatusOK, code, body)
	var st struct {
		Online    bool   `json:"online"`
		Message   string `json:"message"`
		ChangedBy string `json:"changed_by"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	assert.False(t, st.Online)
	assert.Equal(t, "upgrading drivers", st.Message)
	assert.Equal(t, "admin", st.ChangedBy)
	code, body = s.rest(t, http.MethodGet, "/api/admin/system", "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"online":false`)

	code, _ = s.rest(t, http.MethodPost, "/api/admin/system", "Authorization", admin, `{"online":true}`)
	require.Equal(t, http.StatusOK, code)

	code, body = s.rest(t, http.MethodGet, "/api/admin/audit/admin-actions?entity_type=setting&limit=10", "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code, body)
	var acts struct {
		Actions []map[string]any `json:"actions"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &acts))
	require.Len(t, acts.Actions, 2, body)
	assert.Equal(t, "setting.update", acts.Actions[0]["action"], "newest first: back online")
	assert.Contains(t, acts.Actions[0]["before_json"], `upgrading drivers`)
	assert.Equal(t, "setting.create", acts.Actions[1]["action"])
	assert.Equal(t, "admin", acts.Actions[1]["actor"])
	assert.Contains(t, acts.Actions[1]["after_json"], `\"offline\":true`)
}
