package signin

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// fakeSignIn is an in-memory SignInService: one account, one throttled
// username, and a record of what it was sent.
type fakeSignIn struct {
	controlplanev1.UnimplementedSignInServiceServer
	mu      sync.Mutex
	logins  []*controlplanev1.PasswordLoginRequest
	logouts []*controlplanev1.LogoutRequest
	tokens  []string
}

func (f *fakeSignIn) PasswordLogin(ctx context.Context, req *controlplanev1.PasswordLoginRequest) (*controlplanev1.PasswordLoginResponse, error) {
	f.mu.Lock()
	f.logins = append(f.logins, req)
	f.tokens = append(f.tokens, metadata.ValueFromIncomingContext(ctx, clusterTokenMD)...)
	f.mu.Unlock()
	switch {
	case req.GetUsername() == "throttled":
		st, _ := status.New(codes.ResourceExhausted, "too many sign-in attempts; try again in 42 seconds").
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(41500 * time.Millisecond)})
		return nil, st.Err()
	case req.GetUsername() == "ann" && req.GetPassword() == "right password":
		return &controlplanev1.PasswordLoginResponse{SessionToken: "sess-token", CsrfToken: "csrf-token",
			ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)), IdleTimeoutSeconds: 60}, nil
	}
	return nil, status.Error(codes.Unauthenticated, "invalid username or password")
}

func (f *fakeSignIn) ListProviders(context.Context, *controlplanev1.ListProvidersRequest) (*controlplanev1.ListProvidersResponse, error) {
	return &controlplanev1.ListProvidersResponse{Providers: []*controlplanev1.Provider{{Name: "entra", DisplayName: "University <account>"}}}, nil
}

func (f *fakeSignIn) Logout(_ context.Context, req *controlplanev1.LogoutRequest) (*controlplanev1.LogoutResponse, error) {
	f.mu.Lock()
	f.logouts = append(f.logouts, req)
	f.mu.Unlock()
	if req.GetCsrfToken() != "csrf-token" {
		return nil, status.Error(codes.PermissionDenied, "missing or wrong CSRF token")
	}
	if req.GetEverywhere() {
		return &controlplanev1.LogoutResponse{SessionsEnded: 3}, nil
	}
	return &controlplanev1.LogoutResponse{SessionsEnded: 1}, nil
}

func startHandler(t *testing.T, cfg Config) (*fakeSignIn, *httptest.Server) {
	t.Helper()
	fake := &fakeSignIn{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	controlplanev1.RegisterSignInServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	cfg.ClusterToken = "cluster-secret"
	ts := httptest.NewServer(New(conn, cfg, slog.New(slog.DiscardHandler)))
	t.Cleanup(ts.Close)
	return fake, ts
}

func post(t *testing.T, ts *httptest.Server, path string, form url.Values, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", ts.URL+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	return nil
}

func TestLoginSetsAHardenedCookie(t *testing.T) {
	t.Parallel()
	fake, ts := startHandler(t, Config{})
	resp, _ := post(t, ts, "/login", url.Values{"username": {"ann"}, "password": {"right password"}, "next": {"/dashboard"}}, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/dashboard", resp.Header.Get("Location"))
	c := sessionCookie(resp)
	require.NotNil(t, c)
	assert.Equal(t, "sess-token", c.Value)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, c.SameSite)
	assert.Equal(t, "/", c.Path)
	assert.False(t, c.Secure)
	require.Len(t, fake.logins, 1)
	assert.Equal(t, "127.0.0.1", fake.logins[0].GetClientIp(), "the peer address, for throttling")
	assert.Equal(t, []string{"cluster-secret"}, fake.tokens, "calls carry the cluster token")

	resp, _ = post(t, ts, "/login", url.Values{"username": {"ann"}, "password": {"right password"}, "next": {"//evil.example/x"}},
		map[string]string{"X-Forwarded-Proto": "https"})
	assert.Equal(t, defaultNext, resp.Header.Get("Location"), "no open redirect")
	assert.True(t, sessionCookie(resp).Secure, "Secure behind a TLS proxy")

	resp, body := post(t, ts, "/login", url.Values{"username": {"ann"}, "password": {"right password"}}, map[string]string{"Accept": "application/json"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `"csrf_token":"csrf-token"`)

	_, secure := startHandler(t, Config{SecureCookies: true})
	resp, _ = post(t, secure, "/login", url.Values{"username": {"ann"}, "password": {"right password"}}, nil)
	assert.True(t, sessionCookie(resp).Secure, "-secure-cookies")
}

func TestLoginPageOffersTheProviders(t *testing.T) {
	t.Parallel()
	_, ts := startHandler(t, Config{})
	resp, err := http.Get(ts.URL + "/login?next=/dashboard")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `href="/login/oidc/entra?next=%2fdashboard"`)
	assert.Contains(t, string(body), "Sign in with University &lt;account&gt;", "names are escaped")
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
}

func TestLoginRefusals(t *testing.T) {
	t.Parallel()
	fake, ts := startHandler(t, Config{})
	resp, body := post(t, ts, "/login", url.Values{"username": {"<b>ann</b>"}, "password": {"nope"}}, nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, body, "invalid username or password")
	assert.Contains(t, body, "&lt;b&gt;ann&lt;/b&gt;", "the username is escaped back into the form")
	assert.Nil(t, sessionCookie(resp))

	resp, body = post(t, ts, "/login", url.Values{"username": {"throttled"}, "password": {"x"}}, nil)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "42", resp.Header.Get("Retry-After"))
	assert.Contains(t, body, "too many sign-in attempts")

	n := len(fake.logins)
	for name, h := range map[string]map[string]string{
		"foreign origin":   {"Origin": "https://evil.example"},
		"cross-site fetch": {"Sec-Fetch-Site": "cross-site"},
	} {
		resp, _ = post(t, ts, "/login", url.Values{"username": {"ann"}, "password": {"right password"}}, h)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, name)
	}
	assert.Len(t, fake.logins, n, "refused before the control plane is asked")

	resp, _ = post(t, ts, "/login", url.Values{"username": {strings.Repeat("a", maxFormBytes)}}, nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "oversized form")
}

func TestLogoutNeedsTheCSRFTokenAndClearsTheCookie(t *testing.T) {
	t.Parallel()
	fake, ts := startHandler(t, Config{})
	cookie := map[string]string{"Cookie": CookieName + "=sess-token"}
	resp, _ := post(t, ts, "/logout", url.Values{}, cookie)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	resp, body := post(t, ts, "/logout", url.Values{"csrf_token": {"csrf-token"}, "everywhere": {"1"}}, cookie)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"sessions_ended":3}`, body)
	c := sessionCookie(resp)
	require.NotNil(t, c)
	assert.Empty(t, c.Value)
	assert.Negative(t, c.MaxAge)
	last := fake.logouts[len(fake.logouts)-1]
	assert.Equal(t, "sess-token", last.GetSessionToken())
	assert.True(t, last.GetEverywhere())

	resp, body = post(t, ts, "/logout", url.Values{}, map[string]string{"Cookie": CookieName + "=sess-token", CSRFHeader: "csrf-token"})
	require.Equal(t, http.StatusOK, resp.StatusCode, "the header carries the token too")
	assert.JSONEq(t, `{"sessions_ended":1}`, body)

	resp, body = post(t, ts, "/logout", url.Values{}, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "no session: nothing to end")
	assert.JSONEq(t, `{"sessions_ended":0}`, body)
}

func TestControlPlaneUnavailable(t *testing.T) {
	t.Parallel()
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ts := httptest.NewServer(New(conn, Config{Timeout: 2 * time.Second}, slog.New(slog.DiscardHandler)))
	t.Cleanup(ts.Close)
	resp, body := post(t, ts, "/login", url.Values{"username": {"ann"}, "password": {"x"}}, nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.NotContains(t, body, "127.0.0.1:1", "transport details stay inside")
}

func TestMetadataCarriesCookieAndCSRF(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/api/account/whoami", nil)
	assert.Nil(t, Metadata(context.Background(), r), "no cookie, no session metadata")
	r.AddCookie(&http.Cookie{Name: CookieName, Value: "tok"})
	r.Header.Set(CSRFHeader, "c")
	md := Metadata(context.Background(), r)
	assert.Equal(t, []string{"tok"}, md.Get(sessionMD))
	assert.Equal(t, []string{"c"}, md.Get(csrfMD))
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                     defaultNext,
		"/dashboard?x=1":       "/dashboard?x=1",
		"//evil.example":       defaultNext,
		"/\\evil.example":      defaultNext,
		"https://evil.example": defaultNext,
		"javascript:alert(1)":  defaultNext,
	} {
		assert.Equal(t, want, safeNext(in), in)
	}
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"", "/", "//x", "/\\x", "https://x", "/a/b?c=d#e", "/%2F%2Fx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safeNext(s)
		u, err := url.Parse(got)
		if err != nil {
			return
		}
		if u.Host != "" || u.Scheme != "" || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") {
			t.Fatalf("safeNext(%q) = %q leaves the site", s, got)
		}
	})
}
