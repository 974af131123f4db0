package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// newGroup holds the control plane's defaults for a new group, shown in the
// create form.
var newGroup = cpclient.Group{TokenBudget: 100_000, RPMLimit: 30, Weight: 1, KeyExpiryDays: 45, MaxKeys: 16}

func roleOf(g cpclient.Group) string {
	switch {
	case g.IsAdmin:
		return "admin"
	case g.IsAuditor:
		return "auditor"
	}
	return "user"
}

func keyLifetime(days int) string {
	if days == 0 {
		return "never expire"
	}
	return fmt.Sprintf("%d days", days)
}

func (h *Handler) groupsPage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	gs, err := h.cp.Groups(r.Context(), c)
	if err != nil {
		return tablePage{}, err
	}
	t := table{ID: "groups", Caption: "Groups", Columns: []string{"Name", "Display name", "Token budget", "Requests/minute", "Weight",
		"Key lifetime", "Keys per user", "Users", "Role", "Audit content"}}
	for _, g := range gs {
		content := "metadata only"
		if g.AuditPrompts || g.AuditResponses {
			content = fmt.Sprintf("prompts %s, responses %s", yesNo(g.AuditPrompts), yesNo(g.AuditResponses))
		}
		t.Rows = append(t.Rows, row{Cells: []cell{{Text: g.Name, Link: fmt.Sprintf("/admin/groups/%d", g.ID)}, txt(g.DisplayName),
			txt(budgetText(g.TokenBudget)), txt(limitText(int64(g.RPMLimit))), num(g.Weight), txt(keyLifetime(g.KeyExpiryDays)),
			txt(limitText(int64(g.MaxKeys))), num(g.UserCount), txt(roleOf(g)), txt(content)}})
	}
	create := groupForm("create-group", "Create a group", "/admin/groups", "Create group", newGroup, true)
	return tablePage{Tables: []table{t}, Forms: []form{create}}, nil
}

// groupForm is the create (with a name) or edit form of a group.
func groupForm(id, title, action, submit string, g cpclient.Group, create bool) form {
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	f := form{ID: id, Title: title, Action: action, Submit: submit, Note: "0 means unlimited for the budget, the rate and the key count; 0 days means keys never expire."}
	if create {
		f.Fields = append(f.Fields, field{Name: "name", Label: "Name (letters, digits, - and _)", Required: true, MaxLength: 64, Autocomplete: "off"})
	}
	f.Fields = append(f.Fields,
		field{Name: "display_name", Label: "Display name", Value: g.DisplayName, MaxLength: 255},
		field{Name: "description", Label: "Description", Type: "textarea", Value: g.Description, MaxLength: 1000},
		field{Name: "token_budget", Label: "Token budget per period", Type: "number", Min: "0", Required: true, Value: n(g.TokenBudget)},
		field{Name: "rpm_limit", Label: "Requests per minute", Type: "number", Min: "0", Required: true, Value: n(int64(g.RPMLimit))},
		field{Name: "scheduler_weight", Label: "Scheduler weight", Type: "number", Min: "1", Required: true, Value: n(int64(g.Weight))},
		field{Name: "api_key_expiry_days", Label: "Key lifetime in days", Type: "number", Min: "0", Required: true, Value: n(int64(g.KeyExpiryDays))},
		field{Name: "max_api_keys", Label: "Active keys per user", Type: "number", Min: "0", Required: true, Value: n(int64(g.MaxKeys))},
		field{Name: "is_admin", Label: "Administrators (full control)", Type: "checkbox", Checked: g.IsAdmin},
		field{Name: "is_auditor", Label: "Auditors (see everything, change nothing)", Type: "checkbox", Checked: g.IsAuditor})
	if !create {
		f.Fields = append(f.Fields,
			field{Name: "audit_prompts", Label: "Keep members' prompts in the audit trail", Type: "checkbox", Checked: g.AuditPrompts},
			field{Name: "audit_responses", Label: "Keep members' responses in the audit trail", Type: "checkbox", Checked: g.AuditResponses})
	}
	return f
}

// findGroup is the group with id (there is no single-group call).
func (h *Handler) findGroup(r *http.Request, c cpclient.Caller) (cpclient.Group, error) {
	id, err := pathID(r)
	if err != nil {
		return cpclient.Group{}, err
	}
	gs, err := h.cp.Groups(r.Context(), c)
	if err != nil {
		return cpclient.Group{}, err
	}
	for _, g := range gs {
		if g.ID == id {
			return g, nil
		}
	}
	return cpclient.Group{}, &cpclient.WebError{Status: http.StatusNotFound, Message: "group not found"}
}

func (h *Handler) groupPage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	g, err := h.findGroup(r, c)
	if err != nil {
		return tablePage{}, err
	}
	d := detailList{ID: "group", Title: "Settings", Items: []detail{
		{Key: "Name", Value: g.Name}, {Key: "Display name", Value: g.DisplayName}, {Key: "Description", Value: g.Description},
		{Key: "Token budget", Value: budgetText(g.TokenBudget)}, {Key: "Requests per minute", Value: limitText(int64(g.RPMLimit))},
		{Key: "Scheduler weight", Value: strconv.Itoa(g.Weight)}, {Key: "Key lifetime", Value: keyLifetime(g.KeyExpiryDays)},
		{Key: "Active keys per user", Value: limitText(int64(g.MaxKeys))}, {Key: "Role", Value: roleOf(g)},
		{Key: "Prompts kept", Value: yesNo(g.AuditPrompts)}, {Key: "Responses kept", Value: yesNo(g.AuditResponses)},
		{Key: "Members", Value: strconv.Itoa(g.UserCount)}}}
	action := fmt.Sprintf("/admin/groups/%d", g.ID)
	edit := groupForm("edit-group", "Edit the group", action, "Save group", g, false)
	del := form{ID: "delete-group", Title: "Delete this group", Action: action + "/delete", Submit: "Delete " + g.Name, Class: "danger",
		Confirm: "Delete the group " + g.Name + "?", Note: "A group with members cannot be deleted: move them to another group first."}
	links := []navItem{{URL: "/admin/groups", Label: "All groups"}, {URL: fmt.Sprintf("/admin/users?group=%d", g.ID), Label: "Members"}}
	return tablePage{Title: "Group " + g.Name, Links: links, Details: []detailList{d}, Forms: []form{edit, del}}, nil
}

// groupFromForm reads a group's settings from its form.
func groupFromForm(r *http.Request) (cpclient.Group, error) {
	f := r.PostForm
	g := cpclient.Group{Name: strings.TrimSpace(f.Get("name")), DisplayName: strings.TrimSpace(f.Get("display_name")),
		Description: strings.TrimSpace(f.Get("description")), IsAdmin: f.Get("is_admin") != "", IsAuditor: f.Get("is_auditor") != "",
		AuditPrompts: f.Get("audit_prompts") != "", AuditResponses: f.Get("audit_responses") != ""}
	const i32 = 1<<31 - 1
	var err error
	if g.TokenBudget, err = requiredInt(f, "token_budget", "The token budget", 0, 1<<62); err != nil {
		return g, err
	}
	ints := []struct {
		name, label string
		lo          int64
		dst         *int
	}{{"rpm_limit", "Requests per minute", 0, &g.RPMLimit}, {"scheduler_weight", "The scheduler weight", 1, &g.Weight},
		{"api_key_expiry_days", "The key lifetime", 0, &g.KeyExpiryDays}, {"max_api_keys", "Active keys per user", 0, &g.MaxKeys}}
	for _, in := range ints {
		n, err := requiredInt(f, in.name, in.label, in.lo, i32)
		if err != nil {
			return g, err
		}
		*in.dst = int(n)
	}
	return g, nil
}

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/groups", func(c cpclient.Caller) (string, error) {
		g, err := groupFromForm(r)
		if err != nil {
			return "", err
		}
		_, err = h.cp.SaveGroup(r.Context(), c, 0, g)
		return "group-created", err
	})
}

func (h *Handler) updateGroup(w http.ResponseWriter, r *http.Request) {
	id, idErr := pathID(r)
	h.adminChange(w, r, fmt.Sprintf("/admin/groups/%d", id), func(c cpclient.Caller) (string, error) {
		if idErr != nil {
			return "", idErr
		}
		g, err := groupFromForm(r)
		if err != nil {
			return "", err
		}
		_, err = h.cp.SaveGroup(r.Context(), c, id, g)
		return "group-updated", err
	})
}

// deleteGroup deletes a group; while it has members the control plane
// refuses (409) and the group's page says why, with that status.
func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request) {
	c, me, ok := h.adminChanging(w, r)
	if !ok {
		return
	}
	id, err := pathID(r)
	if err == nil {
		err = h.cp.DeleteGroup(r.Context(), c, id)
	}
	if err == nil {
		http.Redirect(w, r, "/admin/groups?done=group-deleted", http.StatusSeeOther)
		return
	}
	if cpclient.HTTPStatus(err) != http.StatusConflict {
		h.fail(w, r, me, err)
		return
	}
	c.CSRF = ""
	h.renderConsolePage(w, r, c, me, http.StatusConflict, "Group", "/admin/groups",
		"The group was not deleted: "+err.Error(), h.groupPage)
}
