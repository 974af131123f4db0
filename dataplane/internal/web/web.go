package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// Control is what the pages need from the control plane (cpclient.Web).
type Control interface {
	Status(ctx context.Context) (cpclient.ClusterStatus, error)
	WhoAmI(ctx context.Context, c cpclient.Caller) (cpclient.Me, error)
	MyUsage(ctx context.Context, c cpclient.Caller) (cpclient.Usage, error)
	MyKeys(ctx context.Context, c cpclient.Caller) ([]cpclient.APIKey, error)
	CreateMyKey(ctx context.Context, c cpclient.Caller, name string) (cpclient.APIKey, string, error)
	RenewMyKey(ctx context.Context, c cpclient.Caller, id int64) error
	RevokeMyKey(ctx context.Context, c cpclient.Caller, id int64) error
	MyQuotaRequests(ctx context.Context, c cpclient.Caller) ([]cpclient.QuotaRequest, error)
	RequestQuota(ctx context.Context, c cpclient.Caller, tokens int64, justification string) error
	Admin
	Console
	System
	Catalog
	Telemetry
}

// Config configures the pages.
type Config struct {
	// Version is shown in the footer and busts the static files' caches.
	Version string
	// SessionCookie is the name of the session cookie (signin.CookieName).
	SessionCookie string
	// Chat, when set, serves the chat page (chat.go).
	Chat *Chat
}

// Handler serves the pages and their static files.
type Handler struct {
	cp    Control
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var funcs = template.FuncMap{
	"date":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"budget":  budgetText,
	"limit":   func(n int) string { return limitText(int64(n)) },
	"percent": percentUsed,
	"inc":     func(n int) int { return n + 1 },
	"kwh":     figure,
	"money":   figure,
	"money4":  func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) },
}

// parsePage parses one page with the layout and the partials.
func parsePage(name string) (*template.Template, error) {
	t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
	if err != nil {
		return nil, fmt.Errorf("parse page %s: %w", name, err)
	}
	return t, nil
}

// loginPage is the sign-in page, rendered for package signin by RenderLogin.
var loginPage = template.Must(parsePage("login"))

// Login is the sign-in page's data.
type Login struct {
	Error, Username, Next string
	Providers             []cpclient.Provider
}

// RenderLogin writes the sign-in page in the pages' layout, with the pages'
// security headers.
func RenderLogin(w http.ResponseWriter, code int, d Login) error {
	var buf bytes.Buffer
	if err := loginPage.ExecuteTemplate(&buf, "layout", page{Title: "Sign in", Nav: "login", Path: "/", Error: d.Error, Data: d}); err != nil {
		return fmt.Errorf("render the login page: %w", err)
	}
	SecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, err := w.Write(buf.Bytes())
	return err
}

// Routes lists the path patterns the handler serves, for the server's mux.
var Routes = []string{"/{$}", "/models", "/status.json", "/static/", "/dashboard", "/dashboard/", "/admin", "/admin/", "/chat", "/chat/"}

// New returns the pages over cp.
func New(cp Control, cfg Config, log *slog.Logger) (*Handler, error) {
	if cfg.SessionCookie == "" {
		cfg.SessionCookie = "mindrouter_session"
	}
	h := &Handler{cp: cp, cfg: cfg, log: log, mux: http.NewServeMux(), pages: map[string]*template.Template{}}
	for _, name := range []string{"status", "models", "dashboard", "admin", "table", "error", "chat", "telemetry", "energy"} {
		t, err := parsePage(name)
		if err != nil {
			return nil, err
		}
		h.pages[name] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("static files: %w", err)
	}
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", staticFiles(static)))
	h.mux.HandleFunc("GET /{$}", h.status)
	h.mux.HandleFunc("GET /models", h.models)
	h.mux.HandleFunc("GET /status.json", h.statusJSON)
	h.routeDashboard()
	h.routeAdmin()
	h.routeChat()
	return h, nil
}

// ServeHTTP serves the pages with the security headers every page carries.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SecurityHeaders(w.Header())
	h.mux.ServeHTTP(w, r)
}

// CSP is the pages' Content-Security-Policy: scripts, styles, images and
// fetches from this origin only; no inline script or style, no framing, forms
// post only here.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// SecurityHeaders sets the headers every page (and the sign-in page) carries.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

// page is what the layout renders.
type page struct {
	Title, Nav, Path string
	Version          string
	Me               *cpclient.Me
	Staff, CanWrite  bool
	// Charts loads charts.css (the telemetry page).
	Charts        bool
	Error, Notice string
	AdminNav      []navItem
	Data          any
}

type navItem struct {
	URL, Label string
	Current    bool
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	p.Version, p.Path = h.cfg.Version, r.URL.Path
	if p.Me != nil {
		p.Staff = p.Me.Role == "admin" || p.Me.Role == "auditor"
		p.CanWrite = p.Me.Role == "admin"
	}
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.log.Error("rendering a page failed", slog.String("page", name), slog.Any("error", err))
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// fail renders the error page with err's status and message.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, me *cpclient.Me, err error) {
	code := cpclient.HTTPStatus(err)
	msg := "something went wrong"
	var we *cpclient.WebError
	if errors.As(err, &we) {
		msg = we.Message
	} else {
		h.log.Error("page failed", slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	h.render(w, r, code, "error", page{Title: http.StatusText(code), Me: me, Data: msg})
}

// caller is the browser's session, if any.
func (h *Handler) caller(r *http.Request) (cpclient.Caller, bool) {
	c, err := r.Cookie(h.cfg.SessionCookie)
	if err != nil || c.Value == "" {
		return cpclient.Caller{}, false
	}
	return cpclient.Caller{Session: c.Value}, true
}

// optionalMe is the signed-in person on a public page; nil when nobody is
// signed in or the session is no longer valid.
func (h *Handler) optionalMe(r *http.Request) *cpclient.Me {
	c, ok := h.caller(r)
	if !ok {
		return nil
	}
	me, err := h.cp.WhoAmI(r.Context(), c)
	if err != nil {
		return nil
	}
	return &me
}

// signedIn resolves the session of a page that needs one; without one it
// sends the browser to the sign-in page and reports false.
func (h *Handler) signedIn(w http.ResponseWriter, r *http.Request) (cpclient.Caller, *cpclient.Me, bool) {
	c, ok := h.caller(r)
	if ok {
		me, err := h.cp.WhoAmI(r.Context(), c)
		if err == nil {
			return c, &me, true
		}
		if cpclient.HTTPStatus(err) != http.StatusUnauthorized {
			h.fail(w, r, nil, err)
			return c, nil, false
		}
	}
	if r.Method != http.MethodGet || strings.HasSuffix(r.URL.Path, ".json") {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return c, nil, false
	}
	http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	return c, nil, false
}

// maxFormBytes bounds every form the pages accept.
const maxFormBytes = 64 << 10

// changing checks a state-changing form: same origin, a readable form of
// bounded size, and the session's CSRF token (checked here, in constant time,
// and again by the control plane, which owns it). It returns the caller with
// the token for the call.
func (h *Handler) changing(w http.ResponseWriter, r *http.Request) (cpclient.Caller, *cpclient.Me, bool) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site form refused", http.StatusForbidden)
		return cpclient.Caller{}, nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return cpclient.Caller{}, nil, false
	}
	c, me, ok := h.signedIn(w, r)
	if !ok {
		return c, nil, false
	}
	token := r.PostForm.Get("csrf_token")
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(me.CSRF)) != 1 {
		http.Error(w, "the form has expired; reload the page and try again", http.StatusForbidden)
		return c, nil, false
	}
	c.CSRF = token
	return c, me, true
}

// sameOrigin refuses a form posted from another site (browsers send
// Sec-Fetch-Site or Origin with cross-site POSTs).
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return origin == ""
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// baseURL is the address clients reach this gateway at, as the browser did.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
