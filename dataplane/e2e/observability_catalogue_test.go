package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
)

// catalogueEntry is one row of a metrics table in docs/observability.md.
type catalogueEntry struct {
	name, kind string
	labels     []string
	// exempt, when not empty, is why the metric may be absent or unmoved after
	// healthy traffic (it moves only on faults or on a timer).
	exempt string
}

// defaultMetric reports whether name is covered by the catalogue's rule for
// process-default metrics (Go runtime, process, promhttp) instead of a row.
func defaultMetric(name string) bool {
	for _, p := range []string{"go_", "process_", "promhttp_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

var (
	catalogueMarker = regexp.MustCompile(`^<!--\s*metrics:\s*([a-z0-9-]+)\s*-->$`)
	backticked      = regexp.MustCompile("`([^`]+)`")
)

// readCatalogue parses docs/observability.md: each process's table follows a
// `<!-- metrics: PROCESS -->` line; its rows are
// | `name` | type | `label`, ... | meaning | exemption |.
func readCatalogue(t *testing.T) map[string]map[string]catalogueEntry {
	t.Helper()
	root, err := cluster.RepoRoot()
	require.NoError(t, err)
	f, err := os.Open(filepath.Join(root, "docs", "observability.md"))
	require.NoError(t, err)
	defer f.Close()
	out := map[string]map[string]catalogueEntry{}
	var process string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if m := catalogueMarker.FindStringSubmatch(text); m != nil {
			process = m[1]
			out[process] = map[string]catalogueEntry{}
			continue
		}
		if process == "" {
			continue
		}
		if !strings.HasPrefix(text, "|") {
			if text != "" && len(out[process]) > 0 {
				process = "" // the table ended
			}
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) < 5 || !strings.HasPrefix(cells[0], "`") {
			continue // header or separator
		}
		e := catalogueEntry{name: strings.Trim(cells[0], "`"), kind: cells[1], exempt: cells[4]}
		for _, m := range backticked.FindAllStringSubmatch(cells[2], -1) {
			e.labels = append(e.labels, m[1])
		}
		sort.Strings(e.labels)
		_, dup := out[process][e.name]
		require.False(t, dup, "docs/observability.md:%d: %s listed twice for %s", line, e.name, process)
		out[process][e.name] = e
	}
	require.NoError(t, sc.Err())
	return out
}

// parseScrape parses a text exposition into metric families.
func parseScrape(t *testing.T, process, body string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err, "%s: /metrics does not parse", process)
	return fams
}

// moved reports whether a family has a series with a non-zero count or value:
// a counter that counted, a histogram or summary that observed. Gauges and
// untyped metrics count as moved when present.
func moved(f *dto.MetricFamily) bool {
	for _, m := range f.GetMetric() {
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			if m.GetCounter().GetValue() > 0 {
				return true
			}
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			if m.GetHistogram().GetSampleCount() > 0 {
				return true
			}
		case dto.MetricType_SUMMARY:
			if m.GetSummary().GetSampleCount() > 0 {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// familyMoved scrapes url and reports whether the family name is exported
// and has moved.
func familyMoved(t *testing.T, url, process, name string) bool {
	t.Helper()
	f, ok := parseScrape(t, process, scrape(t, url))[name]
	return ok && moved(f)
}

// labelNames are the label names a family's series carry.
func labelNames(f *dto.MetricFamily) []string {
	seen := map[string]bool{}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			seen[l.GetName()] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkCatalogue compares each process's scrape with its table: a listed
// metric missing or unmoved (and not exempt), an unlisted metric, or a type or
// label set that differs from the table is a failure naming the process and
// the metric.
func checkCatalogue(t *testing.T, targets []scrapeTarget) {
	cat := readCatalogue(t)
	for _, tg := range targets {
		table, ok := cat[tg.process]
		if !assertf(t, ok, "docs/observability.md has no <!-- metrics: %s --> table", tg.process) {
			continue
		}
		body := scrape(t, tg.url)
		if dir := os.Getenv("MINDROUTER_E2E_METRICS_DUMP"); dir != "" {
			// For writing the catalogue's rows: the scrapes, HELP texts included.
			require.NoError(t, os.WriteFile(filepath.Join(dir, tg.process+".prom"), []byte(body), 0o600))
		}
		fams := parseScrape(t, tg.process, body)
		for name, f := range fams {
			if defaultMetric(name) {
				continue
			}
			e, listed := table[name]
			if !assertf(t, listed, "%s exports %s (%s, labels %v), which docs/observability.md does not list",
				tg.process, name, strings.ToLower(f.GetType().String()), labelNames(f)) {
				continue
			}
			assertf(t, e.kind == strings.ToLower(f.GetType().String()), "%s: %s is a %s, listed as %s",
				tg.process, name, strings.ToLower(f.GetType().String()), e.kind)
			if got := labelNames(f); len(got) > 0 || len(e.labels) > 0 {
				assertf(t, slices.Equal(got, e.labels), "%s: %s has labels %v, listed as %v", tg.process, name, got, e.labels)
			}
		}
		for name, e := range table {
			if e.exempt != "" {
				continue
			}
			f, present := fams[name]
			if !assertf(t, present, "%s: %s is listed but not exported after the traffic (exempt it with a reason if it moves only on faults)", tg.process, name) {
				continue
			}
			assertf(t, moved(f), "%s: %s never moved after the traffic (a %s with no count)", tg.process, name, e.kind)
		}
	}
}

// assertf records a failure (without stopping) when ok is false and reports ok.
func assertf(t *testing.T, ok bool, format string, args ...any) bool {
	t.Helper()
	if !ok {
		t.Errorf(format, args...)
	}
	return ok
}
