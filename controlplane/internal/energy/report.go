package energy

import (
	"cmp"
	"slices"
	"time"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// JoulesPerKWh converts energy units.
const JoulesPerKWh = 3.6e6

// Prices turn energy into money and set the commercial comparison, all in one
// currency the operator chooses.
type Prices struct {
	// PerKWh is the price of a kWh of electricity.
	PerKWh float64
	// PromptPerMillion and CompletionPerMillion are a commercial API's prices per
	// million prompt and generated tokens.
	PromptPerMillion     float64
	CompletionPerMillion float64
}

// The groupings of a report.
const (
	ByUser  = "user"
	ByGroup = "group"
	ByModel = "model"
)

// Row is one day's figures for one user, group or model. Days are UTC.
type Row struct {
	Day              time.Time
	Key              string
	Requests         int64
	PromptTokens     int64
	CompletionTokens int64
	Joules           float64
	// Pending counts requests whose energy is not attributed yet (not in Joules).
	Pending        int64
	KWh            float64
	Cost           float64
	JoulesPerToken float64
	// CommercialCost is what the same tokens would cost at the commercial prices.
	CommercialCost float64
}

// Report sums requests per UTC day and key (ByUser, ByGroup or ByModel), ordered by
// day, then key.
func Report(reqs []store.RequestUsage, by string, p Prices) []Row {
	type k struct {
		day time.Time
		key string
	}
	rows := map[k]*Row{}
	for _, r := range reqs {
		key := r.Username
		switch by {
		case ByGroup:
			key = r.Group
		case ByModel:
			key = r.Model
		}
		kk := k{day: r.EndedAt.UTC().Truncate(24 * time.Hour), key: key}
		row := rows[kk]
		if row == nil {
			row = &Row{Day: kk.day, Key: key}
			rows[kk] = row
		}
		row.Requests++
		row.PromptTokens += r.PromptTokens
		row.CompletionTokens += r.CompletionTokens
		if r.EnergyJoules == nil {
			row.Pending++
		} else {
			row.Joules += *r.EnergyJoules
		}
	}
	out := make([]Row, 0, len(rows))
	for _, row := range rows {
		row.KWh = row.Joules / JoulesPerKWh
		row.Cost = row.KWh * p.PerKWh
		if t := row.PromptTokens + row.CompletionTokens; t > 0 {
			row.JoulesPerToken = row.Joules / float64(t)
		}
		row.CommercialCost = float64(row.PromptTokens)/1e6*p.PromptPerMillion + float64(row.CompletionTokens)/1e6*p.CompletionPerMillion
		out = append(out, *row)
	}
	slices.SortFunc(out, func(a, b Row) int { return cmp.Or(a.Day.Compare(b.Day), cmp.Compare(a.Key, b.Key)) })
	return out
}
