package signin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/web"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// Names shared with the control plane and browsers.
const (
	// CookieName is the session cookie, as in the original.
	CookieName = "mindrouter_session"
	// flowCookie binds an OpenID Connect sign-in to the browser that started it.
	flowCookie = "mindrouter_oidc"
	flowPath   = "/login/oidc/"
	// CSRFHeader is the header browsers send the session's CSRF token in.
	CSRFHeader = "X-CSRF-Token"
	// csrfField is the form field that may carry it instead.
	csrfField = "csrf_token"

	sessionMD      = "x-mindrouter-session"
	csrfMD         = "x-mindrouter-csrf"
	clusterTokenMD = "x-mindrouter-cluster-token"

	// maxFormBytes bounds the login and logout forms.
	maxFormBytes = 16 << 10
	// defaultNext is where a browser goes after signing in without a next.
	defaultNext = "/dashboard"
)

// Config configures the handler.
type Config struct {
	// ClusterToken authenticates this replica's SignInService calls.
	ClusterToken string
	// SecureCookies marks the cookie Secure even on plain HTTP (behind a
	// TLS-terminating proxy that does not say X-Forwarded-Proto: https).
	SecureCookies bool
	// Timeout bounds each control-plane call: 10 s.
	Timeout time.Duration
}

// Handler serves /login and /logout.
type Handler struct {
	cfg    Config
	client controlplanev1.SignInServiceClient
	log    *slog.Logger
	mux    *http.ServeMux
}

// New returns the handler over conn, the data plane's control-plane connection.
func New(conn grpc.ClientConnInterface, cfg Config, log *slog.Logger) *Handler {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	h := &Handler{cfg: cfg, client: controlplanev1.NewSignInServiceClient(conn), log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /login", h.page)
	h.mux.HandleFunc("POST /login", h.login)
	h.mux.HandleFunc("POST /logout", h.logout)
	h.mux.HandleFunc("GET /login/oidc/callback", h.oidcCallback)
	h.mux.HandleFunc("GET /login/oidc/{provider}", h.oidcBegin)
	return h
}

// ServeHTTP serves the sign-in routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type pageData struct {
	Error    string
	Username string
	Next     string
}

type provider struct{ Name, DisplayName string }

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, pageData{Next: safeNext(r.URL.Query().Get("next"))})
}

// providers lists the single-sign-on providers for the page; the form works
// without them, so a failure only leaves the buttons out.
func (h *Handler) providers() []provider {
	ctx, cancel := h.callCtx(context.Background())
	defer cancel()
	resp, err := h.client.ListProviders(ctx, &controlplanev1.ListProvidersRequest{})
	if err != nil {
		h.log.Warn("listing sign-in providers failed", slog.Any("error", err))
		return nil
	}
	out := make([]provider, len(resp.GetProviders()))
	for i, p := range resp.GetProviders() {
		out[i] = provider{Name: p.GetName(), DisplayName: p.GetDisplayName()}
	}
	return out
}

func (h *Handler) render(w http.ResponseWriter, code int, d pageData) {
	l := web.Login{Error: d.Error, Username: d.Username, Next: d.Next}
	for _, p := range h.providers() {
		l.Providers = append(l.Providers, cpclient.Provider{Name: p.Name, DisplayName: p.DisplayName})
	}
	if err := web.RenderLogin(w, code, l); err != nil {
		h.log.Warn("rendering the login page failed", slog.Any("error", err))
	}
}

// login checks the form with the control plane and sets the session cookie.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	wantsJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
	if !sameOrigin(r) {
		h.fail(w, wantsJSON, http.StatusForbidden, "cross-site sign-in refused", pageData{})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.fail(w, wantsJSON, http.StatusBadRequest, "the form could not be read", pageData{})
		return
	}
	d := pageData{Username: r.PostForm.Get("username"), Next: safeNext(r.PostForm.Get("next"))}
	ctx, cancel := h.callCtx(r.Context())
	defer cancel()
	resp, err := h.client.PasswordLogin(ctx, &controlplanev1.PasswordLoginRequest{
		Username: d.Username, Password: r.PostForm.Get("password"), ClientIp: clientIP(r), UserAgent: r.UserAgent(),
	})
	if err != nil {
		code, msg := httpError(err)
		if wait := retryAfter(err); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		}
		h.fail(w, wantsJSON, code, msg, d)
		return
	}
	h.setSession(w, r, resp)
	if wantsJSON {
		writeJSON(w, http.StatusOK, map[string]any{
			"csrf_token": resp.GetCsrfToken(), "expires_at": resp.GetExpiresAt().AsTime().UTC().Format(time.RFC3339),
		})
		return
	}
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (h *Handler) setSession(w http.ResponseWriter, r *http.Request, resp *controlplanev1.PasswordLoginResponse) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: resp.GetSessionToken(), Path: "/",
		Expires: resp.GetExpiresAt().AsTime(), HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode,
	})
}

// oidcBegin sends the browser to the provider, holding the flow's binding in
// a short-lived cookie.
func (h *Handler) oidcBegin(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.callCtx(r.Context())
	defer cancel()
	resp, err := h.client.BeginOIDC(ctx, &controlplanev1.BeginOIDCRequest{
		Provider: r.PathValue("provider"), Next: safeNext(r.URL.Query().Get("next")),
	})
	if err != nil {
		code, msg := httpError(err)
		if status.Code(err) == codes.NotFound {
			code = http.StatusNotFound
		}
		h.fail(w, false, code, msg, pageData{})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: resp.GetBinding(), Path: flowPath,
		MaxAge: int(resp.GetTtlSeconds()), HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, resp.GetAuthorizationUrl(), http.StatusFound)
}

// oidcCallback completes the flow the provider sends the browser back from.
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: "", Path: flowPath, MaxAge: -1, HttpOnly: true,
		Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	if e := q.Get("error"); e != "" {
		h.fail(w, false, http.StatusUnauthorized, "the sign-in provider refused: "+truncate(e, 100), pageData{})
		return
	}
	binding := ""
	if c, err := r.Cookie(flowCookie); err == nil {
		binding = c.Value
	}
	ctx, cancel := h.callCtx(r.Context())
	defer cancel()
	resp, err := h.client.CompleteOIDC(ctx, &controlplanev1.CompleteOIDCRequest{
		State: q.Get("state"), Code: q.Get("code"), Binding: binding, ClientIp: clientIP(r), UserAgent: r.UserAgent(),
	})
	if err != nil {
		code, msg := httpError(err)
		h.fail(w, false, code, msg, pageData{})
		return
	}
	h.setSession(w, r, resp.GetSession())
	http.Redirect(w, r, safeNext(resp.GetNext()), http.StatusSeeOther)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// logout ends the session (everywhere=1: every session of the user) and
// clears the cookie. The session's CSRF token must come with it.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	_ = r.ParseForm()
	csrf := r.Header.Get(CSRFHeader)
	if csrf == "" {
		csrf = r.PostForm.Get(csrfField)
	}
	var ended int32
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		ctx, cancel := h.callCtx(r.Context())
		defer cancel()
		resp, err := h.client.Logout(ctx, &controlplanev1.LogoutRequest{
			SessionToken: c.Value, CsrfToken: csrf, Everywhere: r.PostForm.Get("everywhere") == "1",
		})
		if err != nil {
			code, msg := httpError(err)
			writeJSON(w, code, map[string]any{"error": msg})
			return
		}
		ended = resp.GetSessionsEnded()
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	// A page's sign-out form names where to go next; other clients get JSON.
	if next := r.PostForm.Get("next"); next != "" {
		http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions_ended": ended})
}

func (h *Handler) fail(w http.ResponseWriter, wantsJSON bool, code int, msg string, d pageData) {
	if wantsJSON {
		writeJSON(w, code, map[string]any{"error": msg})
		return
	}
	d.Error = msg
	h.render(w, code, d)
}

func (h *Handler) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	return metadata.AppendToOutgoingContext(ctx, clusterTokenMD, h.cfg.ClusterToken), cancel
}

func (h *Handler) secure(r *http.Request) bool {
	return h.cfg.SecureCookies || r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// Metadata turns a browser's session cookie and CSRF header into the gRPC
// metadata the control plane reads; it is the REST gateway's metadata
// annotator. Requests without a cookie get none.
func Metadata(_ context.Context, r *http.Request) metadata.MD {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	md := metadata.Pairs(sessionMD, c.Value)
	if v := r.Header.Get(CSRFHeader); v != "" {
		md.Set(csrfMD, v)
	}
	return md
}

// httpError turns a control-plane refusal into a status and a message fit for
// the page; transport failures say only that the service is unavailable.
func httpError(err error) (int, string) {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unauthenticated:
		return http.StatusUnauthorized, st.Message()
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests, st.Message()
	case codes.PermissionDenied:
		return http.StatusForbidden, st.Message()
	case codes.InvalidArgument:
		return http.StatusBadRequest, st.Message()
	}
	return http.StatusServiceUnavailable, "sign-in is unavailable; try again shortly"
}

func retryAfter(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// sameOrigin refuses a form posted from another site: browsers send Origin
// (or Sec-Fetch-Site) with cross-site POSTs; clients that send neither are not
// browsers and are let through.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// safeNext keeps a redirect target on this site: a path, not "//host" or a URL.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || len(next) > 2048 {
		return defaultNext
	}
	return next
}

// clientIP is the connection's peer address (proxies' X-Forwarded-For is not
// trusted: it would let a client pick its own throttling bucket).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
