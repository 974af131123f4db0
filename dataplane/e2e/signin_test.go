package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// browser is an HTTP client with a cookie jar that does not follow redirects.
type browser struct {
	t    testing.TB
	base string
	http *http.Client
	csrf string
}

func newBrowser(t testing.TB, base string) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: base, http: &http.Client{
		Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request; body is a form (url.Values) or JSON (anything else).
func (b *browser) do(method, path string, body any, header map[string]string) (*http.Response, string) {
	b.t.Helper()
	var rd io.Reader
	ctype := ""
	switch v := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(v.Encode()), "application/x-www-form-urlencoded"
	default:
		raw, err := json.Marshal(v)
		require.NoError(b.t, err)
		rd, ctype = strings.NewReader(string(raw)), "application/json"
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	require.NoError(b.t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.http.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp, string(raw)
}

func (b *browser) login(user, password string) (*http.Response, string) {
	return b.do("POST", "/login", url.Values{"username": {user}, "password": {password}, "next": {"/api/account/whoami"}}, nil)
}

func (b *browser) withCSRF() map[string]string { return map[string]string{"X-CSRF-Token": b.csrf} }

// createUser creates a local user through the admin API and returns its id.
func createUser(t testing.TB, c *cluster.Cluster, name, group string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, _ := groupByName(t, c, group)
	gid := g.ID
	require.NotEmpty(t, gid, group)
	var u struct {
		ID string `json:"id"`
	}
	code, err := c.AdminJSON(ctx, c.RESTURL, "POST", "/api/admin/users",
		map[string]any{"username": name, "email": name + "@example.edu", "password": "correct horse battery", "group_id": gid}, &u)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	return u.ID
}

// signedIn returns a browser signed in on the data plane as user (password
// "correct horse battery", as createUser sets), holding its CSRF token.
func signedIn(t testing.TB, c *cluster.Cluster, user string) *browser {
	t.Helper()
	b := newBrowser(t, c.DataPlaneURL)
	resp, body := b.login(user, "correct horse battery")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	resp, body = b.do("GET", "/api/account/whoami", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var who struct {
		CSRFToken string `json:"csrf_token"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &who))
	require.NotEmpty(t, who.CSRFToken)
	b.csrf = who.CSRFToken
	return b
}

// TestBrowserSignInToKeyToInference is the sign-in path end to end, real
// processes throughout: a person signs in on the data plane's login form,
// reads who they are, mints a key with the session cookie (CSRF enforced),
// uses it with the OpenAI SDK; an admin revokes it and the next call fails;
// logout ends the session.
func TestBrowserSignInToKeyToInference(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, Models: []enginesim.ModelSpec{{Name: "sim-chat", ContextLength: 4096}}, CompletionTokens: 4})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "vllm", URL: simURL}}})
	createUser(t, c, "maria", "student")
	b := newBrowser(t, c.DataPlaneURL)

	resp, body := b.do("GET", "/login", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `<form method="post" action="/login">`)
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))

	resp, body = b.login("maria", "wrong password")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, body, "invalid username or password")
	resp, _ = b.login("nobody", "wrong password")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "an unknown user reads the same")

	resp, _ = b.do("POST", "/login", url.Values{"username": {"maria"}, "password": {"correct horse battery"}},
		map[string]string{"Origin": "https://evil.example"})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a cross-site login form is refused")

	resp, _ = b.login("maria", "correct horse battery")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, c.Logs())
	assert.Equal(t, "/api/account/whoami", resp.Header.Get("Location"))
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "mindrouter_session" {
			cookie = ck
		}
	}
	require.NotNil(t, cookie)
	assert.True(t, cookie.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, cookie.SameSite)
	assert.False(t, cookie.Secure, "plain HTTP without -secure-cookies")

	resp, body = b.do("GET", "/api/account/whoami", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var who struct {
		User struct {
			ID       string `json:"id"`
			Username string `json:"username"`
		} `json:"user"`
		Role            string `json:"role"`
		AuthenticatedBy string `json:"authenticated_by"`
		CSRFToken       string `json:"csrf_token"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &who))
	assert.Equal(t, "maria", who.User.Username)
	assert.Equal(t, "user", who.Role)
	assert.Equal(t, "session", who.AuthenticatedBy)
	require.NotEmpty(t, who.CSRFToken)
	b.csrf = who.CSRFToken

	resp, _ = b.do("POST", "/api/account/api-keys", map[string]any{"name": "laptop"}, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "no CSRF token, no key")
	resp, body = b.do("POST", "/api/account/api-keys", map[string]any{"name": "laptop"}, b.withCSRF())
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var made struct {
		APIKey struct {
			ID string `json:"id"`
		} `json:"api_key"`
		FullKey string `json:"full_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &made))
	require.True(t, strings.HasPrefix(made.FullKey, "mr2_"))

	resp, body = b.do("GET", "/api/admin/users", nil, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a student's session is no admin: %s", body)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := openaiClient(c, made.FullKey)
	chat := openai.ChatCompletionNewParams{Model: "sim-chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")}}
	done, err := client.Chat.Completions.New(ctx, chat)
	require.NoError(t, err, c.Logs())
	require.NotEmpty(t, done.Choices)

	code, err := c.AdminJSON(ctx, c.RESTURL, "POST", "/api/admin/api-keys/"+made.APIKey.ID+"/revoke", nil, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	_, err = client.Chat.Completions.New(ctx, chat)
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr, "the revoked key is refused at once")
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)

	resp, _ = b.do("POST", "/logout", url.Values{}, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "logout needs the CSRF token")
	resp, body = b.do("POST", "/logout", url.Values{"csrf_token": {b.csrf}}, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.JSONEq(t, `{"sessions_ended":1}`, body)
	resp, _ = b.do("GET", "/api/account/whoami", nil, nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the session is over")
}

// TestAccountKeyLimitOverREST mints personal keys through the data plane's
// account API up to the group's max_api_keys: the next one is a 400 that
// says why, in the gateway's JSON error body, and revoking one of the
// caller's keys frees its slot (the limit counts active personal keys).
func TestAccountKeyLimitOverREST(t *testing.T) {
	t.Parallel()
	c := cluster.Start(t, cluster.Options{}) // keys need no backend
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, err := c.AdminJSON(ctx, c.RESTURL, "POST", "/api/admin/groups", map[string]any{"name": "lab", "display_name": "Lab", "max_api_keys": 2}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	createUser(t, c, "lena", "lab")
	b := signedIn(t, c, "lena")

	mint := func(name string) (int, string, string) {
		resp, body := b.do("POST", "/api/account/api-keys", map[string]any{"name": name}, b.withCSRF())
		var made struct {
			APIKey struct {
				ID string `json:"id"`
			} `json:"api_key"`
		}
		if resp.StatusCode == http.StatusOK {
			require.NoError(t, json.Unmarshal([]byte(body), &made))
		}
		return resp.StatusCode, made.APIKey.ID, body
	}
	code, first, body := mint("one")
	require.Equal(t, http.StatusOK, code, body)
	code, _, body = mint("two")
	require.Equal(t, http.StatusOK, code, body)

	code, _, body = mint("three")
	require.Equal(t, http.StatusBadRequest, code, body)
	var refusal struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &refusal), body)
	assert.Equal(t, 9, refusal.Code, "FailedPrecondition")
	assert.Contains(t, refusal.Message, "API key limit reached")
	assert.Contains(t, refusal.Message, `group "lab" allows 2 active keys`, "the message says which limit")
	resp, body := b.do("GET", "/api/account/api-keys", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var keys []struct {
		Name string `json:"name"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &keys))
	assert.Len(t, keys, 2, "the refused key was not created")

	resp, body = b.do("POST", "/api/account/api-keys/"+first+"/revoke", map[string]any{}, b.withCSRF())
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	code, _, body = mint("three")
	require.Equal(t, http.StatusOK, code, "a revoked key frees its slot: %s", body)
	code, _, body = mint("four")
	require.Equal(t, http.StatusBadRequest, code, body)
}

// TestSignInThrottlingAndSessionExpiry uses short windows so the refusals can
// be watched: the 4th failed attempt for a username from one address is a
// 429 with Retry-After, and a session unused for longer than the idle
// timeout is gone.
func TestSignInThrottlingAndSessionExpiry(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineOllama})
	c := cluster.Start(t, cluster.Options{
		Backends:         []cluster.Backend{{Name: "sim", Engine: "ollama", URL: simURL}},
		ControlPlaneArgs: []string{"-login-max-attempts", "3", "-login-window", "60s", "-session-idle", "2s"},
	})
	createUser(t, c, "nils", "staff")
	createUser(t, c, "olga", "staff")
	b := newBrowser(t, c.DataPlaneURL)
	for i := range 3 {
		resp, _ := b.login("nils", fmt.Sprintf("guess %d", i))
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	resp, body := b.login("nils", "correct horse battery")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "throttled even with the right password")
	assert.Contains(t, body, "too many sign-in attempts")
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))

	resp, _ = b.login("olga", "correct horse battery")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "another username is not throttled")
	resp, _ = b.do("GET", "/api/account/whoami", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	time.Sleep(2500 * time.Millisecond)
	resp, body = b.do("GET", "/api/account/whoami", nil, nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "idle past the timeout: %s", body)
}
