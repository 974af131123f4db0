package server

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCatalogRulesOverREST manages model aliases and overrides over the REST
// gateway: admins change them, auditors only read them, bad input is a 400,
// and every change lands in the admin-action log.
func TestCatalogRulesOverREST(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	admin, auditor := "Bearer "+s.keys["admin"], "Bearer "+s.keys["auditor"]

	code, body := s.rest(t, http.MethodPut, "/api/admin/models/aliases/default-chat", "Authorization", admin,
		`{"targets":["llama3.2:latest","qwen3","qwen3"],"description":"the chat model of the week"}`)
	require.Equal(t, http.StatusOK, code, body)
	var alias map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &alias))
	assert.Equal(t, "default-chat", alias["name"])
	assert.Equal(t, []any{"llama3.2", "qwen3"}, alias["targets"], "targets lose :latest and duplicates")

	code, body = s.rest(t, http.MethodGet, "/api/admin/models/aliases", "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"default-chat"`)
	code, _ = s.rest(t, http.MethodPut, "/api/admin/models/aliases/sneaky", "Authorization", auditor, `{"targets":["x"]}`)
	assert.Equal(t, http.StatusForbidden, code, "auditors read only")
	code, body = s.rest(t, http.MethodPut, "/api/admin/models/aliases/empty", "Authorization", admin, `{"targets":[]}`)
	assert.Equal(t, http.StatusBadRequest, code, body)
	code, body = s.rest(t, http.MethodPut, "/api/admin/models/aliases/loop", "Authorization", admin, `{"targets":["default-chat"]}`)
	assert.Equal(t, http.StatusBadRequest, code, "an alias of an alias: %s", body)

	code, body = s.rest(t, http.MethodPut, "/api/admin/models/overrides/meta-llama/Llama-3.1-8B", "Authorization", admin,
		`{"vision":true,"tools":false,"context_length":65536,"display_name":"Llama 3.1 8B"}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"model":"meta-llama/Llama-3.1-8B"`, "a model name with a slash is one path parameter")
	code, body = s.rest(t, http.MethodPut, "/api/admin/models/overrides/m", "Authorization", admin, `{"context_length":-1}`)
	assert.Equal(t, http.StatusBadRequest, code, body)
	code, body = s.rest(t, http.MethodGet, "/api/admin/models/overrides", "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code, body)
	var overrides []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &overrides))
	require.Len(t, overrides, 1)
	assert.Equal(t, true, overrides[0]["vision"])
	assert.Equal(t, false, overrides[0]["tools"])
	assert.NotContains(t, overrides[0], "thinking", "an unset capability stays unset")

	code, _ = s.rest(t, http.MethodDelete, "/api/admin/models/overrides/meta-llama/Llama-3.1-8B", "Authorization", admin, "")
	assert.Equal(t, http.StatusOK, code)
	code, _ = s.rest(t, http.MethodDelete, "/api/admin/models/overrides/meta-llama/Llama-3.1-8B", "Authorization", admin, "")
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = s.rest(t, http.MethodDelete, "/api/admin/models/aliases/default-chat", "Authorization", admin, "")
	assert.Equal(t, http.StatusOK, code)

	code, body = s.rest(t, http.MethodGet, "/api/admin/audit/admin-actions?limit=50", "Authorization", auditor, "")
	require.Equal(t, http.StatusOK, code, body)
	var acts struct {
		Actions []map[string]any `json:"actions"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &acts))
	seen := map[string]int{}
	for _, a := range acts.Actions {
		seen[a["action"].(string)]++
	}
	assert.Equal(t, 1, seen["model_alias.create"], "%v", seen)
	assert.Equal(t, 1, seen["model_alias.delete"], "%v", seen)
	assert.Equal(t, 1, seen["model_override.create"], "%v", seen)
	assert.Equal(t, 1, seen["model_override.delete"], "%v", seen)
}
