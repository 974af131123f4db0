package sim

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Comparison is one scenario run under every policy.
type Comparison struct {
	Scenario Scenario
	Results  []Result // in the order of Policies (the oracle only with interactive users)
}

// Policies are the policies a Comparison runs: the algorithm, the FIFO baseline
// and, where a scenario has interactive users, the interactive-first oracle as a
// reference.
var Policies = []Policy{WDRR, FIFO, InteractiveFirst}

// Compare runs every scenario under every policy.
func Compare(c Cluster, scenarios []Scenario, seed uint64) ([]Comparison, error) {
	out := make([]Comparison, 0, len(scenarios))
	for _, s := range scenarios {
		cmp := Comparison{Scenario: s}
		for _, p := range Policies {
			if p == InteractiveFirst && !hasInteractive(s) {
				continue // it would be FIFO
			}
			res, err := Run(c, s, p, seed)
			if err != nil {
				return nil, err
			}
			cmp.Results = append(cmp.Results, res)
		}
		out = append(out, cmp)
	}
	return out, nil
}

func hasInteractive(s Scenario) bool {
	for _, u := range s.Users {
		if u.Interactive {
			return true
		}
	}
	return false
}

// WriteMarkdown renders the comparisons as markdown tables: a summary, the
// interactive users' waits, and each user's share against its weighted share.
func WriteMarkdown(w io.Writer, c Cluster, seed uint64, cmps []Comparison) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Simulated cluster: %d backends x %d slots, %.0f prompt / %.0f output tokens per second per slot; seed %d.\n\n",
		c.Backends, c.SlotsPerBackend, c.PrefillTPS, c.DecodeTPS, seed)
	for _, cmp := range cmps {
		fmt.Fprintf(&b, "- **%s** (%s): %s.\n", cmp.Scenario.Name, dur(cmp.Scenario.Duration), cmp.Scenario.Description)
	}
	b.WriteString("\n| Scenario | Policy | Jain, weighted (contended windows) | Utilisation | Interactive wait p50 | p95 | max | Automated tok/s | Waits > 150 s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, cmp := range cmps {
		for _, r := range cmp.Results {
			jain := fmt.Sprintf("– (0 of %d)", r.Windows)
			if r.JainWindows > 0 {
				jain = fmt.Sprintf("%.3f (%d of %d)", r.Jain, r.JainWindows, r.Windows)
			}
			p50, p95, mx := "–", "–", "–"
			if r.Interactive.N > 0 {
				p50, p95, mx = secs(r.Interactive.P50), secs(r.Interactive.P95), secs(r.Interactive.Max)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %.1f%% | %s | %s | %s | %.0f | %d |\n",
				r.Scenario, r.Policy, jain, 100*r.Utilisation, p50, p95, mx, r.BatchTokensPerSecond, r.OverTimeout)
		}
	}
	for _, cmp := range cmps {
		writeUsers(&b, cmp)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeUsers adds a per-user table: weighted share, service share and waits.
func writeUsers(b *strings.Builder, cmp Comparison) {
	if len(cmp.Scenario.Users) < 2 {
		return
	}
	var sumW int
	for _, u := range cmp.Scenario.Users {
		sumW += u.Weight
	}
	fmt.Fprintf(b, "\n**%s**, per user (share = fraction of all dispatched tokens; weighted share = weight / sum of weights):\n\n", cmp.Scenario.Name)
	results := make([]Result, 0, len(cmp.Results))
	for _, r := range cmp.Results {
		if r.Policy != InteractiveFirst { // a reference for waits, not for shares
			results = append(results, r)
		}
	}
	b.WriteString("| User | Weight | Weighted share |")
	for _, r := range results {
		fmt.Fprintf(b, " %s share | %s requests | %s wait p50 / p95 |", r.Policy, r.Policy, r.Policy)
	}
	b.WriteString("\n|---|---|---|" + strings.Repeat("---|---|---|", len(results)) + "\n")
	for i, u := range cmp.Scenario.Users {
		fmt.Fprintf(b, "| %s | %d | %.1f%% |", u.Name, u.Weight, 100*float64(u.Weight)/float64(sumW))
		for _, r := range results {
			ur := r.Users[i]
			fmt.Fprintf(b, " %.1f%% | %d | %s / %s |", 100*ur.Share, ur.Requests, secs(ur.Wait.P50), secs(ur.Wait.P95))
		}
		b.WriteString("\n")
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func dur(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%d h", d/time.Hour)
	}
	return d.String()
}
