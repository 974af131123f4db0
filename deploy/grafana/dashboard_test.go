// Package grafana holds the Grafana dashboard (mindrouter.json); its test checks
// that every metric the dashboard queries is one the code defines.
package grafana

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

type dashboard struct {
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Type    string   `json:"type"`
	Title   string   `json:"title"`
	Panels  []panel  `json:"panels"`
	Targets []target `json:"targets"`
}

type target struct {
	Expr string `json:"expr"`
}

var metricName = regexp.MustCompile(`\bmindrouter_[a-z0-9_]+`)

// histogramSeries are the suffixes Prometheus adds to a histogram's name.
var histogramSeries = []string{"_bucket", "_sum", "_count"}

// TestDashboardMetricsExist parses the dashboard and fails on a query naming a
// metric that no Go source file of the repository defines (as a string literal).
func TestDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile("mindrouter.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("mindrouter.json: %v", err)
	}
	defined := definedMetrics(t, filepath.Join("..", ".."))
	if len(defined) < 20 {
		t.Fatalf("found only %d metric names in the sources: is the repository root ../..?", len(defined))
	}
	queried := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				names := metricName.FindAllString(tg.Expr, -1)
				if len(names) == 0 {
					t.Errorf("panel %q: query %q names no MindRouter metric", p.Title, tg.Expr)
				}
				for _, n := range names {
					queried++
					if !defined[base(n, defined)] {
						t.Errorf("panel %q: metric %s is not defined in the code", p.Title, n)
					}
				}
			}
		}
	}
	walk(d.Panels)
	if queried == 0 {
		t.Fatal("the dashboard queries nothing")
	}
}

// base strips a histogram suffix when the name without it is defined.
func base(name string, defined map[string]bool) string {
	for _, s := range histogramSeries {
		if b, ok := strings.CutSuffix(name, s); ok && defined[b] {
			return b
		}
	}
	return name
}

// definedMetrics collects the quoted mindrouter_* names of every non-test Go file.
func definedMetrics(t *testing.T, root string) map[string]bool {
	t.Helper()
	quoted := regexp.MustCompile(`"(mindrouter_[a-z0-9_]+)"`)
	out := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == ".git" || e.Name() == "node_modules" || e.Name() == ".tools") {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range quoted.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
