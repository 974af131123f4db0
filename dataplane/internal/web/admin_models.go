package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// Catalog is the administrator's catalog rules as the console's model page
// needs them: per-model overrides of discovered metadata and model aliases.
// Every change goes through the control plane's CatalogService with the
// session's credential, so it lands in the admin-action log.
type Catalog interface {
	ModelOverrides(ctx context.Context, c cpclient.Caller) ([]cpclient.ModelOverride, error)
	SetModelOverride(ctx context.Context, c cpclient.Caller, o cpclient.ModelOverride) error
	DeleteModelOverride(ctx context.Context, c cpclient.Caller, model string) error
	ModelAliases(ctx context.Context, c cpclient.Caller) ([]cpclient.ModelAlias, error)
	SetModelAlias(ctx context.Context, c cpclient.Caller, a cpclient.ModelAlias) error
	DeleteModelAlias(ctx context.Context, c cpclient.Caller, name string) error
}

// Limits of the model page's forms (the control plane enforces its own).
const (
	maxModelName       = 255
	maxDisplayName     = 255
	maxDescription     = 1000
	maxAliasTargets    = 32
	maxContextOverride = 1 << 30
)

var aliasName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// capabilityFields are the overridable capabilities: form field, label, and
// the override's field.
var capabilityFields = []struct {
	name, label string
	get         func(*cpclient.ModelOverride) **bool
}{
	{"vision", "Vision (image input)", func(o *cpclient.ModelOverride) **bool { return &o.Vision }},
	{"tools", "Tools", func(o *cpclient.ModelOverride) **bool { return &o.Tools }},
	{"thinking", "Thinking", func(o *cpclient.ModelOverride) **bool { return &o.Thinking }},
	{"embeddings", "Embeddings", func(o *cpclient.ModelOverride) **bool { return &o.Embeddings }},
	{"structured_output", "Structured output", func(o *cpclient.ModelOverride) **bool { return &o.Structured }},
}

func (h *Handler) routeModels() {
	h.mux.HandleFunc("GET /admin/models/override", func(w http.ResponseWriter, r *http.Request) {
		h.showConsolePage(w, r, "Model", "/admin/models", h.modelOverridePage)
	})
	h.mux.HandleFunc("POST /admin/models/override", h.setModelOverride)
	h.mux.HandleFunc("POST /admin/models/override/delete", h.deleteModelOverride)
	h.mux.HandleFunc("POST /admin/models/aliases", h.setModelAlias)
	h.mux.HandleFunc("POST /admin/models/aliases/delete", h.deleteModelAlias)
}

// catalogModel is one model name with the backends serving it.
type catalogModel struct {
	name, family   string
	backends, caps []string
	context        int64
	loaded         bool
}

// catalogModels groups the per-backend listing by model name, in name order.
func catalogModels(ms []cpclient.Model) []catalogModel {
	byName := map[string]*catalogModel{}
	var names []string
	for _, m := range ms {
		cm := byName[m.Name]
		if cm == nil {
			cm = &catalogModel{name: m.Name, family: m.Family}
			byName[m.Name] = cm
			names = append(names, m.Name)
		}
		cm.backends = append(cm.backends, m.Backend)
		for _, c := range m.Capabilities {
			if !slices.Contains(cm.caps, c) {
				cm.caps = append(cm.caps, c)
			}
		}
		cm.context = max(cm.context, m.ContextLength)
		cm.loaded = cm.loaded || m.Loaded
	}
	slices.Sort(names)
	out := make([]catalogModel, len(names))
	for i, n := range names {
		out[i] = *byName[n]
	}
	return out
}

// overrideSummary says what an override changes, in words.
func overrideSummary(o cpclient.ModelOverride) string {
	var parts []string
	for _, cf := range capabilityFields {
		if v := *cf.get(&o); v != nil {
			parts = append(parts, fmt.Sprintf("%s %s", strings.ToLower(cf.label), onOff(*v)))
		}
	}
	if o.ContextLength > 0 {
		parts = append(parts, fmt.Sprintf("context %d", o.ContextLength))
	}
	if o.DisplayName != "" {
		parts = append(parts, fmt.Sprintf("shown as %q", o.DisplayName))
	}
	if o.Description != "" {
		parts = append(parts, "described")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func overrideLink(model string) string {
	return "/admin/models/override?" + url.Values{"model": {model}}.Encode()
}

func (h *Handler) modelsPage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	ctx := r.Context()
	ms, err := h.cp.Models(ctx, c)
	if err != nil {
		return tablePage{}, err
	}
	ovs, err := h.cp.ModelOverrides(ctx, c)
	if err != nil {
		return tablePage{}, err
	}
	as, err := h.cp.ModelAliases(ctx, c)
	if err != nil {
		return tablePage{}, err
	}
	byModel := map[string]cpclient.ModelOverride{}
	for _, o := range ovs {
		byModel[o.Model] = o
	}
	t := table{ID: "models", Caption: "Models", HasActions: true,
		Columns: []string{"Model", "Served by", "Family", "Context", "Capabilities", "Loaded", "Override"}}
	for _, m := range catalogModels(ms) {
		o, has := byModel[m.name]
		summary := "none"
		if has {
			summary = overrideSummary(o)
		}
		rw := row{Cells: []cell{{Text: m.name, Link: overrideLink(m.name)}, txt(strings.Join(m.backends, ", ")), txt(m.family),
			num(m.context), txt(strings.Join(m.caps, ", ")), badge(yesNo(m.loaded)), txt(summary)}}
		if has {
			rw.Actions = append(rw.Actions, action{URL: "/admin/models/override/delete", Label: "Clear override", Class: "danger",
				Target: m.name, Fields: map[string]string{"model": m.name}, Confirm: "Clear the override of " + m.name + "?"})
		}
		t.Rows = append(t.Rows, rw)
	}
	// An override may name a model no backend serves now: list it so it can be cleared.
	for _, o := range ovs {
		if !slices.ContainsFunc(ms, func(m cpclient.Model) bool { return m.Name == o.Model }) {
			t.Rows = append(t.Rows, row{Cells: []cell{{Text: o.Model, Link: overrideLink(o.Model)}, txt("no backend"), txt(""), num(int64(0)),
				txt(""), badge("no"), txt(overrideSummary(o))}, Actions: []action{{URL: "/admin/models/override/delete", Label: "Clear override",
				Class: "danger", Target: o.Model, Fields: map[string]string{"model": o.Model}}}})
		}
	}
	at := table{ID: "aliases", Caption: "Aliases", HasActions: true, Columns: []string{"Alias", "Targets", "Description", "Updated"}}
	for _, a := range as {
		at.Rows = append(at.Rows, row{Cells: []cell{txt(a.Name), txt(strings.Join(a.Targets, ", ")), txt(a.Description), when(a.UpdatedAt)},
			Actions: []action{{URL: "/admin/models/aliases/delete", Label: "Delete", Class: "danger", Target: a.Name,
				Fields: map[string]string{"name": a.Name}, Confirm: "Delete the alias " + a.Name + "? Requests for it will fail."}}})
	}
	alias := form{ID: "set-alias", Title: "Create or update an alias", Action: "/admin/models/aliases", Submit: "Save alias",
		Note: "A request for the alias is served by any backend serving one of its targets. Saving an existing name replaces it.",
		Fields: []field{
			{Name: "name", Label: "Alias (letters, digits, '.', '_' and '-')", Required: true, MaxLength: 128, Autocomplete: "off"},
			{Name: "targets", Label: "Target models, one per line or comma-separated", Type: "textarea", MaxLength: maxAliasTargets * (maxModelName + 1)},
			{Name: "description", Label: "Description", MaxLength: maxDescription}}}
	return tablePage{Tables: []table{t, at}, Forms: []form{alias}}, nil
}

// modelOverridePage shows one model's override and the form that changes it.
func (h *Handler) modelOverridePage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	model := strings.TrimSpace(r.URL.Query().Get("model"))
	if model == "" || len(model) > maxModelName {
		return tablePage{}, badRequest("Name a model (at most %d characters).", maxModelName)
	}
	ovs, err := h.cp.ModelOverrides(r.Context(), c)
	if err != nil {
		return tablePage{}, err
	}
	var o cpclient.ModelOverride
	has := false
	for _, x := range ovs {
		if x.Model == model {
			o, has = x, true
		}
	}
	d := detailList{ID: "override", Title: "Current override", Items: []detail{{Key: "Model", Value: model}, {Key: "Override", Value: overrideSummary(o)}}}
	if has {
		d.Items = append(d.Items, detail{Key: "Display name", Value: o.DisplayName}, detail{Key: "Description", Value: o.Description},
			detail{Key: "Updated", Value: when(o.UpdatedAt).Text})
	}
	f := form{ID: "edit-override", Title: "Set the override", Action: overrideLink(model), Submit: "Save override",
		Note: "“As discovered” keeps what the backends report; a context length of 0 or blank keeps the discovered window."}
	for _, cf := range capabilityFields {
		cur := ""
		if v := *cf.get(&o); v != nil {
			cur = onOff(*v)
		}
		opts := []option{{Value: "", Label: "As discovered"}, {Value: "on", Label: "On"}, {Value: "off", Label: "Off"}}
		for i := range opts {
			opts[i].Selected = opts[i].Value == cur
		}
		f.Fields = append(f.Fields, field{Name: cf.name, Label: cf.label, Type: "select", Options: opts})
	}
	ctxValue := ""
	if o.ContextLength > 0 {
		ctxValue = strconv.FormatInt(o.ContextLength, 10)
	}
	f.Fields = append(f.Fields,
		field{Name: "context_length", Label: "Context length in tokens", Type: "number", Min: "0", Value: ctxValue},
		field{Name: "display_name", Label: "Display name", Value: o.DisplayName, MaxLength: maxDisplayName},
		field{Name: "description", Label: "Description", Type: "textarea", Value: o.Description, MaxLength: maxDescription})
	forms := []form{f}
	if has {
		forms = append(forms, form{ID: "clear-override", Title: "Clear the override", Action: "/admin/models/override/delete?" + url.Values{"model": {model}}.Encode(),
			Submit: "Clear override", Class: "danger", Note: "The discovered values apply again."})
	}
	return tablePage{Title: "Model " + model, Links: []navItem{{URL: "/admin/models", Label: "All models"}}, Details: []detailList{d}, Forms: forms}, nil
}

// formModel is the model a change names: the form's model field, else the URL's.
func formModel(r *http.Request) (string, error) {
	m := strings.TrimSpace(r.PostForm.Get("model"))
	if m == "" {
		m = strings.TrimSpace(r.URL.Query().Get("model"))
	}
	if m == "" || len(m) > maxModelName {
		return "", badRequest("Name a model (at most %d characters).", maxModelName)
	}
	return m, nil
}

// triState reads an override's capability: blank keeps the discovered value.
func triState(v, label string) (*bool, error) {
	switch v {
	case "":
		return nil, nil
	case "on":
		b := true
		return &b, nil
	case "off":
		b := false
		return &b, nil
	}
	return nil, badRequest("%s must be as discovered, on or off.", label)
}

// overrideFromForm reads the override form.
func overrideFromForm(model string, f url.Values) (cpclient.ModelOverride, error) {
	o := cpclient.ModelOverride{Model: model, DisplayName: strings.TrimSpace(f.Get("display_name")), Description: strings.TrimSpace(f.Get("description"))}
	for _, cf := range capabilityFields {
		v, err := triState(f.Get(cf.name), cf.label)
		if err != nil {
			return o, err
		}
		*cf.get(&o) = v
	}
	n, err := optionalInt(f, "context_length", "The context length")
	if err != nil {
		return o, err
	}
	if n != nil {
		if *n > maxContextOverride {
			return o, badRequest("The context length must be at most %d tokens.", maxContextOverride)
		}
		o.ContextLength = *n
	}
	if len([]rune(o.DisplayName)) > maxDisplayName {
		return o, badRequest("The display name must be at most %d characters.", maxDisplayName)
	}
	if len([]rune(o.Description)) > maxDescription {
		return o, badRequest("The description must be at most %d characters.", maxDescription)
	}
	return o, nil
}

// aliasTargets splits the targets field on commas and line breaks.
func aliasTargets(s string) ([]string, error) {
	var out []string
	for _, t := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		t = strings.TrimSpace(t)
		if t == "" || slices.Contains(out, t) {
			continue
		}
		if len(t) > maxModelName {
			return nil, badRequest("A target model name must be at most %d characters.", maxModelName)
		}
		out = append(out, t)
	}
	if len(out) == 0 || len(out) > maxAliasTargets {
		return nil, badRequest("An alias needs 1 to %d target models.", maxAliasTargets)
	}
	return out, nil
}

func aliasFromForm(f url.Values) (cpclient.ModelAlias, error) {
	a := cpclient.ModelAlias{Name: strings.TrimSpace(f.Get("name")), Description: strings.TrimSpace(f.Get("description"))}
	if !aliasName.MatchString(a.Name) {
		return a, badRequest("The alias must be 1 to 128 letters, digits, '.', '_' or '-'.")
	}
	if len([]rune(a.Description)) > maxDescription {
		return a, badRequest("The description must be at most %d characters.", maxDescription)
	}
	var err error
	a.Targets, err = aliasTargets(f.Get("targets"))
	return a, err
}

func (h *Handler) setModelOverride(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/models", func(c cpclient.Caller) (string, error) {
		m, err := formModel(r)
		if err != nil {
			return "", err
		}
		o, err := overrideFromForm(m, r.PostForm)
		if err != nil {
			return "", err
		}
		return "override-set", h.cp.SetModelOverride(r.Context(), c, o)
	})
}

func (h *Handler) deleteModelOverride(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/models", func(c cpclient.Caller) (string, error) {
		m, err := formModel(r)
		if err != nil {
			return "", err
		}
		return "override-cleared", h.cp.DeleteModelOverride(r.Context(), c, m)
	})
}

func (h *Handler) setModelAlias(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/models", func(c cpclient.Caller) (string, error) {
		a, err := aliasFromForm(r.PostForm)
		if err != nil {
			return "", err
		}
		return "alias-saved", h.cp.SetModelAlias(r.Context(), c, a)
	})
}

func (h *Handler) deleteModelAlias(w http.ResponseWriter, r *http.Request) {
	h.adminChange(w, r, "/admin/models", func(c cpclient.Caller) (string, error) {
		name := strings.TrimSpace(r.PostForm.Get("name"))
		if !aliasName.MatchString(name) {
			return "", badRequest("Name an alias.")
		}
		return "alias-deleted", h.cp.DeleteModelAlias(r.Context(), c, name)
	})
}
