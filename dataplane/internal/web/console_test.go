package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// consoleState is what the fake control plane keeps for the console's
// management and audit calls.
type consoleState struct {
	userChanges  map[int64]cpclient.UserChange
	deleted      []int64
	savedGroups  []cpclient.Group
	views        []string
	exports      []cpclient.AuditQuery
	lastAudit    cpclient.AuditQuery
	skDecisions  []bool
	nodesCreated []string
}

func (f *fakeCP) GetUser(_ context.Context, c cpclient.Caller, id int64) (cpclient.User, error) {
	if err := f.admin(c, false); err != nil {
		return cpclient.User{}, err
	}
	if id < 1 || id > int64(max(f.users, 3)) {
		return cpclient.User{}, &cpclient.WebError{Status: 404, Message: "user not found"}
	}
	rpm := 10
	return cpclient.User{ID: id, Username: fmt.Sprintf("user%05d", id-1), FullName: "<i>Mallory</i>", Group: "student", GroupID: 5,
		Active: true, RPMLimit: &rpm}, nil
}
func (f *fakeCP) UpdateUser(_ context.Context, c cpclient.Caller, id int64, ch cpclient.UserChange) error {
	if err := f.admin(c, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.console.userChanges == nil {
		f.console.userChanges = map[int64]cpclient.UserChange{}
	}
	f.console.userChanges[id] = ch
	return nil
}
func (f *fakeCP) DeleteUser(_ context.Context, c cpclient.Caller, id int64) error {
	if err := f.admin(c, true); err != nil {
		return err
	}
	me, _ := f.me(c, true)
	if me.UserID == id {
		return &cpclient.WebError{Status: 400, Message: "an admin cannot delete their own account"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.console.deleted = append(f.console.deleted, id)
	return nil
}
func (f *fakeCP) SaveGroup(_ context.Context, c cpclient.Caller, id int64, g cpclient.Group) (int64, error) {
	if err := f.admin(c, true); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g.ID = id
	f.console.savedGroups = append(f.console.savedGroups, g)
	return 9, nil
}
func (f *fakeCP) DeleteGroup(_ context.Context, c cpclient.Caller, id int64) error {
	if err := f.admin(c, true); err != nil {
		return err
	}
	if id == 5 {
		return &cpclient.WebError{Status: 409, Message: "delete group 5: 3 users are members; move them to another group first"}
	}
	return nil
}
func (f *fakeCP) RegisterNode(_ context.Context, c cpclient.Caller, name, _, _ string) error {
	if err := f.admin(c, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.console.nodesCreated = append(f.console.nodesCreated, name)
	return nil
}
func (f *fakeCP) DeleteNode(_ context.Context, c cpclient.Caller, _ int64) error {
	return f.admin(c, true)
}
func (f *fakeCP) ServiceKeyRequests(_ context.Context, c cpclient.Caller, _ string) ([]cpclient.ServiceKeyRequest, error) {
	return []cpclient.ServiceKeyRequest{{ID: 4, Username: "maria", ServiceName: "grader-bot", Justification: "autograder <b>CI</b>", Status: "pending"}},
		f.admin(c, false)
}
func (f *fakeCP) ReviewServiceKeyRequest(_ context.Context, c cpclient.Caller, _ int64, approve bool, _ string) error {
	if err := f.admin(c, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.console.skDecisions = append(f.console.skDecisions, approve)
	return nil
}

var fakeRecord = cpclient.AuditRecord{RequestID: "req-1", Username: "maria", Model: "llama3", Surface: "openai", Endpoint: "/v1/chat/completions",
	Status: "completed", StatusCode: 200, PromptText: "<script>alert(1)</script>", ResponseText: "hello <b>there</b>", PromptTokens: 5, CompletionTokens: 2}

func (f *fakeCP) AuditRecords(_ context.Context, c cpclient.Caller, q cpclient.AuditQuery, _ string, _ int) ([]cpclient.AuditRecord, string, error) {
	if err := f.admin(c, false); err != nil {
		return nil, "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.console.lastAudit = q
	r := fakeRecord
	r.PromptText, r.ResponseText = "", ""
	return []cpclient.AuditRecord{r}, "cursor-2", nil
}
func (f *fakeCP) AuditRecord(_ context.Context, c cpclient.Caller, id string) (cpclient.AuditRecord, []cpclient.AuditArtifact, error) {
	if err := f.admin(c, false); err != nil {
		return cpclient.AuditRecord{}, nil, err
	}
	if id != "req-1" {
		return cpclient.AuditRecord{}, nil, &cpclient.WebError{Status: 404, Message: "audit record not found"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.console.views = append(f.console.views, id)
	return fakeRecord, []cpclient.AuditArtifact{{SHA256: "ab12", ContentType: "image/png", SizeBytes: 10}}, nil
}
func (f *fakeCP) AdminActions(_ context.Context, c cpclient.Caller, _ cpclient.AdminActionQuery, _ string, _ int) ([]cpclient.AdminAction, string, error) {
	return []cpclient.AdminAction{{ID: 1, Actor: "ada", Action: "audit.read_content", EntityType: "audit_record", EntityID: "req-1",
		AfterJSON: strings.Repeat("é", 400)}}, "", f.admin(c, false)
}
func (f *fakeCP) ExportAudit(_ context.Context, c cpclient.Caller, q cpclient.AuditQuery, format string, _ bool, start func(string), w io.Writer) error {
	if err := f.admin(c, false); err != nil {
		return err
	}
	f.mu.Lock()
	f.console.exports = append(f.console.exports, q)
	f.mu.Unlock()
	start(map[string]string{"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}[format])
	_, err := io.WriteString(w, "request_id\nreq-1\n")
	return err
}

// consoleURLs are every console page, the items' pages included.
var consoleURLs = []string{"/admin/users/1", "/admin/groups/5", "/admin/audit/records/req-1", "/admin/audit/actions", "/admin/audit?user=maria"}

// TestConsoleIsForStaffOnly: a student gets 403 on every console page, the
// new ones included; an auditor gets each with no change control.
func TestConsoleIsForStaffOnly(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t)
	all := append([]string{"/admin/audit/export?format=csv"}, consoleURLs...)
	for _, s := range adminSections {
		all = append(all, s.URL)
	}
	for _, path := range all {
		assert.Equal(t, http.StatusForbidden, get(h, path, "s-user").Code, path)
	}
	for _, path := range consoleURLs {
		w := get(h, path, "s-auditor")
		require.Equal(t, http.StatusOK, w.Code, path)
		main := w.Body.String()[strings.Index(w.Body.String(), "<main"):]
		assert.NotContains(t, main, `method="post"`, "no change control on %s", path)
	}
	for _, path := range []string{"/admin/users/1/delete", "/admin/groups/6/delete", "/admin/groups", "/admin/nodes", "/admin/service-key-requests/4/approve"} {
		assert.Equal(t, http.StatusForbidden, post(h, path, "s-auditor", url.Values{"csrf_token": {"c-auditor"}}, nil).Code, path)
		assert.Equal(t, http.StatusForbidden, post(h, path, "s-admin", url.Values{}, nil).Code, "no CSRF token: %s", path)
	}
}

// TestConsoleEditsAndDeletesUsers: the user's page edits the group and
// limits (blank goes back to the group's), refuses bad numbers, and offers no
// delete for the admin's own account (the control plane refuses it anyway).
func TestConsoleEditsAndDeletesUsers(t *testing.T) {
	t.Parallel()
	h, cp := newTestHandler(t)
	cp.users = 120
	body := get(h, "/admin/users?q=user00011", "s-admin").Body.String()
	assert.Contains(t, body, `href="/admin/users/12"`)
	assert.Contains(t, body, "Users 1 to 1 of 1.")
	body = get(h, "/admin/users?page=2", "s-admin").Body.String()
	assert.Contains(t, body, "Users 51 to 100 of 120.")
	assert.Contains(t, body, `href="/admin/users?page=3"`)
	assert.Contains(t, body, `href="/admin/users?page=1"`)

	body = get(h, "/admin/users/1", "s-admin").Body.String()
	assert.Contains(t, body, `action="/admin/users/1"`)
	assert.Contains(t, body, `action="/admin/users/1/delete"`)
	assert.Contains(t, body, "&lt;i&gt;Mallory&lt;/i&gt;", "names are text")
	assert.NotContains(t, get(h, "/admin/users/2", "s-admin").Body.String(), `action="/admin/users/2/delete"`, "no delete for oneself")

	form := url.Values{"csrf_token": {"c-admin"}, "group_id": {"6"}, "full_name": {"Ann"}, "token_budget": {""}, "rpm_limit": {"0"}, "weight_override": {"3"}}
	w := post(h, "/admin/users/1", "s-admin", form, nil)
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	assert.Equal(t, "/admin/users/1?done=user-updated", w.Header().Get("Location"))
	ch := cp.console.userChanges[1]
	assert.Equal(t, int64(6), ch.GroupID)
	assert.Nil(t, ch.TokenBudget, "blank: the group's budget")
	require.NotNil(t, ch.RPMLimit)
	assert.Equal(t, 0, *ch.RPMLimit, "0: unlimited")
	require.NotNil(t, ch.WeightOverride)
	assert.Equal(t, 3, *ch.WeightOverride)
	form.Set("rpm_limit", "-1")
	w = post(h, "/admin/users/1", "s-admin", form, nil)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Contains(t, w.Body.String(), "Requests per minute must be a whole number")

	w = post(h, "/admin/users/1/delete", "s-admin", url.Values{"csrf_token": {"c-admin"}}, nil)
	require.Equal(t, http.StatusSeeOther, w.Code)
	assert.Equal(t, "/admin/users?done=user-deleted", w.Header().Get("Location"))
	assert.Equal(t, []int64{1}, cp.console.deleted)
	w = post(h, "/admin/users/2/delete", "s-admin", url.Values{"csrf_token": {"c-admin"}}, nil)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Contains(t, w.Body.String(), "cannot delete their own account")
}

// TestConsoleManagesGroups: create with every setting, edit, and a delete
// refused while members remain shown as a 409 on the group's own page.
func TestConsoleManagesGroups(t *testing.T) {
	t.Parallel()
	h, cp := newTestHandler(t)
	body := get(h, "/admin/groups", "s-admin").Body.String()
	assert.Contains(t, body, `action="/admin/groups"`)
	assert.Contains(t, body, `href="/admin/groups/5"`)
	form := url.Values{"csrf_token": {"c-admin"}, "name": {"lab"}, "token_budget": {"5000"}, "rpm_limit": {"12"}, "scheduler_weight": {"2"},
		"api_key_expiry_days": {"0"}, "max_api_keys": {"3"}, "is_auditor": {"1"}}
	w := post(h, "/admin/groups", "s-admin", form, nil)
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	require.Len(t, cp.console.savedGroups, 1)
	g := cp.console.savedGroups[0]
	assert.Equal(t, cpclient.Group{Name: "lab", TokenBudget: 5000, RPMLimit: 12, Weight: 2, MaxKeys: 3, IsAuditor: true}, g)
	form.Set("scheduler_weight", "0")
	w = post(h, "/admin/groups", "s-admin", form, nil)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Contains(t, w.Body.String(), "The scheduler weight must be a whole number from 1")

	form.Set("scheduler_weight", "4")
	form.Set("audit_prompts", "1")
	w = post(h, "/admin/groups/6", "s-admin", form, nil)
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	assert.Equal(t, "/admin/groups/6?done=group-updated", w.Header().Get("Location"))
	assert.Equal(t, int64(6), cp.console.savedGroups[1].ID)
	assert.True(t, cp.console.savedGroups[1].AuditPrompts)

	w = post(h, "/admin/groups/5/delete", "s-admin", url.Values{"csrf_token": {"c-admin"}}, nil)
	assert.Equal(t, http.StatusConflict, w.Code)
	assert.Contains(t, w.Body.String(), "The group was not deleted: delete group 5: 3 users are members; move them to another group first")
	assert.Contains(t, w.Body.String(), "<h1>Group student</h1>", "shown on the group's page")
	w = post(h, "/admin/groups/6/delete", "s-admin", url.Values{"csrf_token": {"c-admin"}}, nil)
	assert.Equal(t, "/admin/groups?done=group-deleted", w.Header().Get("Location"))
	assert.Equal(t, http.StatusNotFound, get(h, "/admin/groups/77", "s-admin").Code)
}

// TestConsoleAuditPages: the search passes its filters (days in UTC, the end
// day included), the detail shows content as text and is fetched through the
// recorded read, and the export streams a download only for this origin.
func TestConsoleAuditPages(t *testing.T) {
	t.Parallel()
	h, cp := newTestHandler(t)
	w := get(h, "/admin/audit?user=maria&model=llama3&status=completed&text=hello&from=2026-01-02&to=2026-01-03", "s-admin")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	q := cp.console.lastAudit
	assert.Equal(t, "maria", q.Username)
	assert.Equal(t, "hello", q.Text)
	assert.Equal(t, "2026-01-02T00:00:00Z", q.Start.Format("2006-01-02T15:04:05Z07:00"))
	assert.Equal(t, "2026-01-04T00:00:00Z", q.End.Format("2006-01-02T15:04:05Z07:00"))
	body := w.Body.String()
	assert.Contains(t, body, `href="/admin/audit/records/req-1"`)
	assert.Contains(t, body, "cursor=cursor-2", "the next page")
	assert.Contains(t, body, `href="/admin/audit/export?format=csv&amp;from=2026-01-02`)
	assert.Equal(t, http.StatusBadRequest, get(h, "/admin/audit?from=yesterday", "s-admin").Code)

	body = get(h, "/admin/audit/records/req-1", "s-auditor").Body.String()
	assert.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.NotContains(t, body, "<script>alert(1)")
	assert.Contains(t, body, "hello &lt;b&gt;there&lt;/b&gt;")
	assert.Equal(t, []string{"req-1"}, cp.console.views, "read through the recorded call")
	assert.Equal(t, http.StatusNotFound, get(h, "/admin/audit/records/nope", "s-admin").Code)

	body = get(h, "/admin/audit/actions", "s-admin").Body.String()
	assert.Contains(t, body, "audit.read_content")
	assert.Contains(t, body, strings.Repeat("é", 150)+"…", "long JSON clipped on a character boundary")

	w = get(h, "/admin/audit/export?format=csv&user=maria", "s-auditor")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "text/csv; charset=utf-8", w.Header().Get("Content-Type"))
	assert.Regexp(t, `^attachment; filename="mindrouter-audit-\d{8}-\d{6}\.csv"$`, w.Header().Get("Content-Disposition"))
	assert.Equal(t, "request_id\nreq-1\n", w.Body.String())
	assert.Equal(t, "maria", cp.console.exports[0].Username)
	r := httptest.NewRequest("GET", "/admin/audit/export?format=jsonl", nil)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.AddCookie(&http.Cookie{Name: "mindrouter_session", Value: "s-admin"})
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, r)
	assert.Equal(t, http.StatusForbidden, rw.Code, "a cross-site export is refused")
}

// TestConsoleReviewsServiceKeysAndNodes: the requests page lists service-key
// requests with their text escaped and the review buttons; nodes register.
func TestConsoleReviewsServiceKeysAndNodes(t *testing.T) {
	t.Parallel()
	h, cp := newTestHandler(t)
	body := get(h, "/admin/requests", "s-admin").Body.String()
	assert.Contains(t, body, "autograder &lt;b&gt;CI&lt;/b&gt;")
	assert.Contains(t, body, `action="/admin/service-key-requests/4/approve"`)
	w := post(h, "/admin/service-key-requests/4/deny", "s-admin", url.Values{"csrf_token": {"c-admin"}}, nil)
	assert.Equal(t, "/admin/requests?done=sk-denied", w.Header().Get("Location"))
	assert.Equal(t, []bool{false}, cp.console.skDecisions)
	assert.Contains(t, get(h, "/admin/requests?done=sk-denied", "s-admin").Body.String(), "The service-key request was denied.")

	w = post(h, "/admin/nodes", "s-admin", url.Values{"csrf_token": {"c-admin"}, "name": {"gpu9"}, "agent_secret": {"s3cret-s3cret-s3cret"}}, nil)
	assert.Equal(t, "/admin/nodes?done=node-registered", w.Header().Get("Location"))
	assert.Equal(t, []string{"gpu9"}, cp.console.nodesCreated)
}

// FuzzConsoleForms: whatever a browser sends, the console's form and query
// readers answer a value within bounds or a 400, never a panic.
func FuzzConsoleForms(f *testing.F) {
	f.Add("token_budget=5000&rpm_limit=12&scheduler_weight=2&api_key_expiry_days=0&max_api_keys=3&is_admin=1")
	f.Add("token_budget=-1&rpm_limit=99999999999&scheduler_weight=0")
	f.Add("from=2026-01-02&to=2026-13-40&user=%3Cb%3E&text=a+b")
	f.Add("rpm_limit=%20%207%20&weight_override=&token_budget=9223372036854775807")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r := httptest.NewRequest("POST", "/admin/groups", nil)
		r.PostForm = q
		if g, err := groupFromForm(r); err == nil {
			assert.GreaterOrEqual(t, g.TokenBudget, int64(0))
			assert.GreaterOrEqual(t, g.Weight, 1)
			assert.GreaterOrEqual(t, min(g.RPMLimit, g.KeyExpiryDays, g.MaxKeys), 0)
		} else {
			assert.Equal(t, http.StatusBadRequest, cpclient.HTTPStatus(err))
		}
		for _, name := range []string{"rpm_limit", "weight_override", "token_budget"} {
			n, err := optionalInt(q, name, name)
			if err != nil {
				assert.Equal(t, http.StatusBadRequest, cpclient.HTTPStatus(err))
				continue
			}
			if n != nil {
				assert.GreaterOrEqual(t, *n, int64(0))
				if s, err := small(n, name); err == nil {
					assert.Equal(t, *n, int64(*s))
				}
			}
		}
		if aq, err := auditQuery(q); err == nil && !aq.Start.IsZero() && !aq.End.IsZero() {
			assert.Equal(t, time.UTC, aq.Start.Location())
		} else if err != nil {
			assert.Equal(t, http.StatusBadRequest, cpclient.HTTPStatus(err))
		}
	})
}
