package web

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
)

// energyRanges are the energy page's periods (the API's ranges).
var energyRanges = []telemetryRange{
	{Range: "24h", Label: "24 hours"}, {Range: "7d", Label: "7 days"}, {Range: "30d", Label: "30 days"}, {Range: "365d", Label: "A year"},
}

var energyGroupings = []navItem{{URL: "user", Label: "Per user"}, {URL: "group", Label: "Per group"}, {URL: "model", Label: "Per model"}}

// energyLine is one user's, group's or model's figures summed over the
// period's days, or the total.
type energyLine struct {
	Key                                string
	Requests, Pending, Tokens          int64
	Joules, KWh, Cost, CommercialCost  float64
	JoulesPerToken, Savings, SavingPct float64
}

// energyData is energy.html's data.
type energyData struct {
	Ranges, Groupings []navItem
	Range, GroupBy    string
	GroupLabel        string
	Lines             []energyLine
	Total             energyLine
	Report            cpclient.EnergyReport
	Export            string
}

// energyQuery reads the period and grouping of the energy page and its
// export (the API's defaults for anything else).
func energyQuery(r *http.Request) (rng, by string) {
	rng, by = "30d", "user"
	q := r.URL.Query()
	for _, x := range energyRanges {
		if x.Range == q.Get("range") {
			rng = x.Range
		}
	}
	for _, g := range energyGroupings {
		if g.URL == q.Get("by") {
			by = g.URL
		}
	}
	return rng, by
}

// sumEnergy folds the report's per-day rows into one line per key, largest
// energy first, and the total.
func sumEnergy(rows []cpclient.EnergyRow) ([]energyLine, energyLine) {
	by := map[string]*energyLine{}
	var total energyLine
	total.Key = "Total"
	for _, r := range rows {
		l := by[r.Key]
		if l == nil {
			l = &energyLine{Key: r.Key}
			by[r.Key] = l
		}
		for _, x := range []*energyLine{l, &total} {
			x.Requests += r.Requests
			x.Pending += r.Pending
			x.Tokens += r.PromptTokens + r.CompletionTokens
			x.Joules += r.Joules
			x.KWh += r.KWh
			x.Cost += r.Cost
			x.CommercialCost += r.CommercialCost
		}
	}
	lines := make([]energyLine, 0, len(by))
	for _, l := range by {
		lines = append(lines, finishLine(*l))
	}
	slices.SortFunc(lines, func(a, b energyLine) int {
		return cmp.Or(cmp.Compare(b.Joules, a.Joules), cmp.Compare(a.Key, b.Key))
	})
	return lines, finishLine(total)
}

func finishLine(l energyLine) energyLine {
	if l.Tokens > 0 {
		l.JoulesPerToken = l.Joules / float64(l.Tokens)
	}
	l.Savings = l.CommercialCost - l.Cost
	if l.CommercialCost > 0 {
		l.SavingPct = 100 * l.Savings / l.CommercialCost
	}
	return l
}

func (h *Handler) energyPage(w http.ResponseWriter, r *http.Request) {
	c, me, ok := h.staff(w, r)
	if !ok {
		return
	}
	rng, by := energyQuery(r)
	rep, err := h.cp.EnergyReport(r.Context(), c, rng, by)
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	d := energyData{Range: rng, GroupBy: by, Report: rep, Export: "/admin/energy/export?range=" + rng + "&by=" + by}
	for _, x := range energyRanges {
		d.Ranges = append(d.Ranges, navItem{URL: "/admin/energy?range=" + x.Range + "&by=" + by, Label: x.Label, Current: x.Range == rng})
	}
	for _, g := range energyGroupings {
		d.Groupings = append(d.Groupings, navItem{URL: "/admin/energy?range=" + rng + "&by=" + g.URL, Label: g.Label, Current: g.URL == by})
		if g.URL == by {
			d.GroupLabel = map[string]string{"user": "User", "group": "Group", "model": "Model"}[by]
		}
	}
	d.Lines, d.Total = sumEnergy(rep.Rows)
	h.render(w, r, http.StatusOK, "energy", page{Title: "Energy and cost", Nav: "admin", Me: me, Data: d, AdminNav: adminNav("/admin/energy")})
}

// energyExport downloads the report's per-day rows as CSV. The control
// plane has no export of the report; this writes the rows GetEnergyReport
// returned, nothing else.
func (h *Handler) energyExport(w http.ResponseWriter, r *http.Request) {
	c, me, ok := h.staff(w, r)
	if !ok {
		return
	}
	rng, by := energyQuery(r)
	rep, err := h.cp.EnergyReport(r.Context(), c, rng, by)
	if err != nil {
		h.fail(w, r, me, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="mindrouter-energy-%s-%s.csv"`, by, rng))
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"day", by, "requests", "pending", "prompt_tokens", "completion_tokens", "joules", "kwh", "joules_per_token", "cost", "commercial_cost"})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, x := range rep.Rows {
		_ = cw.Write([]string{x.Day.UTC().Format(time.DateOnly), csvSafe(x.Key), strconv.FormatInt(x.Requests, 10), strconv.FormatInt(x.Pending, 10),
			strconv.FormatInt(x.PromptTokens, 10), strconv.FormatInt(x.CompletionTokens, 10), f(x.Joules), f(x.KWh), f(x.JoulesPerToken), f(x.Cost), f(x.CommercialCost)})
	}
	cw.Flush()
}

// csvSafe keeps a spreadsheet from reading a user-chosen name as a formula.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r') {
		return "'" + s
	}
	return s
}
