package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// auditPerPage is the audit pages' page size.
const auditPerPage = 50

// dateRange reads the from and to fields (YYYY-MM-DD, UTC, both days
// included) of a search.
func dateRange(q url.Values) (start, end time.Time, err error) {
	for _, d := range []struct {
		name string
		dst  *time.Time
		add  time.Duration
	}{{"from", &start, 0}, {"to", &end, 24 * time.Hour}} {
		v := strings.TrimSpace(q.Get(d.name))
		if v == "" {
			continue
		}
		t, perr := time.Parse("2006-01-02", v)
		if perr != nil {
			return start, end, badRequest("%q must be a date like 2026-01-31", d.name)
		}
		*d.dst = t.Add(d.add)
	}
	return start, end, nil
}

// auditQuery reads an audit search from the URL.
func auditQuery(q url.Values) (cpclient.AuditQuery, error) {
	start, end, err := dateRange(q)
	t := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	return cpclient.AuditQuery{Username: t("user"), Model: t("model"), Status: t("status"), Surface: t("surface"), Text: t("text"),
		Start: start, End: end}, err
}

func choices(current string, values ...string) []option {
	out := []option{{Value: "", Label: "Any"}}
	for _, v := range values {
		out = append(out, option{Value: v, Label: v, Selected: v == current})
	}
	return out
}

func dateFields(q url.Values) []field {
	return []field{{Name: "from", Label: "From (UTC day)", Type: "date", Value: q.Get("from")},
		{Name: "to", Label: "To (UTC day, included)", Type: "date", Value: q.Get("to")}}
}

// cursorPager links the next page of a cursor-paged search and back to the first.
func cursorPager(path string, q url.Values, shown int, next string) *pager {
	p := &pager{Summary: fmt.Sprintf("%d shown, newest first.", shown)}
	if next != "" {
		p.Next = pageLink(path, q, "cursor", next)
	}
	if q.Get("cursor") != "" {
		first := url.Values{}
		for k, v := range q {
			if k != "cursor" {
				first[k] = v
			}
		}
		p.Prev, p.PrevLabel = pageLink(path, first, "page", "1"), "First page"
	}
	return p
}

// auditPage searches the audit trail (by user, model, status, surface, words
// and days) and links each request's detail and the exports.
func (h *Handler) auditPage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	q := r.URL.Query()
	aq, err := auditQuery(q)
	if err != nil {
		return tablePage{}, err
	}
	recs, next, err := h.cp.AuditRecords(r.Context(), c, aq, q.Get("cursor"), auditPerPage)
	if err != nil {
		return tablePage{}, err
	}
	t := table{ID: "audit-records", Caption: "Requests",
		Columns: []string{"Request", "Received", "User", "Model", "Surface", "Status", "Tokens in / out", "Total"}}
	for _, rec := range recs {
		t.Rows = append(t.Rows, row{Cells: []cell{{Text: rec.RequestID, Link: "/admin/audit/records/" + url.PathEscape(rec.RequestID)},
			when(rec.CreatedAt), txt(rec.Username), txt(rec.Model), txt(rec.Surface + " " + rec.Endpoint),
			txt(fmt.Sprintf("%s (%d)", rec.Status, rec.StatusCode)), txt(fmt.Sprintf("%d / %d", rec.PromptTokens, rec.CompletionTokens)),
			txt(fmt.Sprintf("%d ms", rec.TotalMS))}})
	}
	search := form{ID: "audit-search", Title: "Search requests", Action: "/admin/audit", Method: "get", Submit: "Search", Class: "secondary",
		Fields: append([]field{{Name: "user", Label: "Username", Value: aq.Username, MaxLength: 64},
			{Name: "model", Label: "Model", Value: aq.Model, MaxLength: 255},
			{Name: "status", Label: "Status", Type: "select", Options: choices(aq.Status, "completed", "failed", "cancelled")},
			{Name: "surface", Label: "API", Type: "select", Options: choices(aq.Surface, "openai", "anthropic", "ollama")},
			{Name: "text", Label: "Words in the prompt or the answer", Type: "search", Value: aq.Text, MaxLength: 200}}, dateFields(q)...)}
	export := url.Values{}
	for k, v := range q {
		if k != "cursor" && k != "done" {
			export[k] = v
		}
	}
	links := []navItem{{URL: pageLink("/admin/audit/export", export, "format", "csv"), Label: "Download as CSV"},
		{URL: pageLink("/admin/audit/export", export, "format", "jsonl"), Label: "Download as JSON Lines"},
		{URL: pageLink("/admin/audit/export", pageValues(export, "content", "1"), "format", "jsonl"), Label: "Download with prompts and answers (recorded)"}}
	return tablePage{Links: links, Search: []form{search}, Tables: []table{t}, Pager: cursorPager("/admin/audit", q, len(recs), next)}, nil
}

func pageValues(q url.Values, k, v string) url.Values {
	out := url.Values{}
	for key, vals := range q {
		out[key] = vals
	}
	out.Set(k, v)
	return out
}

// indentJSON lays JSON out for reading; anything else is shown as it is.
func indentJSON(s string) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(s), "", "  "); err != nil {
		return s
	}
	return buf.String()
}

func ms(n int64) string { return fmt.Sprintf("%d ms", n) }

// auditRecordPage shows one request in full: the control plane records the
// view as an admin action (audit.read_content) before it answers.
func (h *Handler) auditRecordPage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	id := r.PathValue("id")
	rec, arts, err := h.cp.AuditRecord(r.Context(), c, id)
	if err != nil {
		return tablePage{}, err
	}
	backends := make([]string, len(rec.BackendIDs))
	for i, b := range rec.BackendIDs {
		backends[i] = strconv.FormatInt(b, 10)
	}
	structured := "not asked for"
	if rec.StructuredValid != nil {
		structured = map[bool]string{true: "matched the schema", false: "did not match the schema"}[*rec.StructuredValid]
	}
	req := detailList{ID: "audit-request", Title: "Request", Items: []detail{
		{Key: "Request id", Value: rec.RequestID}, {Key: "Received", Value: when(rec.CreatedAt).Text},
		{Key: "User", Value: rec.Username}, {Key: "Group", Value: rec.Group}, {Key: "API key id", Value: strconv.FormatInt(rec.APIKeyID, 10)},
		{Key: "API", Value: rec.Surface + " " + rec.Endpoint}, {Key: "Model", Value: rec.Model}, {Key: "Streaming", Value: yesNo(rec.Streaming)},
		{Key: "Client", Value: rec.ClientIP + " " + rec.UserAgent}, {Key: "Data plane", Value: rec.ReplicaID}}}
	out := detailList{ID: "audit-outcome", Title: "Outcome", Items: []detail{
		{Key: "Status", Value: fmt.Sprintf("%s (HTTP %d)", rec.Status, rec.StatusCode)}, {Key: "Error", Value: rec.Error},
		{Key: "Finish reason", Value: rec.FinishReason}, {Key: "Structured output", Value: structured},
		{Key: "Backends tried (ids, in order)", Value: strings.Join(backends, ", ")}}}
	estimated := ""
	if rec.TokensEstimated {
		estimated = " (estimated: the engine reported none)"
	}
	usage := detailList{ID: "audit-usage", Title: "Usage and timings", Items: []detail{
		{Key: "Prompt tokens", Value: strconv.FormatInt(rec.PromptTokens, 10) + estimated},
		{Key: "Completion tokens", Value: strconv.FormatInt(rec.CompletionTokens, 10) + estimated},
		{Key: "Queue wait", Value: ms(rec.QueueWaitMS)}, {Key: "Time to first token", Value: ms(rec.TTFTMS)}, {Key: "Total", Value: ms(rec.TotalMS)}}}
	content := detailList{ID: "audit-content", Title: "Content"}
	if rec.ContentOmitted {
		content.Items = append(content.Items, detail{Key: "Note", Value: "No content is kept for this request: its group keeps metadata only, or retention purged it."})
	}
	for _, d := range []detail{{Key: "Prompt", Value: rec.PromptText}, {Key: "Answer", Value: rec.ResponseText}, {Key: "Reasoning", Value: rec.Reasoning},
		{Key: "Tool calls", Value: indentJSON(rec.ToolCallsJSON)}, {Key: "Request as sent (canonical JSON)", Value: indentJSON(rec.RequestJSON)}} {
		if d.Value != "" {
			d.Pre = true
			content.Items = append(content.Items, d)
		}
	}
	lists := []detailList{req, out, usage, content}
	if len(arts) > 0 {
		a := detailList{ID: "audit-artifacts", Title: "Attachments"}
		for _, art := range arts {
			v := fmt.Sprintf("%s, %d bytes", art.ContentType, art.SizeBytes)
			if art.Truncated {
				v += " (larger than the cap: not kept)"
			}
			a.Items = append(a.Items, detail{Key: art.SHA256, Value: v})
		}
		lists = append(lists, a)
	}
	links := []navItem{{URL: "/admin/audit", Label: "Back to the search"},
		{URL: "/admin/audit/actions?entity_id=" + url.QueryEscape(rec.RequestID), Label: "Who viewed this record"}}
	return tablePage{Title: "Request " + rec.RequestID, Links: links, Details: lists}, nil
}

// actionsPage lists the admin-action log: every change made through the
// admin API and every read of audit content.
func (h *Handler) actionsPage(r *http.Request, c cpclient.Caller, _ *cpclient.Me) (tablePage, error) {
	q := r.URL.Query()
	start, end, err := dateRange(q)
	if err != nil {
		return tablePage{}, err
	}
	aq := cpclient.AdminActionQuery{Action: strings.TrimSpace(q.Get("action")), EntityType: strings.TrimSpace(q.Get("entity_type")),
		EntityID: strings.TrimSpace(q.Get("entity_id")), Start: start, End: end}
	acts, next, err := h.cp.AdminActions(r.Context(), c, aq, q.Get("cursor"), auditPerPage)
	if err != nil {
		return tablePage{}, err
	}
	t := table{ID: "admin-actions", Caption: "Admin actions", Columns: []string{"When", "Who", "Action", "Entity", "From", "Detail", "Before", "After"}}
	for _, a := range acts {
		t.Rows = append(t.Rows, row{Cells: []cell{when(a.CreatedAt), txt(a.Actor), txt(a.Action), txt(a.EntityType + " " + a.EntityID),
			txt(a.ClientIP), txt(clip(a.Detail)), txt(clip(a.BeforeJSON)), txt(clip(a.AfterJSON))}})
	}
	search := form{ID: "action-search", Title: "Search admin actions", Action: "/admin/audit/actions", Method: "get", Submit: "Search", Class: "secondary",
		Fields: append([]field{{Name: "action", Label: "Action (exact, or a prefix ending in a dot: group.)", Value: aq.Action, MaxLength: 100},
			{Name: "entity_type", Label: "Entity type (user, group, audit_record, …)", Value: aq.EntityType, MaxLength: 100},
			{Name: "entity_id", Label: "Entity id", Value: aq.EntityID, MaxLength: 255}}, dateFields(q)...)}
	return tablePage{Search: []form{search}, Tables: []table{t}, Pager: cursorPager("/admin/audit/actions", q, len(acts), next)}, nil
}

// clip shortens long JSON for a table cell.
func clip(s string) string {
	const most = 300
	if len(s) <= most {
		return s
	}
	cut := most
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// auditExport streams the search's requests as a CSV or JSON Lines download,
// straight from the control plane's stream. Only a same-origin browser may
// start one (an export with content is recorded in the exporter's name).
func (h *Handler) auditExport(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-site export refused", http.StatusForbidden)
		return
	}
	c, me, ok := h.staff(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	aq, err := auditQuery(q)
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	format := q.Get("format")
	if format != "jsonl" {
		format = "csv"
	}
	started := false
	start := func(contentType string) {
		started = true
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="mindrouter-audit-%s.%s"`, time.Now().UTC().Format("20060102-150405"), format))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}
	err = h.cp.ExportAudit(r.Context(), c, aq, format, q.Get("content") == "1", start, w)
	if err == nil {
		return
	}
	if !started {
		h.fail(w, r, me, err)
		return
	}
	// Half sent: the status is gone; cut the connection so that the browser
	// reports a failed download instead of a short file.
	h.log.Warn("an audit export failed midway", slog.Any("error", err))
	panic(http.ErrAbortHandler)
}
