package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// Console is what the console's management and audit pages need from the
// control plane besides Admin: users' and groups' edits, node registration,
// service-key reviews and the audit trail.
type Console interface {
	GetUser(ctx context.Context, c cpclient.Caller, id int64) (cpclient.User, error)
	UpdateUser(ctx context.Context, c cpclient.Caller, id int64, ch cpclient.UserChange) error
	DeleteUser(ctx context.Context, c cpclient.Caller, id int64) error
	SaveGroup(ctx context.Context, c cpclient.Caller, id int64, g cpclient.Group) (int64, error)
	DeleteGroup(ctx context.Context, c cpclient.Caller, id int64) error
	RegisterNode(ctx context.Context, c cpclient.Caller, name, hostname, secret string) error
	DeleteNode(ctx context.Context, c cpclient.Caller, id int64) error
	ServiceKeyRequests(ctx context.Context, c cpclient.Caller, status string) ([]cpclient.ServiceKeyRequest, error)
	ReviewServiceKeyRequest(ctx context.Context, c cpclient.Caller, id int64, approve bool, notes string) error
	AuditRecords(ctx context.Context, c cpclient.Caller, q cpclient.AuditQuery, cursor string, limit int) ([]cpclient.AuditRecord, string, error)
	AuditRecord(ctx context.Context, c cpclient.Caller, requestID string) (cpclient.AuditRecord, []cpclient.AuditArtifact, error)
	AdminActions(ctx context.Context, c cpclient.Caller, q cpclient.AdminActionQuery, cursor string, limit int) ([]cpclient.AdminAction, string, error)
	ExportAudit(ctx context.Context, c cpclient.Caller, q cpclient.AuditQuery, format string, content bool, start func(contentType string), w io.Writer) error
}

// consolePage builds one console page for a staff member's request.
type consolePage func(r *http.Request, c cpclient.Caller, me *cpclient.Me) (tablePage, error)

// form is a form of table.html: a GET search or a POST change (POST forms
// carry the CSRF token and are rendered for admins only).
type form struct {
	ID, Title, Action, Submit string
	// Method is "get" for a search; empty means post.
	Method string
	// Class is the submit button's class; Confirm asks before posting.
	Class, Confirm, Note string
	Fields               []field
}

type field struct {
	Name, Label, Value, Placeholder, Help string
	// Type is an input type, "select", "textarea" or "checkbox"; empty means text.
	Type, Min, Autocomplete string
	MaxLength, MinLength    int
	Required, Checked       bool
	Options                 []option
}

type option struct {
	Value, Label string
	Selected     bool
}

// detailList is a definition list of one item's fields; Pre values keep
// their line breaks (JSON, prompts, answers).
type detailList struct {
	ID, Title string
	Items     []detail
}

type detail struct {
	Key, Value string
	Pre        bool
}

// pager links the pages of a list; PrevLabel defaults to "Previous page".
type pager struct {
	Summary, Prev, PrevLabel, Next string
}

// consoleNotices are the console's fixed notices after a change (?done=...).
var consoleNotices = map[string]string{
	"user-updated": "The user was updated.", "user-deleted": "The user was deleted with their keys and sessions.",
	"group-created": "The group was created.", "group-updated": "The group was updated.", "group-deleted": "The group was deleted.",
	"node-registered": "The node was registered.", "node-deleted": "The node was deleted.", "remove": "The backend was removed.",
	"system-offline": "The service is offline: every inference request is refused with the message until it is brought back online.",
	"system-online":  "The service is back online.",
	"override-set":   "The model's override was saved; it applies at once.", "override-cleared": "The model's override was cleared.",
	"alias-saved": "The alias was saved; it applies at once.", "alias-deleted": "The alias was deleted.",
	"sk-approved": "The service-key request was approved; the requester can collect the key.", "sk-denied": "The service-key request was denied.",
}

func noticeFor(done string) string {
	if n, ok := notices[done]; ok {
		return n
	}
	return consoleNotices[done]
}

func (h *Handler) routeConsole() {
	h.mux.HandleFunc("GET /admin/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		h.showConsolePage(w, r, "User", "/admin/users", h.userPage)
	})
	h.mux.HandleFunc("POST /admin/users/{id}", h.updateUser)
	h.mux.HandleFunc("GET /admin/groups/{id}", func(w http.ResponseWriter, r *http.Request) {
		h.showConsolePage(w, r, "Group", "/admin/groups", h.groupPage)
	})
	h.mux.HandleFunc("POST /admin/groups", h.createGroup)
	h.mux.HandleFunc("POST /admin/groups/{id}", h.updateGroup)
	h.mux.HandleFunc("POST /admin/groups/{id}/delete", h.deleteGroup)
	h.mux.HandleFunc("POST /admin/nodes", h.registerNode)
	h.mux.HandleFunc("POST /admin/nodes/{id}/delete", h.deleteNode)
	h.mux.HandleFunc("POST /admin/service-key-requests/{id}/{decision}", h.reviewServiceKey)
	h.mux.HandleFunc("GET /admin/audit/records/{id}", func(w http.ResponseWriter, r *http.Request) {
		h.showConsolePage(w, r, "Audit record", "/admin/audit", h.auditRecordPage)
	})
	h.mux.HandleFunc("GET /admin/audit/export", h.auditExport)
}

// showConsolePage renders a console page for staff (admins and auditors).
func (h *Handler) showConsolePage(w http.ResponseWriter, r *http.Request, title, nav string, build consolePage) {
	c, me, ok := h.staff(w, r)
	if !ok {
		return
	}
	h.renderConsolePage(w, r, c, me, http.StatusOK, title, nav, "", build)
}

func (h *Handler) renderConsolePage(w http.ResponseWriter, r *http.Request, c cpclient.Caller, me *cpclient.Me, code int, title, nav, errMsg string, build consolePage) {
	d, err := build(r, c, me)
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	if d.Title != "" {
		title = d.Title
	}
	h.render(w, r, code, "table", page{Title: title, Nav: "admin", Me: me, Data: d, Error: errMsg,
		AdminNav: adminNav(nav), Notice: noticeFor(r.URL.Query().Get("done"))})
}

// badRequest is a form's refusal before the control plane is asked.
func badRequest(format string, a ...any) error {
	return &cpclient.WebError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, a...)}
}

// optionalInt reads a whole number of at least 0 from a form field; blank is nil.
func optionalInt(f url.Values, name, label string) (*int64, error) {
	v := strings.TrimSpace(f.Get(name))
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, badRequest("%s must be a whole number, 0 or more", label)
	}
	return &n, nil
}

// requiredInt reads a whole number between lo and hi from a form field.
func requiredInt(f url.Values, name, label string, lo, hi int64) (int64, error) {
	n, err := optionalInt(f, name, label)
	if err != nil {
		return 0, err
	}
	if n == nil || *n < lo || *n > hi {
		return 0, badRequest("%s must be a whole number from %d to %d", label, lo, hi)
	}
	return *n, nil
}

// pageLink is path with q's values and one changed.
func pageLink(path string, q url.Values, key, value string) string {
	out := url.Values{}
	for k, v := range q {
		if k != "done" && len(v) > 0 && v[0] != "" {
			out.Set(k, v[0])
		}
	}
	out.Set(key, value)
	return path + "?" + out.Encode()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (h *Handler) registerNode(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/nodes", func(c cpclient.Caller) (string, error) {
		f := r.PostForm
		return "node-registered", h.cp.RegisterNode(r.Context(), c, strings.TrimSpace(f.Get("name")), strings.TrimSpace(f.Get("hostname")), f.Get("agent_secret"))
	})
}

func (h *Handler) deleteNode(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/nodes", func(c cpclient.Caller) (string, error) {
		id, err := pathID(r)
		if err != nil {
			return "", err
		}
		return "node-deleted", h.cp.DeleteNode(r.Context(), c, id)
	})
}

// serviceKeyTable lists service-key requests for review.
func (h *Handler) serviceKeyTable(r *http.Request, c cpclient.Caller) (table, error) {
	rs, err := h.cp.ServiceKeyRequests(r.Context(), c, "all")
	if err != nil {
		return table{}, err
	}
	t := table{ID: "service-key-requests", Caption: "Service-key requests", HasActions: true,
		Columns: []string{"User", "Service", "Why", "Status", "Filed", "Reviewed", "Collected", "Note"}}
	for _, q := range rs {
		rw := row{Cells: []cell{txt(q.Username), txt(q.ServiceName), txt(q.Justification), badge(q.Status), when(q.CreatedAt),
			when(q.ReviewedAt), when(q.CollectedAt), txt(q.ReviewNotes)}}
		if q.Status == "pending" {
			base := fmt.Sprintf("/admin/service-key-requests/%d/", q.ID)
			rw.Actions = []action{{URL: base + "approve", Label: "Approve", Target: q.Username + " " + q.ServiceName},
				{URL: base + "deny", Label: "Deny", Class: "danger", Target: q.Username + " " + q.ServiceName}}
		}
		t.Rows = append(t.Rows, rw)
	}
	return t, nil
}

func (h *Handler) reviewServiceKey(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/requests", func(c cpclient.Caller) (string, error) {
		id, err := pathID(r)
		if err != nil {
			return "", err
		}
		switch d := r.PathValue("decision"); d {
		case "approve", "deny":
			done := map[string]string{"approve": "sk-approved", "deny": "sk-denied"}[d]
			return done, h.cp.ReviewServiceKeyRequest(r.Context(), c, id, d == "approve", r.PostForm.Get("notes"))
		}
		return "", &cpclient.WebError{Status: http.StatusNotFound, Message: "unknown decision"}
	})
}
