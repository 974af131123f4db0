package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// fill sets a form's fields (checkboxes by "true"/"false") and submits it the
// way the browser does, confirmation accepted, then waits for the next page.
func (p *page) fill(formSel string, values map[string]string) {
	p.t.Helper()
	raw, err := json.Marshal(values)
	require.NoError(p.t, err)
	sel, _ := json.Marshal(formSel)
	eval[bool](p, fmt.Sprintf(`(() => { const f = document.querySelector(%s); const v = %s || {};
		for (const [k, val] of Object.entries(v)) { const el = f.elements[k];
			if (el.type === "checkbox") el.checked = val === "true";
			else if (el.tagName === "SELECT") el.value = [...el.options].find(o => o.text === val || o.value === val).value;
			else el.value = val; }
		window.confirm = () => true; document.body.dataset.old = "1"; f.requestSubmit(); return true; })()`, sel, raw))
	require.Eventually(p.t, func() bool {
		return eval[bool](p, `document.readyState === "complete" && !!document.body && !document.body.dataset.old && !!document.querySelector("h1")`)
	}, 30*time.Second, 100*time.Millisecond, "the form %s was answered", formSel)
}

// expectRefusal drops the console's note of the document's expected refusal
// (Chromium logs "Failed to load resource" for any 4xx page).
func (p *page) expectRefusal(code int) {
	p.t.Helper()
	time.Sleep(100 * time.Millisecond) // let the console catch up
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.errs[:0]
	found := false
	for _, e := range p.errs {
		if strings.Contains(e, fmt.Sprintf("status of %d", code)) {
			found = true
			continue
		}
		kept = append(kept, e)
	}
	p.errs = kept
	assert.True(p.t, found, "the page was answered with %d", code)
}

// status fetches path with the page's session and returns the HTTP status.
func (p *page) status(path string) int {
	p.t.Helper()
	return eval[int](p, fmt.Sprintf(`fetch(%q, {credentials: "same-origin"}).then(r => r.status)`, path), chromedp.EvalAwaitPromise)
}

type apiUser struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	GroupName string `json:"group_name"`
	RPMLimit  *int   `json:"rpm_limit"`
}

type apiGroup struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	TokenBudget string `json:"token_budget"`
	RPMLimit    int    `json:"rpm_limit"`
	IsAuditor   bool   `json:"is_auditor"`
}

func adminGet(t *testing.T, c *cluster.Cluster, path string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := c.AdminJSON(ctx, c.RESTURL, "GET", path, nil, out)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, path)
}

// groupByName is the group the REST admin API lists under name.
func groupByName(t testing.TB, c *cluster.Cluster, name string) (apiGroup, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var gs []apiGroup
	code, err := c.AdminJSON(ctx, c.RESTURL, "GET", "/api/admin/groups", nil, &gs)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	for _, g := range gs {
		if g.Name == name {
			return g, true
		}
	}
	return apiGroup{}, false
}

// TestWebConsoleInBrowser drives the console's management and audit pages in
// headless Chromium against real processes: an admin edits a user's group and
// limits and deletes a user (the REST API agrees), creates, edits and deletes
// a group (refused with a clear message while it has members), finds a
// request just sent with openai-go in the audit trail, opens it (the control
// plane records the view) and exports the search; an auditor sees every page
// without an enabled change control; a student gets 403 on every console URL.
// axe-core in light and dark mode and screenshots (phone too) for each page.
func TestWebConsoleInBrowser(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, CompletionTokens: 6,
		Models: []enginesim.ModelSpec{{Name: "sim-chat", ContextLength: 8192}}})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "vllm", URL: simURL}}})
	createUser(t, c, "ada", "admin")
	createUser(t, c, "audrey", "auditor")
	createUser(t, c, "maria", "student")
	createUser(t, c, "sam", "student")
	tempID := createUser(t, c, "temp", "student")
	const pw = "correct horse battery"

	// A request to find in the audit trail, sent with the official SDK.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	probe := "zebra" + fmt.Sprint(time.Now().UnixNano()%100000)
	client := openaiClient(c, c.AdminKey)
	_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "sim-chat",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("console " + probe + " <b>bold?</b>")}})
	require.NoError(t, err, c.Logs())

	a := newPage(t, c.DataPlaneURL)
	a.signIn("ada", pw, "/admin")

	// Users: search, edit the group and a limit; the API agrees.
	a.open("/admin/users?q=maria")
	require.Contains(t, a.text("table"), "maria")
	a.submit(`table a[href^="/admin/users/"]`, "#edit-user")
	assert.Equal(t, "User maria", a.text("h1"))
	a.check("admin-user")
	a.fill("section[aria-labelledby=edit-user] form", map[string]string{"group_id": "faculty", "rpm_limit": "7", "token_budget": ""})
	require.Contains(t, a.text("main"), "The user was updated", a.text("main"))
	var users struct {
		Users []apiUser `json:"users"`
	}
	adminGet(t, c, "/api/admin/users?search=maria", &users)
	require.Len(t, users.Users, 1)
	assert.Equal(t, "faculty", users.Users[0].GroupName, "the console moved maria")
	require.NotNil(t, users.Users[0].RPMLimit)
	assert.Equal(t, 7, *users.Users[0].RPMLimit)

	// Delete a user; an admin's own page offers no delete.
	a.open("/admin/users/" + tempID)
	a.fill("section[aria-labelledby=delete-user] form", nil)
	require.Contains(t, a.text("main"), "The user was deleted", a.text("main"))
	users.Users = nil
	adminGet(t, c, "/api/admin/users?search=temp", &users)
	assert.Empty(t, users.Users, "deleted in the console")
	a.open("/admin/users?q=ada")
	a.submit(`table a[href^="/admin/users/"]`, "#edit-user")
	assert.Zero(t, eval[int](a, `document.querySelectorAll("#delete-user").length`), "no delete for one's own account")

	// Groups: create, edit, refuse the delete while a member remains.
	a.open("/admin/groups")
	a.fill("section[aria-labelledby=create-group] form", map[string]string{"name": "lab", "display_name": "Robotics lab",
		"token_budget": "5000", "rpm_limit": "12", "scheduler_weight": "2", "api_key_expiry_days": "30", "max_api_keys": "3", "is_auditor": "false"})
	require.Contains(t, a.text("main"), "The group was created", a.text("main"))
	lab, ok := groupByName(t, c, "lab")
	require.True(t, ok, "the API lists the new group")
	assert.Equal(t, "5000", lab.TokenBudget)
	a.open("/admin/groups/" + lab.ID)
	a.check("admin-group")
	a.fill("section[aria-labelledby=edit-group] form", map[string]string{"rpm_limit": "99", "audit_prompts": "true"})
	require.Contains(t, a.text("main"), "The group was updated", a.text("main"))
	lab, _ = groupByName(t, c, "lab")
	assert.Equal(t, 99, lab.RPMLimit)
	labberID := createUser(t, c, "labber", "lab")
	a.fill("section[aria-labelledby=delete-group] form", nil)
	assert.Contains(t, a.text(".banner.bad"), "The group was not deleted")
	assert.Contains(t, a.text(".banner.bad"), "move them to another group first")
	a.expectRefusal(http.StatusConflict)
	a.check("admin-group-in-use")
	_, stillThere := groupByName(t, c, "lab")
	assert.True(t, stillThere, "refused while it has a member")
	code, err := c.AdminJSON(ctx, c.RESTURL, "DELETE", "/api/admin/users/"+labberID, nil, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	a.open("/admin/groups/" + lab.ID)
	a.fill("section[aria-labelledby=delete-group] form", nil)
	require.Contains(t, a.text("main"), "The group was deleted", a.text("main"))
	_, stillThere = groupByName(t, c, "lab")
	assert.False(t, stillThere)

	// Audit: search for the request, open it (recorded), export the search.
	var reqID string
	require.Eventually(t, func() bool {
		a.open("/admin/audit?text=" + probe)
		links := eval[[]string](a, `[...document.querySelectorAll('table a[href^="/admin/audit/records/"]')].map(a => a.textContent)`)
		if len(links) == 1 {
			reqID = links[0]
		}
		return reqID != ""
	}, 30*time.Second, 500*time.Millisecond, "the request reaches the audit trail")
	a.check("admin-audit")
	a.submit(`table a[href^="/admin/audit/records/"]`, "#audit-content")
	assert.Equal(t, "Request "+reqID, a.text("h1"))
	assert.Contains(t, a.text("#audit-content + dl"), "console "+probe+" <b>bold?</b>", "content shown as text")
	assert.Contains(t, a.text("main"), "sim-chat")
	assert.Contains(t, a.text("main"), "Time to first token")
	a.check("admin-audit-record")
	var views struct {
		Actions []struct {
			Actor    string `json:"actor"`
			Action   string `json:"action"`
			EntityID string `json:"entity_id"`
		} `json:"actions"`
	}
	adminGet(t, c, "/api/admin/audit/admin-actions?action=audit.read_content&entity_id="+url.QueryEscape(reqID), &views)
	require.NotEmpty(t, views.Actions, "the control plane recorded the view")
	assert.Equal(t, "ada", views.Actions[0].Actor)

	csv := eval[string](a, fmt.Sprintf(`fetch("/admin/audit/export?format=csv&text=%s").then(async r => r.status + "|" +
		r.headers.get("content-type") + "|" + r.headers.get("content-disposition") + "|" + await r.text())`, probe), chromedp.EvalAwaitPromise)
	parts := strings.SplitN(csv, "|", 4)
	require.Len(t, parts, 4, csv)
	assert.Equal(t, "200", parts[0])
	assert.Equal(t, "text/csv; charset=utf-8", parts[1])
	assert.Regexp(t, `^attachment; filename="mindrouter-audit-\d{8}-\d{6}\.csv"$`, parts[2])
	assert.True(t, strings.HasPrefix(parts[3], "request_id,"), parts[3])
	assert.Contains(t, parts[3], reqID)
	jsonl := eval[string](a, fmt.Sprintf(`fetch("/admin/audit/export?format=jsonl&content=1&text=%s").then(r => r.text())`, probe), chromedp.EvalAwaitPromise)
	assert.Contains(t, jsonl, probe, "the export with content carries the prompt")
	adminGet(t, c, "/api/admin/audit/admin-actions?action=audit.export_content", &views)
	assert.NotEmpty(t, views.Actions, "the export with content was recorded")

	a.open("/admin/audit/actions")
	assert.Contains(t, a.text("table"), "audit.read_content")
	a.check("admin-audit-actions")

	// An auditor sees every page, the items' pages included, without an
	// enabled change control.
	var maria apiUser
	users.Users = nil
	adminGet(t, c, "/api/admin/users?search=maria", &users)
	require.Len(t, users.Users, 1)
	maria = users.Users[0]
	student, _ := groupByName(t, c, "student")
	consolePages := append(append([]string{}, adminPages...), "/admin/audit", "/admin/audit/actions", "/admin/users/"+maria.ID,
		"/admin/groups/"+student.ID, "/admin/audit/records/"+url.PathEscape(reqID), "/admin/audit?text="+probe)
	au := newPage(t, c.DataPlaneURL)
	au.signIn("audrey", pw, "/admin")
	for _, path := range consolePages {
		au.open(path)
		controls := eval[int](au, `document.querySelectorAll("main form[method=post] button:not([disabled]), main form[method=post] input[type=submit]:not([disabled]), main form:not([method=get]) button").length`)
		assert.Zero(t, controls, "an auditor finds no enabled change control on %s", path)
		assert.Contains(t, au.text("main"), "Read-only", path)
	}
	au.open("/admin/audit/records/" + url.PathEscape(reqID))
	au.check("auditor-audit-record")

	// A student gets 403 on every console URL.
	st := newPage(t, c.DataPlaneURL)
	st.signIn("sam", pw, "/dashboard")
	for _, path := range append(consolePages, "/admin/audit/export?format=csv") {
		assert.Equal(t, http.StatusForbidden, st.status(path), "a student on %s", path)
	}
	st.open("/admin/audit")
	assert.Contains(t, st.text("main"), "for administrators and auditors")
}
