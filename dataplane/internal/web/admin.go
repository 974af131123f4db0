package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// Admin is what the admin console needs from the control plane. Every call
// carries the browser's session: the control plane decides (admin: read and
// write; auditor: read only), and the pages only leave out controls an
// auditor could not use.
type Admin interface {
	Backends(ctx context.Context, c cpclient.Caller) ([]cpclient.Backend, error)
	ChangeBackend(ctx context.Context, c cpclient.Caller, id int64, a cpclient.BackendAction) error
	RegisterBackend(ctx context.Context, c cpclient.Caller, name, url, engine string, maxConcurrent int) error
	Nodes(ctx context.Context, c cpclient.Caller) ([]cpclient.Node, error)
	Models(ctx context.Context, c cpclient.Caller) ([]cpclient.Model, error)
	GPUs(ctx context.Context, c cpclient.Caller) ([]cpclient.GPU, error)
	Users(ctx context.Context, c cpclient.Caller, q cpclient.UserQuery) (cpclient.UserList, error)
	Groups(ctx context.Context, c cpclient.Caller) ([]cpclient.Group, error)
	CreateUser(ctx context.Context, c cpclient.Caller, username, email, fullName, password string, groupID int64) error
	SetUserActive(ctx context.Context, c cpclient.Caller, id int64, active bool) error
	AllKeys(ctx context.Context, c cpclient.Caller, status string) ([]cpclient.APIKey, error)
	RevokeKey(ctx context.Context, c cpclient.Caller, id int64) error
	QuotaRequests(ctx context.Context, c cpclient.Caller, status string) ([]cpclient.QuotaRequest, error)
	ReviewQuotaRequest(ctx context.Context, c cpclient.Caller, id int64, approve bool, notes string) error
	Queue(ctx context.Context, c cpclient.Caller) (cpclient.Queue, error)
	Decisions(ctx context.Context, c cpclient.Caller, limit int) ([]cpclient.Decision, error)
}

var adminSections = []navItem{
	{URL: "/admin", Label: "Overview"}, {URL: "/admin/backends", Label: "Backends"}, {URL: "/admin/nodes", Label: "Nodes"},
	{URL: "/admin/models", Label: "Models"}, {URL: "/admin/users", Label: "Users"}, {URL: "/admin/groups", Label: "Groups"},
	{URL: "/admin/keys", Label: "API keys"}, {URL: "/admin/requests", Label: "Requests"},
	{URL: "/admin/queue", Label: "Queue"}, {URL: "/admin/gpus", Label: "GPUs"},
	{URL: "/admin/telemetry", Label: "Telemetry"}, {URL: "/admin/energy", Label: "Energy"},
	{URL: "/admin/audit", Label: "Audit trail"}, {URL: "/admin/audit/actions", Label: "Admin actions"},
}

func adminNav(current string) []navItem {
	out := make([]navItem, len(adminSections))
	for i, s := range adminSections {
		s.Current = s.URL == current
		out[i] = s
	}
	return out
}

// tablePage is the data of table.html: search forms, details, tables of
// cells with per-row actions, a pager and the forms that change things
// (rendered for admins only).
type tablePage struct {
	// Title replaces the page's title (an item's page names the item).
	Title   string
	Links   []navItem
	Search  []form
	Details []detailList
	Tables  []table
	Pager   *pager
	Forms   []form
}

type table struct {
	ID, Caption string
	Columns     []string
	Rows        []row
	HasActions  bool
}

type row struct {
	Cells   []cell
	Actions []action
}

type cell struct {
	Text  string
	Badge string
	Link  string
	Num   bool
}

type action struct {
	URL, Label, Class, Confirm, Target string
	Fields                             map[string]string
}

func txt(s string) cell           { return cell{Text: s} }
func num[T int | int64](n T) cell { return cell{Text: fmt.Sprint(n), Num: true} }
func badge(s string) cell         { return cell{Text: s, Badge: s} }
func when(t time.Time) cell {
	if t.IsZero() {
		return txt("never")
	}
	return txt(t.UTC().Format("2006-01-02 15:04:05 UTC"))
}

func (h *Handler) routeAdmin() {
	h.mux.HandleFunc("GET /admin", h.adminOverview)
	pages := map[string]consolePage{
		"backends": h.backendsPage, "nodes": h.nodesPage, "models": h.modelsPage, "users": h.usersPage,
		"groups": h.groupsPage, "keys": h.keysPage, "requests": h.requestsPage, "queue": h.queuePage, "gpus": h.gpusPage,
		"audit": h.auditPage, "audit/actions": h.actionsPage,
	}
	titles := map[string]string{"backends": "Backends", "nodes": "Nodes", "models": "Models", "users": "Users", "groups": "Groups",
		"keys": "API keys", "requests": "Quota and service-key requests", "queue": "Queue and scheduler decisions", "gpus": "GPU telemetry",
		"audit": "Audit trail", "audit/actions": "Admin actions"}
	for name, build := range pages {
		h.mux.HandleFunc("GET /admin/"+name, func(w http.ResponseWriter, r *http.Request) {
			h.showConsolePage(w, r, titles[name], "/admin/"+name, build)
		})
	}
	h.routeConsole()
	h.routeSystem()
	h.routeModels()
	h.routeTelemetry()
	h.mux.HandleFunc("POST /admin/backends", h.registerBackend)
	h.mux.HandleFunc("POST /admin/backends/{id}/{action}", h.backendAction)
	h.mux.HandleFunc("POST /admin/keys/{id}/revoke", h.adminRevokeKey)
	h.mux.HandleFunc("POST /admin/users", h.createUser)
	h.mux.HandleFunc("POST /admin/users/{id}/{change}", h.userActive)
	h.mux.HandleFunc("POST /admin/requests/{id}/{decision}", h.reviewRequest)
}

// staff resolves a session that may see the console: an admin's or an
// auditor's. Others get 403.
func (h *Handler) staff(w http.ResponseWriter, r *http.Request) (cpclient.Caller, *cpclient.Me, bool) {
	c, me, ok := h.signedIn(w, r)
	if !ok {
		return c, nil, false
	}
	if me.Role != "admin" && me.Role != "auditor" {
		h.fail(w, r, me, &cpclient.WebError{Status: http.StatusForbidden, Message: "The admin console is for administrators and auditors."})
		return c, nil, false
	}
	return c, me, true
}

type overviewData struct {
	S               cpclient.ClusterStatus
	System          cpclient.SystemStatus
	Problems        []string
	PendingRequests int
}

func (h *Handler) adminOverview(w http.ResponseWriter, r *http.Request) {
	c, me, ok := h.staff(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	s, err := h.cp.Status(ctx)
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	backends, err := h.cp.Backends(ctx, c)
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	nodes, err := h.cp.Nodes(ctx, c)
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	sys, err := h.cp.SystemStatus(ctx, c)
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	d := overviewData{S: s, System: sys}
	for _, b := range backends {
		if b.Status == "unhealthy" || b.Status == "unknown" {
			d.Problems = append(d.Problems, fmt.Sprintf("Backend %s is %s: %s", b.Name, b.Status, orDash(b.LastError)))
		}
	}
	for _, n := range nodes {
		if n.Status != "online" {
			d.Problems = append(d.Problems, fmt.Sprintf("Node %s is %s", n.Name, n.Status))
		}
	}
	if s.CircuitsOpen > 0 {
		d.Problems = append(d.Problems, fmt.Sprintf("%d backend circuit(s) open: requests to them are refused until a trial succeeds", s.CircuitsOpen))
	}
	if reqs, err := h.cp.QuotaRequests(ctx, c, "pending"); err == nil {
		d.PendingRequests = len(reqs)
	}
	h.render(w, r, http.StatusOK, "admin", page{Title: "Admin console", Nav: "admin", Me: me, Data: d, AdminNav: adminNav("/admin"), Notice: noticeFor(r.URL.Query().Get("done"))})
}

func orDash(s string) string {
	if s == "" {
		return "no error reported"
	}
	return s
}

func (h *Handler) backendsPage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	bs, err := h.cp.Backends(r.Context(), c)
	if err != nil {
		return tablePage{}, err
	}
	t := table{ID: "backends", Caption: "Backends", HasActions: true,
		Columns: []string{"Name", "Status", "Engine", "URL", "Node", "In flight", "Models", "Last check", "Last error"}}
	for _, b := range bs {
		rw := row{Cells: []cell{txt(b.Name), badge(b.Status), txt(b.Engine), txt(b.URL), txt(b.NodeName),
			txt(fmt.Sprintf("%d / %d", b.InFlight, b.MaxConcurrent)), txt(strings.Join(b.Models, ", ")), when(b.LastHealthCheck), txt(b.LastError)}}
		base := fmt.Sprintf("/admin/backends/%d/", b.ID)
		if b.Status == "disabled" || b.Status == "draining" {
			rw.Actions = append(rw.Actions, action{URL: base + "enable", Label: "Enable", Class: "secondary", Target: b.Name})
		}
		if b.Status != "draining" && b.Status != "disabled" {
			rw.Actions = append(rw.Actions, action{URL: base + "drain", Label: "Drain", Class: "secondary", Target: b.Name,
				Confirm: "Drain " + b.Name + "? It finishes what it runs and takes nothing new."})
		}
		if b.Status != "disabled" {
			rw.Actions = append(rw.Actions, action{URL: base + "disable", Label: "Disable", Class: "danger", Target: b.Name,
				Confirm: "Disable " + b.Name + "? It takes no requests until enabled."})
		}
		rw.Actions = append(rw.Actions, action{URL: base + "refresh", Label: "Refresh", Class: "secondary", Target: b.Name})
		if b.Status == "disabled" {
			rw.Actions = append(rw.Actions, action{URL: base + "remove", Label: "Remove", Class: "danger", Target: b.Name,
				Confirm: "Remove " + b.Name + " from the registry? It can be registered again later."})
		}
		t.Rows = append(t.Rows, rw)
	}
	register := form{ID: "register-backend", Title: "Register a backend", Action: "/admin/backends", Submit: "Register backend",
		Fields: []field{{Name: "name", Label: "Name", Required: true, MaxLength: 100},
			{Name: "url", Label: "URL", Type: "url", Required: true, Placeholder: "http://gpu1:11434"},
			{Name: "engine", Label: "Engine", Type: "select", Options: []option{{Value: "ollama", Label: "Ollama"}, {Value: "vllm", Label: "vLLM"}, {Value: "tts", Label: "Speech (TTS)"}, {Value: "stt", Label: "Transcription (STT)"}}},
			{Name: "max_concurrent", Label: "Concurrent requests", Type: "number", Min: "1", Value: "4"}}}
	return tablePage{Tables: []table{t}, Forms: []form{register}}, nil
}
func (h *Handler) nodesPage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	ns, err := h.cp.Nodes(r.Context(), c)
	if err != nil {
		return tablePage{}, err
	}
	t := table{ID: "nodes", Caption: "Nodes", HasActions: true, Columns: []string{"Name", "Status", "Hostname", "GPUs", "Agent", "Last seen"}}
	for _, n := range ns {
		t.Rows = append(t.Rows, row{Cells: []cell{txt(n.Name), badge(n.Status), txt(n.Hostname), num(n.GPUCount), txt(n.AgentVersion), when(n.LastSeen)},
			Actions: []action{{URL: fmt.Sprintf("/admin/nodes/%d/delete", n.ID), Label: "Delete", Class: "danger", Target: n.Name,
				Confirm: "Delete node " + n.Name + "? Its agent can no longer report; refused while backends name it."}}})
	}
	register := form{ID: "register-node", Title: "Register a node", Action: "/admin/nodes", Submit: "Register node",
		Note: "The node's agent presents this secret; the control plane keeps only its digest.",
		Fields: []field{{Name: "name", Label: "Name", Required: true, MaxLength: 100},
			{Name: "hostname", Label: "Hostname", MaxLength: 255},
			{Name: "agent_secret", Label: "Agent secret", Type: "password", Required: true, Autocomplete: "new-password"}}}
	return tablePage{Tables: []table{t}, Forms: []form{register}}, nil
}
func (h *Handler) keysPage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	ks, err := h.cp.AllKeys(r.Context(), c, "")
	if err != nil {
		return tablePage{}, err
	}
	t := table{ID: "keys", Caption: "API keys", HasActions: true,
		Columns: []string{"Name", "Owner", "Key", "Status", "Expires", "Last used", "Uses"}}
	for _, k := range ks {
		rw := row{Cells: []cell{txt(k.Name), txt(k.Username), txt(k.Prefix + "…"), badge(k.Status), when(k.ExpiresAt), when(k.LastUsedAt), num(k.UsageCount)}}
		if k.Status == "active" {
			rw.Actions = []action{{URL: fmt.Sprintf("/admin/keys/%d/revoke", k.ID), Label: "Revoke", Class: "danger", Target: k.Name,
				Confirm: "Revoke this key? Its owner's programs stop working at once."}}
		}
		t.Rows = append(t.Rows, rw)
	}
	return tablePage{Tables: []table{t}}, nil
}
func (h *Handler) requestsPage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	qs, err := h.cp.QuotaRequests(r.Context(), c, "all")
	if err != nil {
		return tablePage{}, err
	}
	t := table{ID: "requests", Caption: "Quota increase requests", HasActions: true,
		Columns: []string{"User", "Tokens asked", "Why", "Status", "Filed", "Note"}}
	for _, q := range qs {
		rw := row{Cells: []cell{txt(q.Username), num(q.RequestedTokens), txt(q.Justification), badge(q.Status), when(q.CreatedAt), txt(q.ReviewNotes)}}
		if q.Status == "pending" {
			base := fmt.Sprintf("/admin/requests/%d/", q.ID)
			rw.Actions = []action{{URL: base + "approve", Label: "Approve", Target: q.Username},
				{URL: base + "deny", Label: "Deny", Class: "danger", Target: q.Username}}
		}
		t.Rows = append(t.Rows, rw)
	}
	sk, err := h.serviceKeyTable(r, c)
	if err != nil {
		return tablePage{}, err
	}
	return tablePage{Tables: []table{t, sk}}, nil
}
func (h *Handler) queuePage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	ctx := r.Context()
	q, err := h.cp.Queue(ctx, c)
	if err != nil {
		return tablePage{}, err
	}
	ds, err := h.cp.Decisions(ctx, c, 50)
	if err != nil {
		return tablePage{}, err
	}
	models := table{ID: "queue-models", Caption: fmt.Sprintf("Per model (%d waiting, %d running)", q.TotalWaiting, q.TotalInFlight),
		Columns: []string{"Model", "Waiting", "Running", "Oldest wait"}}
	for _, m := range q.Models {
		models.Rows = append(models.Rows, row{Cells: []cell{txt(m.Model), num(m.Waiting), num(m.InFlight), txt(m.OldestWait.Round(time.Millisecond).String())}})
	}
	users := table{ID: "queue-users", Caption: "Per user (fair share)", Columns: []string{"User", "Weight", "Waiting", "Running", "Recent tokens", "Used / budget"}}
	for _, u := range q.Users {
		users.Rows = append(users.Rows, row{Cells: []cell{txt(u.Username), num(u.Weight), num(u.Waiting), num(u.InFlight), num(u.RecentTokens),
			txt(fmt.Sprintf("%d / %s", u.TokensUsed, budgetText(u.TokenBudget)))}})
	}
	dec := table{ID: "decisions", Caption: "Recent scheduler decisions (newest first)",
		Columns: []string{"Request", "When", "Model", "User", "Chose", "Queue position", "Waited", "Candidates and scores"}}
	for _, d := range ds {
		dec.Rows = append(dec.Rows, row{Cells: []cell{txt(d.RequestID), when(d.DecidedAt), txt(d.Model), txt(d.Username), txt(d.Backend),
			num(d.QueuePosition), txt(d.Waited.Round(time.Millisecond).String()), txt(d.Why)}})
	}
	return tablePage{Tables: []table{models, users, dec}}, nil
}

func (h *Handler) gpusPage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	ctx := r.Context()
	gs, err := h.cp.GPUs(ctx, c)
	if err != nil {
		return tablePage{}, err
	}
	t := table{ID: "gpus", Caption: "Latest GPU samples", Columns: []string{"Node", "GPU", "Utilisation", "Memory", "Temperature", "Power", "Sampled"}}
	for _, g := range gs {
		t.Rows = append(t.Rows, row{Cells: []cell{txt(g.Node), txt(fmt.Sprintf("%d: %s", g.Index, g.Name)), txt(fmt.Sprintf("%d%%", g.UtilPercent)),
			txt(fmt.Sprintf("%.1f / %.1f GiB", float64(g.MemoryUsedBytes)/(1<<30), float64(g.MemoryTotal)/(1<<30))),
			txt(fmt.Sprintf("%d °C", g.TemperatureC)), txt(fmt.Sprintf("%.0f W", g.PowerWatts)), when(g.SampledAt)}})
	}
	return tablePage{Tables: []table{t}}, nil
}

// adminChange runs a console change for an admin; auditors (and everyone
// else) are refused by the control plane, and the page says so.
func (h *Handler) adminChange(w http.ResponseWriter, r *http.Request, back string, change func(cpclient.Caller) (string, error)) {
	c, me, ok := h.adminChanging(w, r)
	if !ok {
		return
	}
	done, err := change(c)
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	http.Redirect(w, r, back+"?done="+done, http.StatusSeeOther)
}

// adminChanging checks a change's form (changing) and that an admin sent it.
func (h *Handler) adminChanging(w http.ResponseWriter, r *http.Request) (cpclient.Caller, *cpclient.Me, bool) {
	c, me, ok := h.changing(w, r)
	if !ok {
		return c, me, false
	}
	if me.Role != "admin" {
		h.fail(w, r, me, errNotAdmin)
		return c, me, false
	}
	return c, me, true
}

// errNotAdmin refuses a change to anyone but an admin before the form is
// read (the control plane refuses it too).
var errNotAdmin = &cpclient.WebError{Status: http.StatusForbidden, Message: "Only administrators can change this."}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, &cpclient.WebError{Status: http.StatusNotFound, Message: "no such item"}
	}
	return id, nil
}

func (h *Handler) backendAction(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/backends", func(c cpclient.Caller) (string, error) {
		id, err := pathID(r)
		if err != nil {
			return "", err
		}
		a := cpclient.BackendAction(r.PathValue("action"))
		return string(a), h.cp.ChangeBackend(r.Context(), c, id, a)
	})
}

func (h *Handler) registerBackend(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/backends", func(c cpclient.Caller) (string, error) {
		maxConc, _ := strconv.Atoi(r.PostForm.Get("max_concurrent"))
		return "registered", h.cp.RegisterBackend(r.Context(), c, strings.TrimSpace(r.PostForm.Get("name")),
			strings.TrimSpace(r.PostForm.Get("url")), r.PostForm.Get("engine"), maxConc)
	})
}

func (h *Handler) adminRevokeKey(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/keys", func(c cpclient.Caller) (string, error) {
		id, err := pathID(r)
		if err != nil {
			return "", err
		}
		return "key-revoked", h.cp.RevokeKey(r.Context(), c, id)
	})
}

func (h *Handler) reviewRequest(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/requests", func(c cpclient.Caller) (string, error) {
		id, err := pathID(r)
		if err != nil {
			return "", err
		}
		switch r.PathValue("decision") {
		case "approve":
			return "approved", h.cp.ReviewQuotaRequest(r.Context(), c, id, true, r.PostForm.Get("notes"))
		case "deny":
			return "denied", h.cp.ReviewQuotaRequest(r.Context(), c, id, false, r.PostForm.Get("notes"))
		}
		return "", &cpclient.WebError{Status: http.StatusNotFound, Message: "unknown decision"}
	})
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/users", func(c cpclient.Caller) (string, error) {
		gid, err := strconv.ParseInt(r.PostForm.Get("group_id"), 10, 64)
		if err != nil || gid <= 0 {
			return "", &cpclient.WebError{Status: http.StatusBadRequest, Message: "choose a group"}
		}
		f := r.PostForm
		return "user-created", h.cp.CreateUser(r.Context(), c, strings.TrimSpace(f.Get("username")), strings.TrimSpace(f.Get("email")),
			strings.TrimSpace(f.Get("full_name")), f.Get("password"), gid)
	})
}

func (h *Handler) userActive(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/users", func(c cpclient.Caller) (string, error) {
		id, err := pathID(r)
		if err != nil {
			return "", err
		}
		switch ch := r.PathValue("change"); ch {
		case "activate", "deactivate":
			return ch + "d", h.cp.SetUserActive(r.Context(), c, id, ch == "activate")
		case "delete":
			return "user-deleted", h.cp.DeleteUser(r.Context(), c, id)
		}
		return "", &cpclient.WebError{Status: http.StatusNotFound, Message: "unknown change"}
	})
}
