package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// usersPerPage is the users page's page size.
const usersPerPage = 50

// usersPage lists users, searched (username, e-mail, name) and filtered by
// group, 50 to a page.
func (h *Handler) usersPage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	q := r.URL.Query()
	search := strings.TrimSpace(q.Get("q"))
	gid, _ := strconv.ParseInt(q.Get("group"), 10, 64)
	pg, _ := strconv.Atoi(q.Get("page"))
	pg = max(pg, 1)
	groups, err := h.cp.Groups(r.Context(), c)
	if err != nil {
		return tablePage{}, err
	}
	list, err := h.cp.Users(r.Context(), c, cpclient.UserQuery{Search: search, GroupID: gid, Skip: (pg - 1) * usersPerPage, Limit: usersPerPage})
	if err != nil {
		return tablePage{}, err
	}
	t := table{ID: "users", Caption: "Users", HasActions: true,
		Columns: []string{"Username", "Full name", "E-mail", "Group", "Status", "Own limits", "Created"}}
	for _, u := range list.Users {
		rw := row{Cells: []cell{{Text: u.Username, Link: fmt.Sprintf("/admin/users/%d", u.ID)}, txt(u.FullName), txt(u.Email), txt(u.Group),
			badge("active"), txt(overrides(u)), when(u.CreatedAt)}}
		base := fmt.Sprintf("/admin/users/%d/", u.ID)
		if u.Active {
			rw.Actions = []action{{URL: base + "deactivate", Label: "Deactivate", Class: "danger", Target: u.Username,
				Confirm: "Deactivate " + u.Username + "? Their keys and sessions stop working at once."}}
		} else {
			rw.Cells[4] = badge("disabled")
			rw.Actions = []action{{URL: base + "activate", Label: "Activate", Class: "secondary", Target: u.Username}}
		}
		t.Rows = append(t.Rows, rw)
	}
	groupOpts := []option{{Value: "", Label: "Every group"}}
	createOpts := []option{{Value: "", Label: "Choose a group"}}
	for _, g := range groups {
		v := strconv.FormatInt(g.ID, 10)
		groupOpts = append(groupOpts, option{Value: v, Label: g.Name, Selected: g.ID == gid})
		createOpts = append(createOpts, option{Value: v, Label: g.Name})
	}
	search1 := form{ID: "user-search", Title: "Find users", Action: "/admin/users", Method: "get", Submit: "Search", Class: "secondary",
		Fields: []field{{Name: "q", Label: "Username, e-mail or name", Type: "search", Value: search, MaxLength: 100},
			{Name: "group", Label: "Group", Type: "select", Options: groupOpts}}}
	p := &pager{Summary: fmt.Sprintf("%d users match.", list.Total)}
	if first := int64((pg-1)*usersPerPage) + 1; len(list.Users) > 0 {
		p.Summary = fmt.Sprintf("Users %d to %d of %d.", first, first+int64(len(list.Users))-1, list.Total)
	}
	if pg > 1 {
		p.Prev = pageLink("/admin/users", q, "page", strconv.Itoa(pg-1))
	}
	if int64(pg*usersPerPage) < list.Total {
		p.Next = pageLink("/admin/users", q, "page", strconv.Itoa(pg+1))
	}
	create := form{ID: "create-user", Title: "Create a local user", Action: "/admin/users", Submit: "Create user",
		Fields: []field{{Name: "username", Label: "Username", Required: true, MaxLength: 64, Autocomplete: "off"},
			{Name: "email", Label: "E-mail", Type: "email", Required: true, MaxLength: 255},
			{Name: "full_name", Label: "Full name", MaxLength: 255},
			{Name: "password", Label: "Initial password (at least 8 characters)", Type: "password", Required: true, MinLength: 8, Autocomplete: "new-password"},
			{Name: "group_id", Label: "Group", Type: "select", Required: true, Options: createOpts}}}
	return tablePage{Search: []form{search1}, Tables: []table{t}, Pager: p, Forms: []form{create}}, nil
}

// overrides describes a user's own limits ("" when the group's apply).
func overrides(u cpclient.User) string {
	var parts []string
	if u.TokenBudget != nil {
		parts = append(parts, "budget "+budgetText(*u.TokenBudget))
	}
	if u.RPMLimit != nil {
		parts = append(parts, "RPM "+limitText(int64(*u.RPMLimit)))
	}
	if u.WeightOverride != nil {
		parts = append(parts, fmt.Sprintf("weight %d", *u.WeightOverride))
	}
	return strings.Join(parts, ", ")
}

func optText[T int | int64](p *T) string {
	if p == nil {
		return ""
	}
	return fmt.Sprint(*p)
}

// userPage shows one user; admins get the edit and delete forms.
func (h *Handler) userPage(r *http.Request, c cpclient.Caller, me *cpclient.Me) (tablePage, error) {
	id, err := pathID(r)
	if err != nil {
		return tablePage{}, err
	}
	u, err := h.cp.GetUser(r.Context(), c, id)
	if err != nil {
		return tablePage{}, err
	}
	groups, err := h.cp.Groups(r.Context(), c)
	if err != nil {
		return tablePage{}, err
	}
	var own cpclient.Group
	opts := make([]option, len(groups))
	for i, g := range groups {
		opts[i] = option{Value: strconv.FormatInt(g.ID, 10), Label: g.Name, Selected: g.ID == u.GroupID}
		if g.ID == u.GroupID {
			own = g
		}
	}
	status := "active"
	if !u.Active {
		status = "deactivated"
	}
	d := detailList{ID: "user", Title: "Account", Items: []detail{
		{Key: "Username", Value: u.Username}, {Key: "E-mail", Value: u.Email}, {Key: "Full name", Value: u.FullName},
		{Key: "Group", Value: u.Group}, {Key: "Status", Value: status}, {Key: "Created", Value: when(u.CreatedAt).Text},
		{Key: "College", Value: u.College}, {Key: "Department", Value: u.Department}, {Key: "Intended use", Value: u.IntendedUse},
		{Key: "Own limits", Value: orText(overrides(u), "none: the group's apply")}}}
	action := fmt.Sprintf("/admin/users/%d", u.ID)
	edit := form{ID: "edit-user", Title: "Edit group and limits", Action: action, Submit: "Save user",
		Note: "Leave a limit blank to use the group's; 0 means unlimited.",
		Fields: []field{{Name: "group_id", Label: "Group", Type: "select", Options: opts},
			{Name: "full_name", Label: "Full name", Value: u.FullName, MaxLength: 255},
			{Name: "token_budget", Label: "Token budget per period", Type: "number", Min: "0", Value: optText(u.TokenBudget),
				Help: "The group's: " + budgetText(own.TokenBudget)},
			{Name: "rpm_limit", Label: "Requests per minute", Type: "number", Min: "0", Value: optText(u.RPMLimit),
				Help: "The group's: " + limitText(int64(own.RPMLimit))},
			{Name: "weight_override", Label: "Scheduler weight", Type: "number", Min: "1", Value: optText(u.WeightOverride),
				Help: fmt.Sprintf("The group's: %d", own.Weight)}}}
	forms := []form{edit}
	if me.UserID != u.ID {
		forms = append(forms, form{ID: "delete-user", Title: "Delete this user", Action: action + "/delete", Submit: "Delete " + u.Username,
			Class: "danger", Confirm: "Delete " + u.Username + "? Their keys and sessions are removed; this cannot be undone.",
			Note: "Deletes the account with its keys, sessions and quota requests. Usage and audit records keep naming it."})
	} else {
		d.Items = append(d.Items, detail{Key: "Note", Value: "This is your own account: you cannot delete it."})
	}
	return tablePage{Title: "User " + u.Username, Links: []navItem{{URL: "/admin/users", Label: "All users"}}, Details: []detailList{d}, Forms: forms}, nil
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func (h *Handler) updateUser(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	back := fmt.Sprintf("/admin/users/%d", id)
	h.adminChange(w, r, back, func(c cpclient.Caller) (string, error) {
		if err != nil {
			return "", err
		}
		f := r.PostForm
		ch := cpclient.UserChange{FullName: strings.TrimSpace(f.Get("full_name"))}
		ch.GroupID, _ = strconv.ParseInt(f.Get("group_id"), 10, 64)
		if ch.TokenBudget, err = optionalInt(f, "token_budget", "The token budget"); err != nil {
			return "", err
		}
		rpm, err := optionalInt(f, "rpm_limit", "Requests per minute")
		if err != nil {
			return "", err
		}
		weight, err := optionalInt(f, "weight_override", "The scheduler weight")
		if err != nil {
			return "", err
		}
		if ch.RPMLimit, err = small(rpm, "Requests per minute"); err != nil {
			return "", err
		}
		if ch.WeightOverride, err = small(weight, "The scheduler weight"); err != nil {
			return "", err
		}
		return "user-updated", h.cp.UpdateUser(r.Context(), c, id, ch)
	})
}

// small narrows a form's number to an int32-sized int.
func small(n *int64, label string) (*int, error) {
	if n == nil {
		return nil, nil
	}
	if *n > 1<<31-1 {
		return nil, badRequest("%s is too large", label)
	}
	v := int(*n)
	return &v, nil
}
