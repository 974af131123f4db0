package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
)

// TestServiceKeyRequestFlow: a user asks for a service key from a browser
// session, an auditor may read the request but not decide it, an admin
// approves it, and the requester collects the key once (the admin never sees
// the secret). The key is the requester's, a service key, never expiring, and
// works; DELETE /api/admin/api-keys/{id} revokes it at once and removes it. A
// denied request yields nothing to collect.
func TestServiceKeyRequestFlow(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	adminKey, auditorKey := "Bearer "+s.keys["admin"], "Bearer "+s.keys["auditor"]
	student := s.signIn(t, "student")
	account := accountv1.NewAccountServiceClient(dial(t, s.grpcAddr))
	sess := sessionCtx(student.SessionToken, student.CsrfToken)

	form := func(name, why string) *accountv1.CreateServiceKeyRequestRequest {
		return &accountv1.CreateServiceKeyRequestRequest{ServiceName: name, Justification: why,
			AlternativeContacts: []string{"ta@example.edu"}, DataRiskLevel: "moderate", ComplianceTags: []string{"ferpa"}}
	}
	_, err := account.CreateServiceKeyRequest(sessionCtx(student.SessionToken, ""), form("grader", "course autograder"))
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a write without the CSRF token is refused")
	_, err = account.CreateServiceKeyRequest(keyCtx(s.keys["student"]), form("grader", "course autograder"))
	require.Equal(t, codes.PermissionDenied, status.Code(err), "an API key cannot ask for more keys")
	_, err = account.CreateServiceKeyRequest(sess, &accountv1.CreateServiceKeyRequestRequest{ServiceName: " ", Justification: "x"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	filed, err := account.CreateServiceKeyRequest(sess, form("grader", "course autograder"))
	require.NoError(t, err)
	id := filed.GetServiceKeyRequest().GetId()
	assert.Equal(t, "pending", filed.GetServiceKeyRequest().GetStatus())
	_, err = account.CollectServiceKey(sess, &accountv1.CollectServiceKeyRequest{Id: id})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "nothing to collect before approval")

	code, body := s.rest(t, "GET", "/api/admin/service-key-requests", "Authorization", auditorKey, "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"service_name":"grader"`)
	assert.Contains(t, body, `"username":"student"`)
	assert.Contains(t, body, `"data_risk_level":"moderate"`, "the reviewer sees the compliance answers")
	assert.Contains(t, body, `"compliance_tags":["ferpa"]`)
	assert.Contains(t, body, `"alternative_contacts":["ta@example.edu"]`)
	assert.Contains(t, body, `"kind":"issue"`)
	review := fmt.Sprintf("/api/admin/service-key-requests/%d/review", id)
	code, _ = s.rest(t, "POST", review, "Authorization", auditorKey, `{"approved":true}`)
	assert.Equal(t, http.StatusForbidden, code, "auditors decide nothing")
	code, body = s.rest(t, "POST", review, "Authorization", adminKey, `{"approved":true,"notes":"ok for one term"}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"status":"approved"`)
	assert.NotContains(t, body, "mr2_", "the admin never sees the secret")
	code, _ = s.rest(t, "POST", review, "Authorization", adminKey, `{"approved":false}`)
	assert.Equal(t, http.StatusConflict, code, "a decided request stays decided")

	other := s.signIn(t, "auditor")
	_, err = account.CollectServiceKey(sessionCtx(other.SessionToken, other.CsrfToken), &accountv1.CollectServiceKeyRequest{Id: id})
	require.Equal(t, codes.NotFound, status.Code(err), "another user's request reads as not found")

	got, err := account.CollectServiceKey(sess, &accountv1.CollectServiceKeyRequest{Id: id})
	require.NoError(t, err)
	k := got.GetApiKey()
	assert.True(t, k.GetIsService())
	assert.Equal(t, "grader", k.GetServiceName())
	assert.Equal(t, "grader", k.GetName())
	assert.Nil(t, k.GetExpiresAt(), "service keys never expire")
	assert.Equal(t, []string{"inference"}, k.GetScopes())
	assert.Equal(t, k.GetId(), got.GetServiceKeyRequest().GetApiKeyId())
	assert.NotNil(t, got.GetServiceKeyRequest().GetCollectedAt())
	_, err = account.CollectServiceKey(sess, &accountv1.CollectServiceKeyRequest{Id: id})
	require.Equal(t, codes.AlreadyExists, status.Code(err), "a request yields one key")

	who, err := account.WhoAmI(keyCtx(got.GetFullKey()), &accountv1.WhoAmIRequest{})
	require.NoError(t, err, "the collected key works")
	assert.Equal(t, "student", who.GetUser().GetUsername(), "owned by the requester")
	mine, err := account.ListMyServiceKeyRequests(sess, &accountv1.ListMyServiceKeyRequestsRequest{})
	require.NoError(t, err)
	require.Len(t, mine.GetServiceKeyRequests(), 1)
	assert.Equal(t, "approved", mine.GetServiceKeyRequests()[0].GetStatus())

	keyPath := fmt.Sprintf("/api/admin/api-keys/%d", k.GetId())
	code, _ = s.rest(t, "DELETE", keyPath, "Authorization", auditorKey, "")
	assert.Equal(t, http.StatusForbidden, code)
	code, body = s.rest(t, "DELETE", keyPath, "Authorization", adminKey, "")
	require.Equal(t, http.StatusOK, code, body)
	_, err = account.WhoAmI(keyCtx(got.GetFullKey()), &accountv1.WhoAmIRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "a deleted key stops working at once")
	code, _ = s.rest(t, "DELETE", keyPath, "Authorization", adminKey, "")
	assert.Equal(t, http.StatusNotFound, code)
	code, body = s.rest(t, "GET", "/api/admin/service-key-requests?status=approved", "Authorization", adminKey, "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, fmt.Sprintf(`"api_key_id":"%d"`, k.GetId()), "the request keeps its history")

	denied, err := account.CreateServiceKeyRequest(sess, form("bot", "chat bot"))
	require.NoError(t, err)
	code, body = s.rest(t, "POST", fmt.Sprintf("/api/admin/service-key-requests/%d/review", denied.GetServiceKeyRequest().GetId()),
		"Authorization", adminKey, `{"approved":false,"notes":"use a personal key"}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"status":"denied"`)
	_, err = account.CollectServiceKey(sess, &accountv1.CollectServiceKeyRequest{Id: denied.GetServiceKeyRequest().GetId()})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "a denied request yields nothing")
	code, _ = s.rest(t, "GET", "/api/admin/service-key-requests?status=bogus", "Authorization", adminKey, "")
	assert.Equal(t, http.StatusBadRequest, code)
}

// TestServiceKeyComplianceForm: the compliance answers are validated (known
// risk levels and tags, e-mail contacts, "other" explained and "none" alone)
// and normalized.
func TestServiceKeyComplianceForm(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	student := s.signIn(t, "student")
	account := accountv1.NewAccountServiceClient(dial(t, s.grpcAddr))
	sess := sessionCtx(student.SessionToken, student.CsrfToken)
	base := func() *accountv1.CreateServiceKeyRequestRequest {
		return &accountv1.CreateServiceKeyRequestRequest{ServiceName: "lab", Justification: "lab pipeline",
			DataRiskLevel: "low", ComplianceTags: []string{"none"}}
	}
	for _, tc := range []struct {
		name   string
		change func(r *accountv1.CreateServiceKeyRequestRequest)
		want   string
	}{
		{"no risk level", func(r *accountv1.CreateServiceKeyRequestRequest) { r.DataRiskLevel = "" }, "data_risk_level"},
		{"unknown risk level", func(r *accountv1.CreateServiceKeyRequestRequest) { r.DataRiskLevel = "extreme" }, "data_risk_level"},
		{"no tags", func(r *accountv1.CreateServiceKeyRequestRequest) { r.ComplianceTags = nil }, "compliance_tags"},
		{"unknown tag", func(r *accountv1.CreateServiceKeyRequestRequest) { r.ComplianceTags = []string{"sox"} }, "sox"},
		{"none with others", func(r *accountv1.CreateServiceKeyRequestRequest) { r.ComplianceTags = []string{"none", "ferpa"} }, "none"},
		{"other unexplained", func(r *accountv1.CreateServiceKeyRequestRequest) { r.ComplianceTags = []string{"other"} }, "compliance_other"},
		{"explanation without other", func(r *accountv1.CreateServiceKeyRequestRequest) { r.ComplianceOther = "x" }, "compliance_other"},
		{"contact not an address", func(r *accountv1.CreateServiceKeyRequestRequest) { r.AlternativeContacts = []string{"bob"} }, "alternative_contacts"},
		{"too many contacts", func(r *accountv1.CreateServiceKeyRequestRequest) {
			r.AlternativeContacts = []string{"a@x.edu", "b@x.edu", "c@x.edu", "d@x.edu", "e@x.edu", "f@x.edu"}
		}, "alternative_contacts"},
	} {
		req := base()
		tc.change(req)
		_, err := account.CreateServiceKeyRequest(sess, req)
		require.Equal(t, codes.InvalidArgument, status.Code(err), tc.name)
		assert.Contains(t, status.Convert(err).Message(), tc.want, tc.name)
	}
	req := base()
	req.DataRiskLevel, req.ComplianceTags, req.ComplianceOther = " High ", []string{"HIPAA", "irb", "hipaa", "other"}, "sponsor's data-use agreement"
	req.AlternativeContacts = []string{"pi@example.edu", " PI@example.edu ", ""}
	got, err := account.CreateServiceKeyRequest(sess, req)
	require.NoError(t, err)
	r := got.GetServiceKeyRequest()
	assert.Equal(t, "high", r.GetDataRiskLevel())
	assert.Equal(t, []string{"hipaa", "irb", "other"}, r.GetComplianceTags())
	assert.Equal(t, []string{"pi@example.edu"}, r.GetAlternativeContacts())
	assert.Equal(t, "sponsor's data-use agreement", r.GetComplianceOther())
}

// TestServiceKeyRevocationFlow: the owner of a service key cannot revoke it
// alone; they file a revocation request (one pending at a time), an auditor
// sees it but cannot decide it, and the admin's approval revokes the key at
// once, both recorded in the admin-action log. A denied request leaves the key
// working.
func TestServiceKeyRevocationFlow(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	adminKey, auditorKey := "Bearer "+s.keys["admin"], "Bearer "+s.keys["auditor"]
	student := s.signIn(t, "student")
	account := accountv1.NewAccountServiceClient(dial(t, s.grpcAddr))
	sess := sessionCtx(student.SessionToken, student.CsrfToken)
	issue := func(name string) (int64, string) {
		filed, err := account.CreateServiceKeyRequest(sess, &accountv1.CreateServiceKeyRequestRequest{ServiceName: name,
			Justification: "pipeline", DataRiskLevel: "low", ComplianceTags: []string{"none"}})
		require.NoError(t, err)
		code, body := s.rest(t, "POST", fmt.Sprintf("/api/admin/service-key-requests/%d/review", filed.GetServiceKeyRequest().GetId()),
			"Authorization", adminKey, `{"approved":true}`)
		require.Equal(t, http.StatusOK, code, body)
		got, err := account.CollectServiceKey(sess, &accountv1.CollectServiceKeyRequest{Id: filed.GetServiceKeyRequest().GetId()})
		require.NoError(t, err)
		return got.GetApiKey().GetId(), got.GetFullKey()
	}
	keyID, full := issue("crawler")

	_, err := account.RevokeMyAPIKey(sess, &accountv1.RevokeMyAPIKeyRequest{Id: keyID})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "an owner cannot revoke a service key alone")
	assert.Contains(t, status.Convert(err).Message(), "revocation request")
	_, err = account.RequestServiceKeyRevocation(sess, &accountv1.RequestServiceKeyRevocationRequest{Id: keyID, Reason: " "})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "a reason is required")
	_, err = account.RequestServiceKeyRevocation(sessionCtx(student.SessionToken, ""), &accountv1.RequestServiceKeyRevocationRequest{Id: keyID, Reason: "done"})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "CSRF token required")
	other := s.signIn(t, "auditor")
	_, err = account.RequestServiceKeyRevocation(sessionCtx(other.SessionToken, other.CsrfToken), &accountv1.RequestServiceKeyRevocationRequest{Id: keyID, Reason: "x"})
	require.Equal(t, codes.NotFound, status.Code(err), "another user's key reads as not found")

	filed, err := account.RequestServiceKeyRevocation(sess, &accountv1.RequestServiceKeyRevocationRequest{Id: keyID, Reason: "the crawler is retired"})
	require.NoError(t, err)
	rr := filed.GetServiceKeyRequest()
	assert.Equal(t, "revocation", rr.GetKind())
	assert.Equal(t, "pending", rr.GetStatus())
	assert.Equal(t, keyID, rr.GetApiKeyId())
	_, err = account.RequestServiceKeyRevocation(sess, &accountv1.RequestServiceKeyRevocationRequest{Id: keyID, Reason: "again"})
	require.Equal(t, codes.AlreadyExists, status.Code(err), "one pending revocation request per key")
	_, err = account.WhoAmI(keyCtx(full), &accountv1.WhoAmIRequest{})
	require.NoError(t, err, "a request alone revokes nothing")

	code, body := s.rest(t, "GET", "/api/admin/service-key-requests?kind=revocation", "Authorization", auditorKey, "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"justification":"the crawler is retired"`)
	assert.NotContains(t, body, `"kind":"issue"`)
	review := fmt.Sprintf("/api/admin/service-key-requests/%d/review", rr.GetId())
	code, _ = s.rest(t, "POST", review, "Authorization", auditorKey, `{"approved":true}`)
	assert.Equal(t, http.StatusForbidden, code)
	code, body = s.rest(t, "POST", review, "Authorization", adminKey, `{"approved":true,"notes":"revoked on request"}`)
	require.Equal(t, http.StatusOK, code, body)
	_, err = account.WhoAmI(keyCtx(full), &accountv1.WhoAmIRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "approval revokes the key at once")
	keys, err := account.ListMyAPIKeys(sess, &accountv1.ListMyAPIKeysRequest{})
	require.NoError(t, err)
	for _, k := range keys.GetApiKeys() {
		if k.GetId() == keyID {
			assert.Equal(t, "revoked", k.GetStatus())
		}
	}
	code, body = s.rest(t, "GET", "/api/admin/audit/admin-actions?limit=100", "Authorization", auditorKey, "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `service_key_request.create`, "the filing is recorded")
	assert.Contains(t, body, `api_key.update`, "the revocation is recorded with the review")
	assert.Contains(t, body, `RequestServiceKeyRevocation`)

	keep, keepFull := issue("indexer")
	filed, err = account.RequestServiceKeyRevocation(sess, &accountv1.RequestServiceKeyRevocationRequest{Id: keep, Reason: "maybe"})
	require.NoError(t, err)
	code, body = s.rest(t, "POST", fmt.Sprintf("/api/admin/service-key-requests/%d/review", filed.GetServiceKeyRequest().GetId()),
		"Authorization", adminKey, `{"approved":false,"notes":"still in use by the lab"}`)
	require.Equal(t, http.StatusOK, code, body)
	_, err = account.WhoAmI(keyCtx(keepFull), &accountv1.WhoAmIRequest{})
	require.NoError(t, err, "a denied request leaves the key working")
}

// TestUserProfileFields: college, department and intended_use are set at
// creation, read back, changed by PATCH (fields left out keep their values),
// found by the list's search, and bounded in length.
func TestUserProfileFields(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	adminKey := "Bearer " + s.keys["admin"]
	code, body := s.rest(t, "GET", "/api/admin/groups", "Authorization", adminKey, "")
	require.Equal(t, http.StatusOK, code)
	var groups []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &groups))
	require.NotEmpty(t, groups)

	code, body = s.rest(t, "POST", "/api/admin/users", "Authorization", adminKey, fmt.Sprintf(
		`{"username":"ria","email":"ria@example.edu","password":"correct horse battery","group_id":%s,`+
			`"college":"Engineering","department":"Computer Science","intended_use":"coursework"}`, groups[0].ID))
	require.Equal(t, http.StatusOK, code, body)
	var u struct {
		ID          string `json:"id"`
		College     string `json:"college"`
		Department  string `json:"department"`
		IntendedUse string `json:"intended_use"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &u))
	assert.Equal(t, "Engineering", u.College)
	assert.Equal(t, "Computer Science", u.Department)
	assert.Equal(t, "coursework", u.IntendedUse)

	code, body = s.rest(t, "PATCH", "/api/admin/users/"+u.ID, "Authorization", adminKey, `{"department":"Physics"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = s.rest(t, "GET", "/api/admin/users/"+u.ID, "Authorization", adminKey, "")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal([]byte(body), &u))
	assert.Equal(t, "Engineering", u.College, "left out, kept")
	assert.Equal(t, "Physics", u.Department)
	assert.Equal(t, "coursework", u.IntendedUse)

	code, body = s.rest(t, "GET", "/api/admin/users?search=physics", "Authorization", adminKey, "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"username":"ria"`, "search covers the department")
	code, body = s.rest(t, "GET", "/api/admin/users?search=engineer", "Authorization", adminKey, "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"username":"ria"`, "search covers the college")

	long := fmt.Sprintf(`{"college":"%0256d"}`, 0)
	code, body = s.rest(t, "PATCH", "/api/admin/users/"+u.ID, "Authorization", adminKey, long)
	assert.Equal(t, http.StatusBadRequest, code, body)
	assert.Contains(t, body, "college")
}
