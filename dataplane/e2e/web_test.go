package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// screenshotDir is where the browser tests write every page in light and dark
// mode (docs/web.md): MINDROUTER_WEB_SCREENSHOTS, else dataplane/e2e/artifacts/web.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("MINDROUTER_WEB_SCREENSHOTS")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "artifacts", "web")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// axeSource is axe-core from the repository's pinned npm set (.tools, make tools).
func axeSource(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", ".tools", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		t.Skipf("axe-core is not installed (run make tools): %v", err)
	}
	return string(raw)
}

// page is one headless Chromium tab with its console watched for CSP
// violations and script errors.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	axe  string
	shot string
	mu   sync.Mutex
	errs []string
}

func newPage(t *testing.T, base string) *page {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no Chromium (apt-get install chromium; .ci/run installs it)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	p := &page{t: t, ctx: ctx, base: base, axe: axeSource(t), shot: screenshotDir(t)}
	require.NoError(t, chromedp.Do(ctx)) // starts the browser
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !strings.Contains(m.Text, "favicon") {
				p.mu.Lock()
				p.errs = append(p.errs, m.Text)
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	require.NoError(p.t, chromedp.Do(ctx, actions...))
}

func eval[T any](p *page, js string, opts ...chromedp.EvaluateOption) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	require.NoError(p.t, err, js)
	return v
}

// open loads path and waits for its heading.
func (p *page) open(path string) {
	p.t.Helper()
	p.do(chromedp.Navigate(p.base+path), chromedp.WaitVisible(chromedp.CSS("h1")))
}

func (p *page) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(p.t, err, sel)
	return s
}

// noConsoleErrors fails on CSP violations and script errors seen so far.
func (p *page) noConsoleErrors() {
	p.t.Helper()
	time.Sleep(100 * time.Millisecond) // let the console catch up
	p.mu.Lock()
	defer p.mu.Unlock()
	assert.Empty(p.t, p.errs, "console errors (a CSP violation reads 'Refused to ...')")
	p.errs = nil
}

func (p *page) scheme(s string) {
	p.t.Helper()
	_, err := chromedp.Call(p.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: s}}})
	require.NoError(p.t, err)
}

// check runs axe-core (WCAG 2.1 A and AA rules) on the page in light and dark
// mode, fails on serious or critical violations, and writes a screenshot of
// each mode.
func (p *page) check(name string) {
	p.t.Helper()
	for _, scheme := range []string{"light", "dark"} {
		p.scheme(scheme)
		eval[bool](p, `localStorage.removeItem("mindrouter-theme"); document.documentElement.removeAttribute("data-theme"); true`)
		eval[bool](p, p.axe+"; true")
		res := eval[string](p, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
			.then(r => JSON.stringify(r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
			.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))))`,
			chromedp.EvalAwaitPromise)
		assert.Equal(p.t, "[]", res, "axe: serious or critical violations on %s (%s)", name, scheme)
		ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		require.NoError(p.t, err)
		require.NoError(p.t, os.WriteFile(filepath.Join(p.shot, fmt.Sprintf("%s-%s.png", name, scheme)), png, 0o644))
	}
	// A phone: one column, nothing wider than the screen but the tables' own frames.
	p.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	overflow := eval[bool](p, `document.documentElement.scrollWidth > window.innerWidth + 1`)
	assert.False(p.t, overflow, "%s scrolls sideways on a phone", name)
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	cancel()
	require.NoError(p.t, err)
	require.NoError(p.t, os.WriteFile(filepath.Join(p.shot, name+"-phone.png"), png, 0o644))
	p.do(chromedp.EmulateViewport(1280, 900))
	p.scheme("light")
	p.noConsoleErrors()
}

// signIn uses the login form.
func (p *page) signIn(user, password, next string) {
	p.t.Helper()
	p.open("/login?next=" + next)
	p.do(chromedp.SendKeys(chromedp.CSS("#username"), user), chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")))
	require.Eventually(p.t, func() bool { return !strings.Contains(eval[string](p, `location.pathname`), "/login") },
		20*time.Second, 100*time.Millisecond, "signed in as %s", user)
	p.do(chromedp.WaitVisible(chromedp.CSS("h1")))
}

// submit clicks a button, accepting any confirmation, and waits for the next page.
func (p *page) submit(sel, waitFor string) {
	p.t.Helper()
	// The marker goes with the old document: waitFor must be on the next one.
	eval[bool](p, `window.confirm = () => true; document.body.dataset.old = "1"; true`)
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS("body:not([data-old]) "+waitFor))); err != nil {
		fields := eval[string](p, `[...document.querySelectorAll("main form input, main form select")].filter(i => i.type !== "hidden")
			.map(i => i.name + "=" + i.value + (i.validity.valid ? "" : " (invalid: " + i.validationMessage + ")")).join(", ")`)
		p.t.Fatalf("submit %s: %v; the form's fields: %s; the page says: %s", sel, err, fields, p.text("main"))
	}
}

var adminPages = []string{"/admin", "/admin/backends", "/admin/nodes", "/admin/models", "/admin/users", "/admin/groups",
	"/admin/keys", "/admin/requests", "/admin/queue", "/admin/gpus", "/admin/telemetry", "/admin/energy"}

// TestWebPagesInBrowser drives every page in headless Chromium against real
// processes: the public status page and catalog, local sign-in, the dashboard
// (a key created, used with openai-go, live usage, a quota request, the key
// revoked), the admin console (a backend drained and the API reporting it, a
// quota request approved) and the auditor's read-only console; axe-core on
// every page in light and dark mode, and a screenshot of each.
func TestWebPagesInBrowser(t *testing.T) {
	t.Parallel()
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, CompletionTokens: 8,
		Models: []enginesim.ModelSpec{{Name: "sim-chat", ContextLength: 8192}}})
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "vllm", URL: simURL}}})
	createUser(t, c, "maria", "student")
	createUser(t, c, "ada", "admin")
	createUser(t, c, "audrey", "auditor")
	const pw = "correct horse battery"

	// Public pages, nobody signed in.
	p := newPage(t, c.DataPlaneURL)
	p.open("/")
	assert.Contains(t, p.text("main"), "sim-chat")
	assert.Contains(t, p.text("main"), "All systems operating normally")
	p.check("status")
	p.open("/models")
	assert.Contains(t, p.text("table"), "sim-chat")
	assert.Contains(t, p.text("table"), "8192")
	p.check("models")
	p.open("/login")
	p.check("login")

	// The theme toggle is remembered across pages.
	p.scheme("light")
	p.open("/models")
	p.do(chromedp.Click(chromedp.CSS("#theme-toggle")))
	p.open("/")
	assert.Equal(t, "dark", eval[string](p, `document.documentElement.getAttribute("data-theme")`), "the chosen theme survives navigation")
	p.do(chromedp.Click(chromedp.CSS("#theme-toggle")))

	// A student signs in and lands on the dashboard.
	p.signIn("maria", pw, "/dashboard")
	assert.Equal(t, "Your dashboard", p.text("h1"))
	p.check("dashboard")
	p.do(chromedp.SendKeys(chromedp.CSS("#key-name"), "laptop"))
	p.submit(`form[action="/dashboard/keys"] button`, "#new-key")
	key := strings.TrimSpace(p.text("#new-key"))
	require.True(t, strings.HasPrefix(key, "mr2_"), key)
	assert.Contains(t, p.text("#base-url"), c.DataPlaneURL)
	p.check("dashboard-new-key")

	// The rest of the test's calls share it, axe-core on every console page
	// between them: generous for a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := openaiClient(c, key)
	chat := openai.ChatCompletionNewParams{Model: "sim-chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")}}
	done, err := client.Chat.Completions.New(ctx, chat)
	require.NoError(t, err, c.Logs())
	used := done.Usage.PromptTokens + done.Usage.CompletionTokens
	require.Positive(t, used)

	// The usage counter updates live, without a reload.
	p.open("/dashboard")
	require.Eventually(t, func() bool {
		return strings.TrimSpace(p.text(`[data-field="tokens_used"]`)) == fmt.Sprint(used)
	}, 20*time.Second, 250*time.Millisecond, "live usage shows the %d tokens", used)

	p.do(chromedp.SendKeys(chromedp.CSS("#q-tokens"), "500000"), chromedp.SendKeys(chromedp.CSS("#q-why"), "thesis <b>experiments</b>"))
	p.submit(`form[action="/dashboard/quota"] button`, ".banner.ok")
	assert.Contains(t, p.text("main"), "pending")

	p.submit(`form[action$="/revoke"] button`, ".banner.ok")
	assert.Contains(t, p.text(".banner.ok"), "revoked")
	_, err = client.Chat.Completions.New(ctx, chat)
	var apiErr *openai.Error
	require.ErrorAs(t, err, &apiErr, "the revoked key is refused")
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)

	p.open("/admin")
	assert.Contains(t, p.text("main"), "for administrators and auditors", "a student gets no console")

	// An admin drains the backend in the console; the API reports it.
	a := newPage(t, c.DataPlaneURL)
	a.signIn("ada", pw, "/admin")
	assert.Equal(t, "Admin console", a.text("h1"))
	for _, path := range adminPages {
		a.open(path)
		a.check("admin" + strings.ReplaceAll(strings.TrimPrefix(path, "/admin"), "/", "-"))
	}
	a.open("/admin/requests")
	assert.Contains(t, a.text("main"), "thesis <b>experiments</b>", "user text is shown as text")
	a.submit(`form[action$="/approve"] button`, ".banner.ok")
	a.open("/admin/backends")
	a.submit(`form[action$="/drain"] button`, ".banner.ok")
	// With nothing in flight a drain completes at once: draining, then disabled.
	shown := a.text("tbody tr td .badge")
	assert.Contains(t, []string{"draining", "disabled"}, shown)
	var backends []backendJSON
	code, err := c.AdminJSON(ctx, c.RESTURL, "GET", "/api/admin/backends", nil, &backends)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, backends, 1)
	assert.Equal(t, shown, backends[0].Status, "the API reports the console's drain")
	a.check("admin-backends-drained")

	// Users are managed in the console: create one, deactivate them, and the
	// API agrees; their password no longer signs in.
	a.open("/admin/users")
	// Filled and submitted in one step: the browser posts the page's own form.
	eval[bool](a, `const f = document.querySelector('form[method=post][action="/admin/users"]');
		f.username.value = "newbie"; f.email.value = "newbie@example.edu"; f.password.value = "a long password";
		f.group_id.value = [...f.group_id.options].find(o => o.text === "student").value;
		document.body.dataset.old = "1"; f.requestSubmit(); true`)
	require.Eventually(t, func() bool {
		return eval[bool](a, `document.readyState === "complete" && !!document.body && !document.body.dataset.old`)
	}, 20*time.Second, 100*time.Millisecond)
	require.Contains(t, a.text("main"), "The user was created", a.text("main"))
	assert.Contains(t, a.text("table"), "newbie")
	a.submit(`tr:last-child form[action$="/deactivate"] button`, ".banner.ok")
	var users struct {
		Users []struct {
			GroupName string `json:"group_name"`
			IsActive  bool   `json:"is_active"`
		} `json:"users"`
	}
	code, err = c.AdminJSON(ctx, c.RESTURL, "GET", "/api/admin/users?search=newbie", nil, &users)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, users.Users, 1)
	assert.Equal(t, "student", users.Users[0].GroupName)
	assert.False(t, users.Users[0].IsActive, "deactivated in the console")
	resp, _ := newBrowser(t, c.DataPlaneURL).login("newbie", "a long password")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	p.open("/dashboard")
	assert.Contains(t, p.text("main"), "approved", "the student sees the decision")

	// An auditor sees every console page and no control that changes anything.
	au := newPage(t, c.DataPlaneURL)
	au.signIn("audrey", pw, "/admin")
	for _, path := range adminPages {
		au.open(path)
		controls := eval[int](au, `document.querySelectorAll("main form[method=post] button:not([disabled]), main form[method=post] input[type=submit]:not([disabled])").length`)
		assert.Zero(t, controls, "an auditor finds no enabled change control on %s", path)
		assert.Contains(t, au.text("main"), "Read-only")
	}
	au.open("/admin/backends")
	au.check("auditor-backends")
}

// TestWebOIDCSignInInBrowser signs in through the real OpenID provider's login
// form in Chromium and lands on the dashboard.
//
// Not parallel: the provider's example storage keeps its clients in a
// package-wide map, which another OIDC test's provider reads.
func TestWebOIDCSignInInBrowser(t *testing.T) {
	_, simURL := startSim(t, enginesim.Config{Engine: enginesim.EngineVLLM, Models: []enginesim.ModelSpec{{Name: "sim-chat", ContextLength: 4096}}})
	dpPort := cluster.FreePort(t)
	dataPlane := "http://127.0.0.1:" + dpPort
	issuer := startOpenIDProviderFor(t, "mindrouter-web", dataPlane+"/login/oidc/callback")
	cfg, err := json.Marshal(map[string]any{"providers": []map[string]any{{
		"name": "zitadel", "display_name": "Zitadel", "issuer": issuer, "client_id": "mindrouter-web", "client_secret": "client-secret",
		"redirect_url": dataPlane + "/login/oidc/callback", "default_group": "student",
	}}})
	require.NoError(t, err)
	cfgPath := filepath.Join(t.TempDir(), "oidc.json")
	require.NoError(t, os.WriteFile(cfgPath, cfg, 0o600))
	c := cluster.Start(t, cluster.Options{Backends: []cluster.Backend{{Name: "sim", Engine: "vllm", URL: simURL}},
		ControlPlaneArgs: []string{"-oidc-config", cfgPath}, DataPlanePort: dpPort})

	p := newPage(t, c.DataPlaneURL)
	p.open("/login?next=/dashboard")
	p.check("login-sso")
	p.do(chromedp.Click(chromedp.CSS(`a.sso`)), chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "test-user@127.0.0.1"), chromedp.SendKeys(chromedp.CSS("#password"), "verysecure"),
		chromedp.Submit(chromedp.CSS("#password")))
	require.Eventually(t, func() bool {
		return eval[string](p, `location.pathname`) == "/dashboard"
	}, 20*time.Second, 200*time.Millisecond, "signed in through the provider: %s", c.Logs())
	p.do(chromedp.WaitVisible(chromedp.CSS("h1")))
	assert.Equal(t, "Your dashboard", p.text("h1"))
	assert.Contains(t, p.text("header"), "test-user")
}
