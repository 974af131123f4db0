package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// fakeCP is an in-memory control plane: sessions by token, each with a role
// and a CSRF token; it refuses writes without the CSRF token, like the real
// interceptor.
type fakeCP struct {
	mu       sync.Mutex
	sessions map[string]cpclient.Me
	keys     []cpclient.APIKey
	requests []cpclient.QuotaRequest
	backends []cpclient.Backend
	status   cpclient.ClusterStatus
	users    int
	console  consoleState
	// offline is the system switch (zero: online).
	offline cpclient.SystemStatus
	catalog catalogState
	// nodes replaces the one offline node; history and energy feed the
	// telemetry and energy pages, which record what they asked.
	nodes          []cpclient.Node
	history        map[string][]cpclient.HistoryPoint
	historyQueries []cpclient.HistoryQuery
	energy         cpclient.EnergyReport
	energyQueries  []string
}

func newFakeCP() *fakeCP {
	return &fakeCP{
		sessions: map[string]cpclient.Me{
			"s-user":    {UserID: 1, Username: "maria", Role: "user", CSRF: "c-user"},
			"s-admin":   {UserID: 2, Username: "ada", Role: "admin", CSRF: "c-admin"},
			"s-auditor": {UserID: 3, Username: "audrey", Role: "auditor", CSRF: "c-auditor"},
		},
		backends: []cpclient.Backend{{ID: 7, Name: "gpu1", Status: "healthy", Engine: "vllm"}, {ID: 8, Name: "gpu2", Status: "unhealthy", LastError: "connection refused"}},
		status: cpclient.ClusterStatus{BackendsTotal: 2, BackendsHealthy: 1, NodesTotal: 1, NodesOnline: 1,
			Models: []cpclient.CatalogEntry{{Name: "llama3", ContextLength: 8192, Capabilities: []string{"vision"}, HealthyBackends: 1, Loaded: true}}},
	}
}

func (f *fakeCP) me(c cpclient.Caller, write bool) (cpclient.Me, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	me, ok := f.sessions[c.Session]
	if !ok {
		return me, &cpclient.WebError{Status: 401, Message: "session expired"}
	}
	if write && c.CSRF != me.CSRF {
		return me, &cpclient.WebError{Status: 403, Message: "CSRF token missing or wrong"}
	}
	return me, nil
}

func (f *fakeCP) admin(c cpclient.Caller, write bool) error {
	me, err := f.me(c, write)
	if err != nil {
		return err
	}
	if me.Role == "admin" || (!write && me.Role == "auditor") {
		return nil
	}
	return &cpclient.WebError{Status: 403, Message: "permission denied"}
}

func (f *fakeCP) Status(context.Context) (cpclient.ClusterStatus, error) { return f.status, nil }
func (f *fakeCP) WhoAmI(_ context.Context, c cpclient.Caller) (cpclient.Me, error) {
	return f.me(c, false)
}
func (f *fakeCP) MyUsage(_ context.Context, c cpclient.Caller) (cpclient.Usage, error) {
	_, err := f.me(c, false)
	return cpclient.Usage{TokensUsed: 250, TokenBudget: 1000, PeriodEnd: time.Unix(1e9, 0)}, err
}
func (f *fakeCP) MyKeys(_ context.Context, c cpclient.Caller) ([]cpclient.APIKey, error) {
	_, err := f.me(c, false)
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]cpclient.APIKey(nil), f.keys...), err
}
func (f *fakeCP) CreateMyKey(_ context.Context, c cpclient.Caller, name string) (cpclient.APIKey, string, error) {
	if _, err := f.me(c, true); err != nil {
		return cpclient.APIKey{}, "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := cpclient.APIKey{ID: int64(len(f.keys) + 1), Name: name, Prefix: "mr2_abcdefgh", Status: "active"}
	f.keys = append(f.keys, k)
	return k, "mr2_abcdefgh-secret", nil
}
func (f *fakeCP) RenewMyKey(_ context.Context, c cpclient.Caller, _ int64) error {
	_, err := f.me(c, true)
	return err
}
func (f *fakeCP) RevokeMyKey(_ context.Context, c cpclient.Caller, id int64) error {
	if _, err := f.me(c, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.keys {
		if f.keys[i].ID == id {
			f.keys[i].Status = "revoked"
			return nil
		}
	}
	return &cpclient.WebError{Status: 404, Message: "API key not found"}
}
func (f *fakeCP) MyQuotaRequests(_ context.Context, c cpclient.Caller) ([]cpclient.QuotaRequest, error) {
	_, err := f.me(c, false)
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]cpclient.QuotaRequest(nil), f.requests...), err
}
func (f *fakeCP) RequestQuota(_ context.Context, c cpclient.Caller, tokens int64, why string) error {
	if _, err := f.me(c, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, cpclient.QuotaRequest{ID: 1, Username: "maria", RequestedTokens: tokens, Justification: why, Status: "pending"})
	return nil
}
func (f *fakeCP) Backends(_ context.Context, c cpclient.Caller) ([]cpclient.Backend, error) {
	return f.backends, f.admin(c, false)
}
func (f *fakeCP) ChangeBackend(_ context.Context, c cpclient.Caller, id int64, a cpclient.BackendAction) error {
	if err := f.admin(c, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.backends {
		if f.backends[i].ID == id && a == cpclient.ActionDrain {
			f.backends[i].Status = "draining"
		}
	}
	return nil
}
func (f *fakeCP) RegisterBackend(_ context.Context, c cpclient.Caller, _, _, _ string, _ int) error {
	return f.admin(c, true)
}
func (f *fakeCP) Nodes(_ context.Context, c cpclient.Caller) ([]cpclient.Node, error) {
	err := f.admin(c, false)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nodes != nil {
		return f.nodes, err
	}
	return []cpclient.Node{{Name: "n1", Status: "offline"}}, err
}
func (f *fakeCP) Models(_ context.Context, c cpclient.Caller) ([]cpclient.Model, error) {
	if err := f.admin(c, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.catalog.models, nil
}
func (f *fakeCP) GPUs(_ context.Context, c cpclient.Caller) ([]cpclient.GPU, error) {
	return nil, f.admin(c, false)
}
func (f *fakeCP) Users(_ context.Context, c cpclient.Caller, q cpclient.UserQuery) (cpclient.UserList, error) {
	if err := f.admin(c, false); err != nil {
		return cpclient.UserList{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out cpclient.UserList
	for i := range f.users {
		u := cpclient.User{ID: int64(i + 1), Username: fmt.Sprintf("user%05d", i), Group: "student", GroupID: 5, Active: true}
		if q.Search != "" && !strings.Contains(u.Username, q.Search) {
			continue
		}
		out.Total++
		if out.Total > int64(q.Skip) && len(out.Users) < q.Limit {
			out.Users = append(out.Users, u)
		}
	}
	return out, nil
}
func (f *fakeCP) Groups(_ context.Context, c cpclient.Caller) ([]cpclient.Group, error) {
	return []cpclient.Group{{ID: 5, Name: "student", UserCount: f.users, TokenBudget: 1000, RPMLimit: 30, Weight: 1}, {ID: 6, Name: "faculty"}}, f.admin(c, false)
}
func (f *fakeCP) CreateUser(_ context.Context, c cpclient.Caller, _, _, _, _ string, groupID int64) error {
	if err := f.admin(c, true); err != nil {
		return err
	}
	if groupID != 5 {
		return &cpclient.WebError{Status: 404, Message: "group not found"}
	}
	f.mu.Lock()
	f.users++
	f.mu.Unlock()
	return nil
}
func (f *fakeCP) SetUserActive(_ context.Context, c cpclient.Caller, _ int64, _ bool) error {
	return f.admin(c, true)
}
func (f *fakeCP) AllKeys(_ context.Context, c cpclient.Caller, _ string) ([]cpclient.APIKey, error) {
	return f.keys, f.admin(c, false)
}
func (f *fakeCP) RevokeKey(_ context.Context, c cpclient.Caller, _ int64) error {
	return f.admin(c, true)
}
func (f *fakeCP) QuotaRequests(_ context.Context, c cpclient.Caller, _ string) ([]cpclient.QuotaRequest, error) {
	return f.requests, f.admin(c, false)
}
func (f *fakeCP) ReviewQuotaRequest(_ context.Context, c cpclient.Caller, _ int64, _ bool, _ string) error {
	return f.admin(c, true)
}
func (f *fakeCP) Queue(_ context.Context, c cpclient.Caller) (cpclient.Queue, error) {
	return cpclient.Queue{}, f.admin(c, false)
}
func (f *fakeCP) Decisions(_ context.Context, c cpclient.Caller, _ int) ([]cpclient.Decision, error) {
	return nil, f.admin(c, false)
}

func newTestHandler(t testing.TB) (*Handler, *fakeCP) {
	t.Helper()
	cp := newFakeCP()
	h, err := New(cp, Config{Version: "test"}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return h, cp
}

func get(h http.Handler, path, session string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	if session != "" {
		r.AddCookie(&http.Cookie{Name: "mindrouter_session", Value: session})
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func post(h http.Handler, path, session string, form url.Values, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	if session != "" {
		r.AddCookie(&http.Cookie{Name: "mindrouter_session", Value: session})
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestSecurityHeadersOnEveryPage: a strict CSP (no inline script or style)
// and no framing on public, signed-in and error pages alike.
func TestSecurityHeadersOnEveryPage(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t)
	for _, path := range []string{"/", "/models", "/dashboard", "/admin", "/admin/nope"} {
		w := get(h, path, "s-admin")
		csp := w.Header().Get("Content-Security-Policy")
		assert.Contains(t, csp, "script-src 'self'", path)
		assert.Contains(t, csp, "style-src 'self'", path)
		assert.NotContains(t, csp, "unsafe-inline", path)
		assert.Contains(t, csp, "frame-ancestors 'none'", path)
		assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"), path)
		assert.Equal(t, "DENY", w.Header().Get("X-Frame-Options"), path)
		body := w.Body.String()
		assert.NotContains(t, body, "<script>", "no inline script on %s", path)
		assert.NotContains(t, body, "style=", "no inline style on %s", path)
		assert.NotRegexp(t, ` on[a-z]+=`, body, "no inline handler on %s", path)
	}
}

// TestSignedOutGoesToLogin: the dashboard and the console send a browser
// without a session to the sign-in page, with the way back.
func TestSignedOutGoesToLogin(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t)
	for _, path := range []string{"/dashboard", "/admin/backends"} {
		w := get(h, path, "")
		require.Equal(t, http.StatusSeeOther, w.Code)
		assert.Equal(t, "/login?next="+url.QueryEscape(path), w.Header().Get("Location"))
		w = get(h, path, "s-expired")
		require.Equal(t, http.StatusSeeOther, w.Code, "an expired session signs in again")
	}
	assert.Equal(t, http.StatusUnauthorized, get(h, "/dashboard/usage.json", "").Code)
	assert.Equal(t, http.StatusForbidden, get(h, "/admin", "s-user").Code, "a user has no console")
}

// TestFormsNeedCSRFAndSameOrigin: a change without the session's CSRF token,
// or posted from another site, is refused before the control plane is asked.
func TestFormsNeedCSRFAndSameOrigin(t *testing.T) {
	t.Parallel()
	h, cp := newTestHandler(t)
	form := url.Values{"name": {"laptop"}}
	assert.Equal(t, http.StatusForbidden, post(h, "/dashboard/keys", "s-user", form, nil).Code)
	form.Set("csrf_token", "c-admin")
	assert.Equal(t, http.StatusForbidden, post(h, "/dashboard/keys", "s-user", form, nil).Code, "another session's token")
	form.Set("csrf_token", "c-user")
	assert.Equal(t, http.StatusForbidden, post(h, "/dashboard/keys", "s-user", form, map[string]string{"Origin": "https://evil.example"}).Code)
	assert.Equal(t, http.StatusForbidden, post(h, "/dashboard/keys", "s-user", form, map[string]string{"Sec-Fetch-Site": "cross-site"}).Code)
	assert.Empty(t, cp.keys)

	w := post(h, "/dashboard/keys", "s-user", form, map[string]string{"Origin": "http://example.com"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Contains(t, w.Body.String(), "mr2_abcdefgh-secret", "the new key is shown once, in the response")
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	assert.NotContains(t, get(h, "/dashboard", "s-user").Body.String(), "mr2_abcdefgh-secret", "and never again")

	big := url.Values{"csrf_token": {"c-user"}, "name": {strings.Repeat("x", maxFormBytes)}}
	assert.Equal(t, http.StatusBadRequest, post(h, "/dashboard/keys", "s-user", big, nil).Code, "forms are bounded")
}

// TestUserTextIsEscaped: a justification with markup comes back as text.
func TestUserTextIsEscaped(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t)
	w := post(h, "/dashboard/quota", "s-user", url.Values{"csrf_token": {"c-user"}, "requested_tokens": {"5000"},
		"justification": {`<script>alert(1)</script>`}}, nil)
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	body := get(h, "/admin/requests", "s-admin").Body.String()
	assert.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.NotContains(t, body, "<script>alert(1)")
	w = post(h, "/dashboard/quota", "s-user", url.Values{"csrf_token": {"c-user"}, "requested_tokens": {"-3"}}, nil)
	assert.Equal(t, http.StatusBadRequest, w.Code)
}

// TestAuditorSeesNoControls: every console page renders for an auditor with
// no form that changes anything, and the control plane refuses one anyway.
func TestAuditorSeesNoControls(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t)
	for _, s := range adminSections {
		w := get(h, s.URL, "s-auditor")
		require.Equal(t, http.StatusOK, w.Code, s.URL)
		main := w.Body.String()[strings.Index(w.Body.String(), "<main"):]
		assert.NotContains(t, main, `method="post"`, "no change control on %s", s.URL)
		assert.Contains(t, main, "Read-only", s.URL)

		w = get(h, s.URL, "s-admin")
		require.Equal(t, http.StatusOK, w.Code, s.URL)
	}
	assert.Contains(t, get(h, "/admin/backends", "s-admin").Body.String(), `action="/admin/backends/7/drain"`)
	w := post(h, "/admin/backends/7/drain", "s-auditor", url.Values{"csrf_token": {"c-auditor"}}, nil)
	assert.Equal(t, http.StatusForbidden, w.Code)
	w = post(h, "/admin/backends/7/drain", "s-admin", url.Values{"csrf_token": {"c-admin"}}, nil)
	require.Equal(t, http.StatusSeeOther, w.Code)
	assert.Equal(t, "/admin/backends?done=drain", w.Header().Get("Location"))
}

// TestAdminCreatesAndDeactivatesUsers: the users page's forms reach the
// control plane with the admin's CSRF token; a bad group is the control
// plane's 404, shown on the error page.
func TestAdminCreatesAndDeactivatesUsers(t *testing.T) {
	t.Parallel()
	h, cp := newTestHandler(t)
	cp.users = 1
	body := get(h, "/admin/users", "s-admin").Body.String()
	assert.Contains(t, body, `action="/admin/users"`)
	assert.Contains(t, body, `action="/admin/users/1/deactivate"`)
	form := url.Values{"csrf_token": {"c-admin"}, "username": {"newbie"}, "email": {"n@example.edu"}, "password": {"long enough"}, "group_id": {"5"}}
	w := post(h, "/admin/users", "s-admin", form, nil)
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	assert.Equal(t, "/admin/users?done=user-created", w.Header().Get("Location"))
	assert.Equal(t, 2, cp.users)
	assert.Contains(t, get(h, "/admin/users?done=user-created", "s-admin").Body.String(), "The user was created.")
	form.Set("group_id", "9")
	w = post(h, "/admin/users", "s-admin", form, nil)
	assert.Equal(t, http.StatusNotFound, w.Code)
	assert.Contains(t, w.Body.String(), "group not found")
	w = post(h, "/admin/users/1/deactivate", "s-admin", url.Values{"csrf_token": {"c-admin"}}, nil)
	assert.Equal(t, "/admin/users?done=deactivated", w.Header().Get("Location"))
	assert.Equal(t, http.StatusNotFound, post(h, "/admin/users/1/explode", "s-admin", url.Values{"csrf_token": {"c-admin"}}, nil).Code)
}

// TestOverviewBanner: an unhealthy backend and an offline node are named in
// the overview's alert.
func TestOverviewBanner(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t)
	body := get(h, "/admin", "s-admin").Body.String()
	assert.Contains(t, body, `class="banner bad" role="alert"`)
	assert.Contains(t, body, "Backend gpu2 is unhealthy: connection refused")
	assert.Contains(t, body, "Node n1 is offline")
	assert.Contains(t, get(h, "/", "").Body.String(), "Degraded: 1 backend(s) unhealthy")
}

// TestPageWeight: every page loads all of its JavaScript and CSS; together,
// compressed as served, they stay far under the 150 KB budget.
func TestPageWeight(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t)
	total := 0
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		r := httptest.NewRequest("GET", "/"+p, nil)
		r.Header.Set("Accept-Encoding", "gzip")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, http.StatusOK, w.Code, p)
		require.Equal(t, "gzip", w.Header().Get("Content-Encoding"), p)
		zr, err := gzip.NewReader(bytes.NewReader(w.Body.Bytes()))
		require.NoError(t, err)
		raw, err := io.ReadAll(zr)
		require.NoError(t, err)
		want, _ := fs.ReadFile(staticFS, p)
		require.Equal(t, want, raw, "served intact: %s", p)
		total += w.Body.Len()
		return nil
	})
	require.NoError(t, err)
	t.Logf("JavaScript and CSS, compressed: %d bytes", total)
	assert.Less(t, total, 150_000)
}

// BenchmarkAdminUsersPage renders the console's users page (the heaviest
// server-rendered page: 200 rows of the 10,000 users the fake holds) with the
// control plane answering instantly: the pages' own cost.
func BenchmarkAdminUsersPage(b *testing.B) {
	h, cp := newTestHandler(b)
	cp.users = 10_000
	b.ReportAllocs()
	for b.Loop() {
		w := get(h, "/admin/users", "s-admin")
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
