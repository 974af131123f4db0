package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accountv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/account/v1"
	adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// signIn opens a session for a user of startServer through SignInService, as a
// data plane does.
func (s *testServer) signIn(t *testing.T, username string) *controlplanev1.PasswordLoginResponse {
	t.Helper()
	client := controlplanev1.NewSignInServiceClient(dial(t, s.grpcAddr))
	ctx := metadata.AppendToOutgoingContext(context.Background(), ClusterTokenHeader, testClusterToken)
	resp, err := client.PasswordLogin(ctx, &controlplanev1.PasswordLoginRequest{
		Username: username, Password: "correct horse battery", ClientIp: "192.0.2.10",
	})
	require.NoError(t, err)
	return resp
}

// sessionCtx carries a session token and, when not empty, a CSRF token.
func sessionCtx(token, csrf string) context.Context {
	md := []string{SessionHeader, token}
	if csrf != "" {
		md = append(md, CSRFHeader, csrf)
	}
	return metadata.AppendToOutgoingContext(context.Background(), md...)
}

func keyCtx(key string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
}

func TestSignInNeedsTheClusterToken(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	client := controlplanev1.NewSignInServiceClient(dial(t, s.grpcAddr))
	_, err := client.PasswordLogin(keyCtx(s.keys["admin"]), &controlplanev1.PasswordLoginRequest{Username: "student", Password: "correct horse battery"})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "only data planes open sessions")
	ctx := metadata.AppendToOutgoingContext(context.Background(), ClusterTokenHeader, testClusterToken)
	_, err = client.PasswordLogin(ctx, &controlplanev1.PasswordLoginRequest{Username: "student", Password: "wrong password"})
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	require.Equal(t, "invalid username or password", status.Convert(err).Message())
}

func TestSessionsAndCSRFAtTheInterceptor(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	conn := dial(t, s.grpcAddr)
	account := accountv1.NewAccountServiceClient(conn)
	admin := adminv1.NewIdentityServiceClient(conn)
	student := s.signIn(t, "student")
	auditor := s.signIn(t, "auditor")

	who, err := account.WhoAmI(sessionCtx(student.SessionToken, ""), &accountv1.WhoAmIRequest{})
	require.NoError(t, err, "reads need no CSRF token")
	assert.Equal(t, "student", who.GetUser().GetUsername())
	assert.Equal(t, "session", who.GetAuthenticatedBy())
	assert.Equal(t, "user", who.GetRole())
	assert.Equal(t, student.CsrfToken, who.GetCsrfToken())

	who, err = account.WhoAmI(keyCtx(s.keys["student-inference"]), &accountv1.WhoAmIRequest{})
	require.NoError(t, err, "an inference key reads its own account")
	assert.Equal(t, "api_key", who.GetAuthenticatedBy())
	assert.Empty(t, who.GetCsrfToken())

	create := &accountv1.CreateMyAPIKeyRequest{Name: "laptop"}
	for name, ctx := range map[string]context.Context{
		"no CSRF token":          sessionCtx(student.SessionToken, ""),
		"wrong CSRF token":       sessionCtx(student.SessionToken, auditor.CsrfToken),
		"API key, not a session": keyCtx(s.keys["student"]),
	} {
		_, err := account.CreateMyAPIKey(ctx, create)
		require.Equal(t, codes.PermissionDenied, status.Code(err), name)
	}
	made, err := account.CreateMyAPIKey(sessionCtx(student.SessionToken, student.CsrfToken), create)
	require.NoError(t, err)
	assert.Contains(t, made.GetFullKey(), "mr2_")
	assert.Equal(t, []string{"inference"}, made.GetApiKey().GetScopes(), "self-service keys are inference keys")
	assert.NotNil(t, made.GetApiKey().GetExpiresAt(), "with the group's lifetime")

	_, err = admin.ListUsers(sessionCtx(student.SessionToken, ""), &adminv1.ListUsersRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a user's session is no admin")
	_, err = admin.ListUsers(sessionCtx(auditor.SessionToken, ""), &adminv1.ListUsersRequest{})
	require.NoError(t, err, "an auditor's session reads")
	off := false
	_, err = admin.UpdateUser(sessionCtx(auditor.SessionToken, auditor.CsrfToken), &adminv1.UpdateUserRequest{Id: made.GetApiKey().GetUserId(), IsActive: &off})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "an auditor's session writes nothing")

	out := controlplanev1.NewSignInServiceClient(conn)
	cctx := metadata.AppendToOutgoingContext(context.Background(), ClusterTokenHeader, testClusterToken)
	_, err = out.Logout(cctx, &controlplanev1.LogoutRequest{SessionToken: student.SessionToken})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "logout needs the CSRF token")
	ended, err := out.Logout(cctx, &controlplanev1.LogoutRequest{SessionToken: student.SessionToken, CsrfToken: student.CsrfToken})
	require.NoError(t, err)
	assert.Equal(t, int32(1), ended.GetSessionsEnded())
	_, err = account.WhoAmI(sessionCtx(student.SessionToken, ""), &accountv1.WhoAmIRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "a logged-out session is gone")
}

func TestIdentityLifecycleOverREST(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	adminKey := "Bearer " + s.keys["admin"]
	auditorKey := "Bearer " + s.keys["auditor"]

	code, body := s.rest(t, "POST", "/api/admin/groups", "Authorization", adminKey, `{"name":"lab","display_name":"Lab","max_api_keys":2}`)
	require.Equal(t, http.StatusOK, code, body)
	var group struct {
		ID          string `json:"id"`
		TokenBudget string `json:"token_budget"`
		RPMLimit    int    `json:"rpm_limit"`
		MaxAPIKeys  int    `json:"max_api_keys"`
		KeyDays     int    `json:"api_key_expiry_days"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &group))
	assert.Equal(t, "100000", group.TokenBudget, "the original's defaults")
	assert.Equal(t, 30, group.RPMLimit)
	assert.Equal(t, 45, group.KeyDays)
	assert.Equal(t, 2, group.MaxAPIKeys)
	code, _ = s.rest(t, "POST", "/api/admin/groups", "Authorization", adminKey, `{"name":"lab"}`)
	assert.Equal(t, http.StatusConflict, code, "names are unique")
	code, _ = s.rest(t, "POST", "/api/admin/groups", "Authorization", auditorKey, `{"name":"lab2"}`)
	assert.Equal(t, http.StatusForbidden, code, "auditors write nothing")

	code, body = s.rest(t, "POST", "/api/admin/users", "Authorization", adminKey,
		fmt.Sprintf(`{"username":"lia","email":"lia@example.edu","password":"correct horse battery","group_id":%s}`, group.ID))
	require.Equal(t, http.StatusOK, code, body)
	var user struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &user))
	code, body = s.rest(t, "DELETE", "/api/admin/groups/"+group.ID, "Authorization", adminKey, "")
	assert.Equal(t, http.StatusConflict, code, "409 while members remain: %s", body)
	assert.Contains(t, body, "move them to another group first")

	// The user files a quota request from a session; an admin approves a grant.
	lia := s.signIn(t, "lia")
	account := accountv1.NewAccountServiceClient(dial(t, s.grpcAddr))
	filed, err := account.CreateQuotaRequest(sessionCtx(lia.SessionToken, lia.CsrfToken),
		&accountv1.CreateQuotaRequestRequest{RequestedTokens: 500_000, Justification: "thesis"})
	require.NoError(t, err)
	code, body = s.rest(t, "GET", "/api/admin/quota-requests", "Authorization", auditorKey, "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"justification":"thesis"`)
	reqPath := fmt.Sprintf("/api/admin/quota-requests/%d/review", filed.GetQuotaRequest().GetId())
	code, _ = s.rest(t, "POST", reqPath, "Authorization", auditorKey, `{"approved":true}`)
	assert.Equal(t, http.StatusForbidden, code)
	code, body = s.rest(t, "POST", reqPath, "Authorization", adminKey, `{"approved":true,"granted_tokens":"250000","notes":"half"}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"status":"approved"`)
	code, body = s.rest(t, "GET", "/api/admin/users/"+user.ID, "Authorization", adminKey, "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"token_budget":"250000"`, "approval applies the grant to the user's budget override")
	code, _ = s.rest(t, "POST", reqPath, "Authorization", adminKey, `{"approved":false}`)
	assert.Equal(t, http.StatusConflict, code, "a decided request stays decided")

	// Keys: an admin mints a key for the user, renews and revokes it.
	code, body = s.rest(t, "POST", "/api/admin/users/"+user.ID+"/api-keys", "Authorization", adminKey, `{"name":"ci","service_name":"grader"}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"is_service":true`)
	assert.Contains(t, body, `"expires_at":null`, "service keys never expire")
	var minted struct {
		APIKey struct {
			ID string `json:"id"`
		} `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &minted))
	code, body = s.rest(t, "POST", "/api/admin/api-keys/"+minted.APIKey.ID+"/renew", "Authorization", adminKey, "")
	require.Equal(t, http.StatusOK, code, body)
	code, body = s.rest(t, "GET", "/api/admin/api-keys?search=LIA", "Authorization", auditorKey, "")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"service_name":"grader"`)

	// Deletion: never oneself; another user goes with their sessions and keys.
	code, body = s.rest(t, "GET", "/api/admin/users?search=admin", "Authorization", adminKey, "")
	require.Equal(t, http.StatusOK, code)
	var admins struct {
		Users []struct {
			ID       string `json:"id"`
			Username string `json:"username"`
		} `json:"users"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &admins))
	require.NotEmpty(t, admins.Users)
	code, body = s.rest(t, "DELETE", "/api/admin/users/"+admins.Users[0].ID, "Authorization", adminKey, "")
	assert.Equal(t, http.StatusBadRequest, code, "an admin cannot delete themself: %s", body)
	code, body = s.rest(t, "DELETE", "/api/admin/users/"+user.ID, "Authorization", adminKey, "")
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"api_keys_deleted":1,"sessions_ended":1}`, body)
	code, _ = s.rest(t, "GET", "/api/admin/users/"+user.ID, "Authorization", adminKey, "")
	assert.Equal(t, http.StatusNotFound, code)
	_, err = account.WhoAmI(sessionCtx(lia.SessionToken, ""), &accountv1.WhoAmIRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err))

	code, body = s.rest(t, "DELETE", "/api/admin/groups/"+group.ID, "Authorization", adminKey, "")
	require.Equal(t, http.StatusOK, code, body)
}
