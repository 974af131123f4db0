package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

func (h *Handler) routeDashboard() {
	h.mux.HandleFunc("GET /dashboard", h.dashboard)
	h.mux.HandleFunc("GET /dashboard/usage.json", h.usageJSON)
	h.mux.HandleFunc("POST /dashboard/keys", h.createKey)
	h.mux.HandleFunc("POST /dashboard/keys/{id}/{action}", h.changeKey)
	h.mux.HandleFunc("POST /dashboard/quota", h.requestQuota)
}

type dashboardData struct {
	U                  cpclient.Usage
	Keys               []cpclient.APIKey
	Requests           []cpclient.QuotaRequest
	BaseURL, Model     string
	NewKey, NewKeyName string
}

// notices are the messages a redirect after a change may name (?done=...):
// fixed texts, so that no user text is reflected from the URL.
var notices = map[string]string{
	"renewed": "The key was renewed.", "revoked": "The key was revoked.", "requested": "Your request was filed; an administrator will review it.",
	"enable": "The backend was enabled.", "disable": "The backend was disabled.", "drain": "The backend is draining: it takes no new requests.",
	"refresh": "The backend was probed again.", "registered": "The backend was registered.", "approved": "The request was approved.",
	"denied": "The request was denied.", "key-revoked": "The key was revoked.", "user-created": "The user was created.",
	"activated": "The user was activated.", "deactivated": "The user was deactivated: their keys and sessions no longer work.",
	"renamed": "The conversation was renamed.", "conversation-deleted": "The conversation was deleted.",
}

func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request) {
	c, me, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	h.renderDashboard(w, r, c, me, http.StatusOK, "", "", notices[r.URL.Query().Get("done")])
}

func (h *Handler) renderDashboard(w http.ResponseWriter, r *http.Request, c cpclient.Caller, me *cpclient.Me, code int, newKey, newKeyName, notice string) {
	ctx := r.Context()
	d := dashboardData{BaseURL: baseURL(r), Model: "MODEL", NewKey: newKey, NewKeyName: newKeyName}
	var err error
	if d.U, err = h.cp.MyUsage(ctx, c); err != nil {
		h.fail(w, r, me, err)
		return
	}
	if d.Keys, err = h.cp.MyKeys(ctx, c); err != nil {
		h.fail(w, r, me, err)
		return
	}
	if d.Requests, err = h.cp.MyQuotaRequests(ctx, c); err != nil {
		h.fail(w, r, me, err)
		return
	}
	if s, err := h.cp.Status(ctx); err == nil {
		for _, m := range s.Models {
			if m.HealthyBackends > 0 {
				d.Model = m.Name
				break
			}
		}
	}
	errText := ""
	if code >= 400 {
		errText, notice = notice, ""
	}
	h.render(w, r, code, "dashboard", page{Title: "Dashboard", Nav: "dashboard", Me: me, Data: d, Notice: notice, Error: errText})
}

func (h *Handler) usageJSON(w http.ResponseWriter, r *http.Request) {
	c, _, ok := h.signedIn(w, r)
	if !ok {
		return
	}
	u, err := h.cp.MyUsage(r.Context(), c)
	if err != nil {
		writeJSON(w, cpclient.HTTPStatus(err), map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tokens_used": u.TokensUsed, "lifetime_tokens": u.LifetimeTokensUsed, "budget": budgetText(u.TokenBudget),
		"percent": percentUsed(u), "requests_last_minute": u.RequestsLastMinute, "in_flight": u.InFlight,
	})
}

// createKey mints a key and shows it once, in this response: the page is
// rendered directly (not redirected to), so the secret is never in a URL.
func (h *Handler) createKey(w http.ResponseWriter, r *http.Request) {
	c, me, ok := h.changing(w, r)
	if !ok {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if name == "" || len(name) > 100 {
		h.renderDashboard(w, r, c, me, http.StatusBadRequest, "", "", "A key needs a name of 1 to 100 characters.")
		return
	}
	k, full, err := h.cp.CreateMyKey(r.Context(), c, name)
	if err != nil {
		h.renderDashboard(w, r, c, me, cpclient.HTTPStatus(err), "", "", err.Error())
		return
	}
	h.renderDashboard(w, r, c, me, http.StatusOK, full, k.Name, "")
}

func (h *Handler) changeKey(w http.ResponseWriter, r *http.Request) {
	c, me, ok := h.changing(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "no such key", http.StatusNotFound)
		return
	}
	switch r.PathValue("action") {
	case "renew":
		err = h.cp.RenewMyKey(r.Context(), c, id)
	case "revoke":
		err = h.cp.RevokeMyKey(r.Context(), c, id)
	default:
		http.Error(w, "unknown action", http.StatusNotFound)
		return
	}
	if err != nil {
		h.renderDashboard(w, r, c, me, cpclient.HTTPStatus(err), "", "", err.Error())
		return
	}
	http.Redirect(w, r, "/dashboard?done="+map[string]string{"renew": "renewed", "revoke": "revoked"}[r.PathValue("action")], http.StatusSeeOther)
}

func (h *Handler) requestQuota(w http.ResponseWriter, r *http.Request) {
	c, me, ok := h.changing(w, r)
	if !ok {
		return
	}
	tokens, err := strconv.ParseInt(strings.TrimSpace(r.PostForm.Get("requested_tokens")), 10, 64)
	if err != nil || tokens <= 0 {
		h.renderDashboard(w, r, c, me, http.StatusBadRequest, "", "", "Ask for a whole number of tokens above zero.")
		return
	}
	if err := h.cp.RequestQuota(r.Context(), c, tokens, strings.TrimSpace(r.PostForm.Get("justification"))); err != nil {
		h.renderDashboard(w, r, c, me, cpclient.HTTPStatus(err), "", "", err.Error())
		return
	}
	http.Redirect(w, r, "/dashboard?done=requested", http.StatusSeeOther)
}
