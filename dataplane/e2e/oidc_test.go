package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// startOpenIDProvider runs zitadel/oidc's OpenID-certified op package with its
// example storage and login form, in process, on a loopback port. The client
// "mindrouter" may redirect to redirectURL.
func startOpenIDProvider(t *testing.T, redirectURL string) string {
	t.Helper()
	return startOpenIDProviderFor(t, "mindrouter", redirectURL)
}

// startOpenIDProviderFor is startOpenIDProvider for a client id of the
// test's own. The example storage's clients are one package-wide map: tests
// that register one must not run in parallel with each other.
func startOpenIDProviderFor(t *testing.T, clientID, redirectURL string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	issuer := "http://" + lis.Addr().String()
	storage.RegisterClients(storage.WebClient(clientID, "client-secret", redirectURL))
	router := exampleop.SetupServer(issuer, storage.NewStorage(storage.NewUserStore(issuer)), nil, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return issuer
}

// oidcSignIn walks a browser through the provider's login form and back to
// the data plane; it answers the final response's body (whoami).
func oidcSignIn(t *testing.T, client *http.Client, dataPlane, issuer string) (int, string) {
	t.Helper()
	resp, err := client.Get(dataPlane + "/login/oidc/zitadel?next=/api/account/whoami")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the provider's login form")
	id := resp.Request.URL.Query().Get("authRequestID")
	require.NotEmpty(t, id, "landed on %s", resp.Request.URL)
	resp, err = client.PostForm(issuer+"/login/username", url.Values{
		"id": {id}, "username": {"test-user@127.0.0.1"}, "password": {"verysecure"},
	})
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

type whoAmI struct {
	User struct {
		ID        string `json:"id"`
		Username  string `json:"username"`
		Email     string `json:"email"`
		GroupName string `json:"group_name"`
	} `json:"user"`
	AuthenticatedBy string `json:"authenticated_by"`
	CSRFToken       string `json:"csrf_token"`
}

// TestOIDCSignInProvisionsIntoTheMappedGroup signs a person in through a real
// OpenID provider (authorization code + PKCE), checks they are provisioned
// into the group their e-mail domain maps to, mints a key with the session
// cookie, uses it with openai-go, and sees the admin's revocation refuse the
// next call. A second sign-in finds the same account by (issuer, subject).
func TestOIDCSignInProvisionsIntoTheMappedGroup(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, Models: []enginesim.ModelSpec{{Name: "sim-chat", ContextLength: 4096}}, CompletionTokens: 4})
	dpPort := cluster.FreePort(t)
	dataPlane := "http://127.0.0.1:" + dpPort
	issuer := startOpenIDProvider(t, dataPlane+"/login/oidc/callback")
	cfg, err := json.Marshal(map[string]any{"providers": []map[string]any{{
		"name": "zitadel", "display_name": "Zitadel", "issuer": issuer,
		"client_id": "mindrouter", "client_secret": "client-secret",
		"redirect_url": dataPlane + "/login/oidc/callback",
		"group_claim":  "email_domain", "group_map": map[string]string{"zitadel.ch": "faculty"},
		"default_group": "student",
	}}})
	require.NoError(t, err)
	cfgPath := filepath.Join(t.TempDir(), "oidc.json")
	require.NoError(t, os.WriteFile(cfgPath, cfg, 0o600))
	c := cluster.Start(t, cluster.Options{
		Backends:         []cluster.Backend{{Name: "sim", Engine: "vllm", URL: simURL}},
		ControlPlaneArgs: []string{"-oidc-config", cfgPath},
		DataPlanePort:    dpPort,
	})

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	page := &browser{t: t, base: c.DataPlaneURL, http: client}
	resp, login := page.do("GET", "/login", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, login, `href="/login/oidc/zitadel?next=`, "the login page offers the provider")
	assert.Contains(t, login, "Sign in with Zitadel")
	code, body := oidcSignIn(t, client, c.DataPlaneURL, issuer)
	require.Equal(t, http.StatusOK, code, "%s\n%s", body, c.Logs())
	var who whoAmI
	require.NoError(t, json.Unmarshal([]byte(body), &who), body)
	assert.Equal(t, "session", who.AuthenticatedBy)
	assert.Equal(t, "faculty", who.User.GroupName, "provisioned into the group the e-mail domain maps to")
	assert.Equal(t, "test-user@zitadel.ch", who.User.Email)
	require.NotEmpty(t, who.CSRFToken)

	b := &browser{t: t, base: c.DataPlaneURL, http: client, csrf: who.CSRFToken}
	resp, raw := b.do("POST", "/api/account/api-keys", map[string]any{"name": "sso laptop"}, b.withCSRF())
	require.Equal(t, http.StatusOK, resp.StatusCode, raw)
	var made struct {
		APIKey struct {
			ID string `json:"id"`
		} `json:"api_key"`
		FullKey string `json:"full_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &made))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ai := openaiClient(c, made.FullKey)
	chat := openai.ChatCompletionNewParams{Model: "sim-chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	_, err = ai.Chat.Completions.New(ctx, chat)
	require.NoError(t, err, c.Logs())
	status, err := c.AdminJSON(ctx, c.RESTURL, "POST", "/api/admin/api-keys/"+made.APIKey.ID+"/revoke", nil, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	_, err = ai.Chat.Completions.New(ctx, chat)
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr, "the revoked key is refused: %v", err)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)

	// A second browser signs in again: the same account, found by (issuer, subject).
	jar2, err := cookiejar.New(nil)
	require.NoError(t, err)
	code, body = oidcSignIn(t, &http.Client{Jar: jar2, Timeout: 30 * time.Second}, c.DataPlaneURL, issuer)
	require.Equal(t, http.StatusOK, code, body)
	var again whoAmI
	require.NoError(t, json.Unmarshal([]byte(body), &again))
	assert.Equal(t, who.User.ID, again.User.ID)

	// A callback the browser did not start is refused.
	resp2, err := (&http.Client{Timeout: 10 * time.Second}).Get(c.DataPlaneURL + "/login/oidc/callback?state=forged&code=x")
	require.NoError(t, err)
	resp2.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp2.StatusCode)
	resp2, err = (&http.Client{Timeout: 10 * time.Second}).Get(c.DataPlaneURL + "/login/oidc/nope")
	require.NoError(t, err)
	resp2.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp2.StatusCode)
	assert.NotContains(t, c.Logs(), "client-secret", "no secret in the logs")
}
