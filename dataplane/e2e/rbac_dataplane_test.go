package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

var updateDataPlaneRBAC = flag.Bool("update-rbac", false,
	"rewrite testdata/rbac_dataplane.txt from what the data plane does (review the diff!)")

const dataPlaneRBACTable = "testdata/rbac_dataplane.txt"

// dpColumns are the data-plane matrix's columns, in the table's order.
var dpColumns = []string{
	"anonymous", "user-key", "user-adminkey", "user-session", "user-nocsrf",
	"auditor-key", "auditor-session", "auditor-nocsrf", "admin-key", "admin-session", "admin-nocsrf",
	"admin-othercsrf", "cluster", "node-agent",
}

// dpRoute is one row: a method and a path (the OpenAPI template for gateway
// routes), and what is sent.
type dpRoute struct {
	method, path string
	body         string // sent as JSON when it is not empty; a form for /login and /logout
	upload       bool   // sent as a multipart transcription upload (model no-such-model)
	form         url.Values
}

func (r dpRoute) key() string { return r.method + " " + r.path }

// dpCaller is one column's credentials: headers, and a browser session whose
// cookie is sent (with or without its CSRF token).
type dpCaller struct {
	header  map[string]string
	session *browser
	csrf    bool
	// otherCSRF, when set, is sent as the CSRF token instead of the session's own.
	otherCSRF string
}

// TestDataPlaneRBACMatrix is the data plane's half of the RBAC matrix: every
// /api/admin and /api/account route of the control plane's OpenAPI document,
// the sign-in routes, the probes and a sample of the inference surfaces, called
// on the data plane's port by every kind of caller, real processes throughout.
// allow means the request got past authorization (any answer but 401 and 403;
// mutating calls name ids that do not exist or send bodies the handler
// refuses, so nothing is changed); deny means 401 or 403. The answers must
// match testdata/rbac_dataplane.txt, and a route without a row fails the test.
func TestDataPlaneRBACMatrix(t *testing.T) {
	t.Parallel()
	start := time.Now()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM,
		Models: []enginesim.ModelSpec{{Name: "sim-chat", ContextLength: 4096}}, CompletionTokens: 4})
	tokenFile := filepath.Join(t.TempDir(), "cluster-token")
	clusterToken := strings.TrimPrefix(cluster.NewKey(t), "mr2_")
	require.NoError(t, os.WriteFile(tokenFile, []byte(clusterToken), 0o600))
	c := cluster.Start(t, cluster.Options{
		Backends:         []cluster.Backend{{Name: "sim", Engine: "vllm", URL: simURL}},
		ControlPlaneArgs: []string{"-cluster-token-file", tokenFile},
		// A search provider, so that /v1/search answers what a key may do (no provider is a 503).
		DataPlaneArgs: []string{"-cluster-token-file", tokenFile, "-search-provider", "searxng", "-search-url", searxngReplay(t).URL},
	})
	callers := dpCallers(t, c, clusterToken)
	routes := dpRoutes(t, c)

	got := map[string][]string{}
	codes := map[string][]int{}
	for _, r := range routes {
		for _, col := range dpColumns {
			code, body := callRoute(t, c, r, callers[col])
			require.Less(t, code, 500, "%s as %s: %s", r.key(), col, body)
			outcome := "allow"
			if code == http.StatusUnauthorized || code == http.StatusForbidden {
				outcome = "deny"
			}
			got[r.key()] = append(got[r.key()], outcome)
			codes[r.key()] = append(codes[r.key()], code)
		}
	}
	for _, r := range routes {
		t.Logf("%-46s %v", r.key(), codes[r.key()])
	}
	if *updateDataPlaneRBAC {
		writeDataPlaneTable(t, routes, got)
	}
	want := readDataPlaneTable(t)
	for _, r := range routes {
		row, ok := want[r.key()]
		require.True(t, ok, "%s has no row in %s: decide who may call it and add one", r.key(), dataPlaneRBACTable)
		for i, col := range dpColumns {
			if row[i] != got[r.key()][i] {
				t.Errorf("%s as %s: want %s, got %s (HTTP %d)", r.key(), col, row[i], got[r.key()][i], codes[r.key()][i])
			}
		}
	}
	for k := range want {
		require.True(t, slices.ContainsFunc(routes, func(r dpRoute) bool { return r.key() == k }),
			"%s has a row but is not a route: remove it", k)
	}
	checkDataPlaneInvariants(t, routes, got)
	t.Logf("%d routes x %d callers in %s", len(routes), len(dpColumns), time.Since(start).Round(time.Millisecond))
}

// checkDataPlaneInvariants states the rules the table must keep, so an
// -update-rbac run cannot quietly accept a hole.
func checkDataPlaneInvariants(t *testing.T, routes []dpRoute, got map[string][]string) {
	t.Helper()
	col := func(name string) int { return slices.Index(dpColumns, name) }
	for _, r := range routes {
		row := got[r.key()]
		admin := strings.HasPrefix(r.path, "/api/admin/")
		account := strings.HasPrefix(r.path, "/api/account/")
		mutating := r.method != http.MethodGet
		// A logout without a session cookie ends nothing and is answered 200.
		if admin || account {
			for _, who := range []string{"anonymous", "cluster", "node-agent"} {
				assert.Equal(t, "deny", row[col(who)], "%s must refuse %s", r.key(), who)
			}
		}
		if admin {
			for _, who := range []string{"user-key", "user-adminkey", "user-session", "user-nocsrf"} {
				assert.Equal(t, "deny", row[col(who)], "%s must refuse a user (%s)", r.key(), who)
			}
			assert.Equal(t, "allow", row[col("admin-key")], "%s must let an admin key in", r.key())
			assert.Equal(t, "allow", row[col("admin-session")], "%s must let an admin session in", r.key())
			want := "allow"
			if mutating {
				want = "deny"
			}
			for _, who := range []string{"auditor-key", "auditor-session"} {
				assert.Equal(t, want, row[col(who)], "%s as %s: auditors read and change nothing", r.key(), who)
			}
		}
		if (admin || account || r.path == "/logout") && mutating {
			for _, who := range []string{"user-nocsrf", "auditor-nocsrf", "admin-nocsrf", "admin-othercsrf"} {
				assert.Equal(t, "deny", row[col(who)], "%s: a session without its CSRF token changes nothing (%s)", r.key(), who)
			}
		}
		if account && mutating {
			for _, who := range []string{"user-key", "user-adminkey", "auditor-key", "admin-key"} {
				assert.Equal(t, "deny", row[col(who)], "%s: account changes need a session (%s)", r.key(), who)
			}
		}
	}
}

// dpCallers creates the principals: a student with a self-service inference
// key, an admin-scoped key (which its group must still not honour) and
// sessions; an auditor and an admin with admin-scoped keys and sessions; the
// cluster token; a registered node's agent secret.
func dpCallers(t *testing.T, c *cluster.Cluster, clusterToken string) map[string]dpCaller {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ids := map[string]string{}
	for user, group := range map[string]string{"rbac-student": "student", "rbac-auditor": "auditor", "rbac-admin": "admin", "rbac-probe": "student"} {
		ids[user] = createUser(t, c, user, group)
	}
	session := func(user string) *browser { return signedIn(t, c, user) }
	adminKey := func(user string) string {
		var made struct {
			FullKey string `json:"full_key"`
		}
		code, err := c.AdminJSON(ctx, c.RESTURL, "POST", "/api/admin/users/"+ids[user]+"/api-keys",
			map[string]any{"name": "rbac", "scopes": []string{"inference", "admin"}}, &made)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		require.NotEmpty(t, made.FullKey)
		return made.FullKey
	}
	bearer := func(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

	student := session("rbac-student")
	resp, body := student.do("POST", "/api/account/api-keys", map[string]any{"name": "rbac"}, student.withCSRF())
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var own struct {
		FullKey string `json:"full_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &own))
	require.NotEmpty(t, own.FullKey)

	const node, nodeSecret = "rbac-node", "rbac-node-secret-0123456789"
	code, err := c.AdminJSON(ctx, c.RESTURL, "POST", "/api/admin/nodes/register",
		map[string]any{"name": node, "hostname": "gpu-1", "agent_secret": nodeSecret}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)

	auditor := session("rbac-auditor")
	return map[string]dpCaller{
		"anonymous":       {},
		"user-key":        {header: bearer(own.FullKey)},
		"user-adminkey":   {header: bearer(adminKey("rbac-student"))},
		"user-session":    {session: student, csrf: true},
		"user-nocsrf":     {session: session("rbac-student")},
		"auditor-key":     {header: bearer(adminKey("rbac-auditor"))},
		"auditor-session": {session: auditor, csrf: true},
		"auditor-nocsrf":  {session: session("rbac-auditor")},
		"admin-key":       {header: bearer(c.AdminKey)},
		"admin-session":   {session: session("rbac-admin"), csrf: true},
		"admin-nocsrf":    {session: session("rbac-admin")},
		// An admin's cookie with another session's (the auditor's) CSRF token.
		"admin-othercsrf": {session: session("rbac-admin"), csrf: true, otherCSRF: auditor.csrf},
		// A caller that holds the cluster token tries every way a header could
		// reach the control plane as metadata.
		"cluster": {header: map[string]string{
			"X-Mindrouter-Cluster-Token":               clusterToken,
			"Grpc-Metadata-X-Mindrouter-Cluster-Token": clusterToken,
		}},
		"node-agent": {header: map[string]string{"X-Mindrouter-Node": node, "Authorization": "Bearer " + nodeSecret}},
	}
}

// dpRoutes lists the rows: the gateway routes from the control plane's
// OpenAPI document, then the data plane's own.
func dpRoutes(t *testing.T, c *cluster.Cluster) []dpRoute {
	t.Helper()
	resp, err := http.Get(c.RESTURL + "/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	var routes []dpRoute
	for path, ops := range doc.Paths {
		for verb := range ops {
			r := dpRoute{method: strings.ToUpper(verb), path: path}
			if r.method != http.MethodGet && r.method != http.MethodDelete {
				r.body = "{}"
			}
			routes = append(routes, r)
		}
	}
	require.NotEmpty(t, routes)
	for i, r := range routes {
		// The right current password and a too-short new one: a refusal that
		// comes after authorization, and nothing changes.
		if r.key() == "POST /api/account/password" {
			routes[i].body = `{"current_password":"correct horse battery","new_password":"x"}`
		}
	}
	slices.SortFunc(routes, func(a, b dpRoute) int { return strings.Compare(a.path+" "+a.method, b.path+" "+b.method) })
	own := []dpRoute{
		{method: "GET", path: "/healthz"},
		{method: "GET", path: "/readyz"},
		{method: "GET", path: "/metrics"},
		{method: "GET", path: "/v1/models"},
		{method: "POST", path: "/v1/chat/completions", body: `{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}`},
		{method: "POST", path: "/v1/audio/speech", body: `{"model":"no-such-model","input":"hi","voice":"alloy","response_format":"wav"}`},
		{method: "POST", path: "/v1/audio/transcriptions", upload: true},
		{method: "POST", path: "/v1/search", body: `{"query":"rbac"}`},
		// MCP: an initialize; the SSE transport's message endpoint without a session (its GET streams forever).
		{method: "POST", path: "/mcp", body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"rbac","version":"1"}}}`},
		{method: "POST", path: "/mcp/sse", body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
		{method: "POST", path: "/v1/responses", body: `{"model":"no-such-model","input":"hi"}`},
		{method: "GET", path: "/v1/responses/{id}"},
		{method: "DELETE", path: "/v1/responses/{id}"},
		{method: "GET", path: "/v1/responses/{id}/input_items"},
		{method: "GET", path: "/api/tags"},
		{method: "GET", path: "/anthropic/v1/models"},
		// The web chat's inference route: a session with its CSRF token, like the pages' forms.
		{method: "POST", path: "/chat/send", body: `{"model":"no-such-model","content":"hi"}`},
		{method: "GET", path: "/login"},
		// Sign-in is open to everyone: a probe user's right password.
		{method: "POST", path: "/login", form: url.Values{"username": {"rbac-probe"}, "password": {"correct horse battery"}}},
		{method: "GET", path: "/login/oidc/no-such-provider"},
		{method: "GET", path: "/login/oidc/callback"},
		// Last: with its CSRF token a session's logout ends it.
		{method: "POST", path: "/logout", form: url.Values{}},
	}
	return append(routes, own...)
}

func (c dpCaller) csrfToken() string {
	if c.otherCSRF != "" {
		return c.otherCSRF
	}
	return c.session.csrf
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// callRoute sends r as caller and returns the status and body.
func callRoute(t *testing.T, c *cluster.Cluster, r dpRoute, caller dpCaller) (int, string) {
	t.Helper()
	var rd io.Reader
	ctype := ""
	switch {
	case r.form != nil:
		form := url.Values{}
		for k, v := range r.form {
			form[k] = v
		}
		if caller.session != nil && caller.csrf {
			form.Set("csrf_token", caller.csrfToken())
		}
		rd, ctype = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	case r.body != "":
		rd, ctype = strings.NewReader(r.body), "application/json"
	case r.upload:
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, err := mw.CreateFormFile("file", "a.wav")
		require.NoError(t, err)
		_, _ = fw.Write([]byte("RIFF"))
		require.NoError(t, mw.WriteField("model", "no-such-model"))
		require.NoError(t, mw.Close())
		rd, ctype = &buf, mw.FormDataContentType()
	}
	// Ids that name nothing: a call let in finds nothing to change.
	req, err := http.NewRequest(r.method, c.DataPlaneURL+pathParam.ReplaceAllString(r.path, "987654321"), rd)
	require.NoError(t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if r.path == "/login" && r.method == http.MethodPost {
		req.Header.Set("Accept", "application/json")
	}
	for k, v := range caller.header {
		req.Header.Set(k, v)
	}
	// No cookie jar: the session's cookie is sent by hand, so that a sign-in
	// answer cannot replace it.
	client := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if caller.session != nil {
		for _, ck := range caller.session.http.Jar.Cookies(req.URL) {
			req.AddCookie(ck)
		}
		if caller.csrf {
			req.Header.Set("X-CSRF-Token", caller.csrfToken())
		}
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(raw)
}

// readDataPlaneTable parses rows of "METHOD /path cell...", one cell per column.
func readDataPlaneTable(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(dataPlaneRBACTable)
	require.NoError(t, err)
	out := map[string][]string{}
	for line := range strings.Lines(string(raw)) {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		require.Len(t, f, 2+len(dpColumns), "row %q needs a method, a path and one cell per column %v", line, dpColumns)
		require.True(t, strings.HasPrefix(f[1], "/"), "row %q: %q is no path", line, f[1])
		for _, cell := range f[2:] {
			require.Contains(t, []string{"allow", "deny"}, cell, "row %q", line)
		}
		route := f[0] + " " + f[1]
		require.NotContains(t, out, route, "two rows for %s", route)
		out[route] = f[2:]
	}
	return out
}

func writeDataPlaneTable(t *testing.T, routes []dpRoute, got map[string][]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# Who may call each route on the DATA PLANE's port (TestDataPlaneRBACMatrix in dataplane/e2e).\n")
	b.WriteString("# allow: the request got past authorization (any status but 401/403); deny: 401 or 403.\n")
	b.WriteString("# Columns: anonymous (no credentials); user-key (a student's self-service inference key);\n")
	b.WriteString("# user-adminkey (a student's key with the admin scope); *-session (a browser session cookie with its\n")
	b.WriteString("# X-CSRF-Token); *-nocsrf (a session cookie without it); admin-othercsrf (an admin's cookie with the\n")
	b.WriteString("# auditor session's CSRF token); auditor-key and admin-key (keys with the\n")
	b.WriteString("# admin scope); cluster (the cluster token in every header form); node-agent (a node's agent secret).\n")
	b.WriteString("# Gateway routes come from the control plane's OpenAPI document; a route without a row fails the test.\n")
	b.WriteString("# POST /login signs a probe user in; GET /login/oidc/callback comes without a flow and is refused to all.\n")
	w := 0
	for _, r := range routes {
		w = max(w, len(r.key()))
	}
	fmt.Fprintf(&b, "# %-*s %s\n", w-2, "route", strings.Join(dpColumns, " "))
	for _, r := range routes {
		fmt.Fprintf(&b, "%-*s %s\n", w, r.key(), strings.Join(got[r.key()], " "))
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(dataPlaneRBACTable), 0o755))
	require.NoError(t, os.WriteFile(dataPlaneRBACTable, []byte(b.String()), 0o644))
}
