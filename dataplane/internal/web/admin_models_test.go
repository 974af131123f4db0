package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// catalogState is the fake control plane's catalog rules.
type catalogState struct {
	models    []cpclient.Model
	overrides map[string]cpclient.ModelOverride
	aliases   map[string]cpclient.ModelAlias
	// callers records the credential of every change, as the admin-action log would.
	callers []cpclient.Caller
}

func (f *fakeCP) ModelOverrides(_ context.Context, c cpclient.Caller) ([]cpclient.ModelOverride, error) {
	if err := f.admin(c, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cpclient.ModelOverride
	for _, o := range f.catalog.overrides {
		out = append(out, o)
	}
	return out, nil
}

func (f *fakeCP) catalogChange(c cpclient.Caller, change func(*catalogState)) error {
	if err := f.admin(c, true); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.catalog.overrides == nil {
		f.catalog.overrides, f.catalog.aliases = map[string]cpclient.ModelOverride{}, map[string]cpclient.ModelAlias{}
	}
	f.catalog.callers = append(f.catalog.callers, c)
	change(&f.catalog)
	return nil
}

func (f *fakeCP) SetModelOverride(_ context.Context, c cpclient.Caller, o cpclient.ModelOverride) error {
	return f.catalogChange(c, func(s *catalogState) { s.overrides[o.Model] = o })
}

func (f *fakeCP) DeleteModelOverride(_ context.Context, c cpclient.Caller, model string) error {
	return f.catalogChange(c, func(s *catalogState) { delete(s.overrides, model) })
}

func (f *fakeCP) ModelAliases(_ context.Context, c cpclient.Caller) ([]cpclient.ModelAlias, error) {
	if err := f.admin(c, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cpclient.ModelAlias
	for _, a := range f.catalog.aliases {
		out = append(out, a)
	}
	return out, nil
}

func (f *fakeCP) SetModelAlias(_ context.Context, c cpclient.Caller, a cpclient.ModelAlias) error {
	return f.catalogChange(c, func(s *catalogState) { s.aliases[a.Name] = a })
}

func (f *fakeCP) DeleteModelAlias(_ context.Context, c cpclient.Caller, name string) error {
	return f.catalogChange(c, func(s *catalogState) { delete(s.aliases, name) })
}

// TestModelsPageOverridesAndAliases: the models page groups the per-backend
// listing by model, an admin sets a tri-state override and an alias (both
// reach the control plane with the session's credential and CSRF token),
// names are escaped, bad forms are refused with 400, a form without the
// token with 403; an auditor sees everything and no control, and is refused.
func TestModelsPageOverridesAndAliases(t *testing.T) {
	t.Parallel()
	h, cp := newTestHandler(t)
	cp.catalog.models = []cpclient.Model{
		{Name: "llama3", Backend: "gpu1", Family: "llama", ContextLength: 8192, Capabilities: []string{"tools"}, Loaded: true},
		{Name: "llama3", Backend: "gpu2", Family: "llama", ContextLength: 4096, Capabilities: []string{"vision"}},
		{Name: "<script>x</script>", Backend: "gpu1"},
	}
	body := get(h, "/admin/models", "s-admin").Body.String()
	assert.Contains(t, body, "gpu1, gpu2", "one row per model with every backend serving it")
	assert.Contains(t, body, "tools, vision")
	assert.Contains(t, body, "&lt;script&gt;x&lt;/script&gt;")
	assert.NotContains(t, body, "<script>x</script>")
	assert.Contains(t, body, `href="/admin/models/override?model=llama3"`)
	assert.Contains(t, body, `action="/admin/models/aliases"`)

	page := get(h, "/admin/models/override?model=llama3", "s-admin").Body.String()
	assert.Contains(t, page, "Model llama3")
	assert.Contains(t, page, `<option value="" selected>As discovered</option>`)
	assert.Contains(t, page, `name="csrf_token" value="c-admin"`)

	form := url.Values{"csrf_token": {"c-admin"}, "vision": {"off"}, "tools": {"on"}, "thinking": {""}, "context_length": {"32768"},
		"display_name": {"Llama <3>"}, "description": {"fast"}}
	w := post(h, "/admin/models/override?model=llama3", "s-admin", form, nil)
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	assert.Equal(t, "/admin/models?done=override-set", w.Header().Get("Location"))
	o := cp.catalog.overrides["llama3"]
	require.NotNil(t, o.Vision)
	require.NotNil(t, o.Tools)
	assert.False(t, *o.Vision)
	assert.True(t, *o.Tools)
	assert.Nil(t, o.Thinking, "as discovered stays unset")
	assert.Equal(t, int64(32768), o.ContextLength)
	assert.Equal(t, cpclient.Caller{Session: "s-admin", CSRF: "c-admin"}, cp.catalog.callers[0], "the session's credential reaches the control plane")

	body = get(h, "/admin/models?done=override-set", "s-admin").Body.String()
	assert.Contains(t, body, "The model&#39;s override was saved")
	assert.Contains(t, body, "vision (image input) off, tools on, context 32768, shown as &#34;Llama &lt;3&gt;&#34;")
	page = get(h, "/admin/models/override?model=llama3", "s-admin").Body.String()
	assert.Contains(t, page, `<option value="off" selected>Off</option>`)
	assert.Contains(t, page, `value="Llama &lt;3&gt;"`)

	for name, bad := range map[string]url.Values{
		"tri-state": {"vision": {"maybe"}},
		"context":   {"context_length": {"-1"}},
		"huge":      {"context_length": {"99999999999"}},
		"long name": {"display_name": {strings.Repeat("x", 256)}},
	} {
		bad.Set("csrf_token", "c-admin")
		w = post(h, "/admin/models/override?model=llama3", "s-admin", bad, nil)
		assert.Equal(t, http.StatusBadRequest, w.Code, name)
	}
	w = post(h, "/admin/models/override", "s-admin", url.Values{"csrf_token": {"c-admin"}}, nil)
	assert.Equal(t, http.StatusBadRequest, w.Code, "no model named")
	w = post(h, "/admin/models/override?model=llama3", "s-admin", url.Values{"vision": {"on"}}, nil)
	assert.Equal(t, http.StatusForbidden, w.Code, "no CSRF token")

	w = post(h, "/admin/models/aliases", "s-admin", url.Values{"csrf_token": {"c-admin"}, "name": {"chat"},
		"targets": {"llama3, qwen\nllama3\n"}, "description": {"the <default>"}}, nil)
	require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
	assert.Equal(t, []string{"llama3", "qwen"}, cp.catalog.aliases["chat"].Targets)
	for name, bad := range map[string]url.Values{
		"bad name":   {"name": {"a b"}, "targets": {"llama3"}},
		"no targets": {"name": {"ok"}, "targets": {" , "}},
		"too many":   {"name": {"ok"}, "targets": {manyTargets(33)}},
	} {
		bad.Set("csrf_token", "c-admin")
		w = post(h, "/admin/models/aliases", "s-admin", bad, nil)
		assert.Equal(t, http.StatusBadRequest, w.Code, name)
	}
	body = get(h, "/admin/models", "s-admin").Body.String()
	assert.Contains(t, body, "the &lt;default&gt;")
	assert.Contains(t, body, `action="/admin/models/aliases/delete"`)

	audit := get(h, "/admin/models", "s-auditor")
	require.Equal(t, http.StatusOK, audit.Code)
	assert.Contains(t, audit.Body.String(), "llama3, qwen", "auditors see the aliases")
	assert.NotContains(t, audit.Body.String(), "<form method=\"post\"")
	assert.NotContains(t, audit.Body.String(), `action="/admin/models`, "no change form for auditors")
	assert.NotContains(t, get(h, "/admin/models/override?model=llama3", "s-auditor").Body.String(), `action="/admin/models`)
	w = post(h, "/admin/models/aliases/delete", "s-auditor", url.Values{"csrf_token": {"c-auditor"}, "name": {"chat"}}, nil)
	assert.Equal(t, http.StatusForbidden, w.Code)
	w = post(h, "/admin/models/override/delete", "s-auditor", url.Values{"csrf_token": {"c-auditor"}, "model": {"llama3"}}, nil)
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Equal(t, http.StatusForbidden, get(h, "/admin/models", "s-user").Code)
	assert.Len(t, cp.catalog.aliases, 1, "the auditor changed nothing")

	w = post(h, "/admin/models/aliases/delete", "s-admin", url.Values{"csrf_token": {"c-admin"}, "name": {"chat"}}, nil)
	assert.Equal(t, "/admin/models?done=alias-deleted", w.Header().Get("Location"))
	assert.Empty(t, cp.catalog.aliases)
	w = post(h, "/admin/models/override/delete", "s-admin", url.Values{"csrf_token": {"c-admin"}, "model": {"llama3"}}, nil)
	assert.Equal(t, "/admin/models?done=override-cleared", w.Header().Get("Location"))
	assert.Empty(t, cp.catalog.overrides)
}

func manyTargets(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "m%d,", i)
	}
	return b.String()
}

// FuzzModelForms: the override and alias forms never panic and whatever
// they accept is within the limits.
func FuzzModelForms(f *testing.F) {
	f.Add("on", "8192", "Llama", "chat", "a, b\nc")
	f.Add("maybe", "-1", "", "a b", ",,,")
	f.Add("", "99999999999999999999", strings.Repeat("é", 300), "x", strings.Repeat("m,", 40))
	f.Fuzz(func(t *testing.T, tri, ctxLen, display, name, targets string) {
		o, err := overrideFromForm("m", url.Values{"vision": {tri}, "context_length": {ctxLen}, "display_name": {display}})
		if err == nil {
			assert.LessOrEqual(t, o.ContextLength, int64(maxContextOverride))
			assert.LessOrEqual(t, len([]rune(o.DisplayName)), maxDisplayName)
		}
		a, err := aliasFromForm(url.Values{"name": {name}, "targets": {targets}})
		if err == nil {
			assert.NotEmpty(t, a.Targets)
			assert.LessOrEqual(t, len(a.Targets), maxAliasTargets)
			for _, tg := range a.Targets {
				assert.NotEmpty(t, tg)
				assert.LessOrEqual(t, len(tg), maxModelName)
			}
		}
	})
}
