package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/enginesim"
)

// TestFairnessRepro is issue 19's setup, run by hand: MINDROUTER_FAIR_REPRO=wdrr (or fifo).
func TestFairnessRepro(t *testing.T) {
	policy := os.Getenv("MINDROUTER_FAIR_REPRO")
	if policy == "" {
		t.Skip("MINDROUTER_FAIR_REPRO not set")
	}
	d := 45 * time.Second
	if v, err := time.ParseDuration(os.Getenv("MINDROUTER_FAIR_REPRO_D")); err == nil {
		d = v
	}
	r := startFairRig(t, enginesim.Config{
		Models: []enginesim.ModelSpec{{Name: "sim-fair", ContextLength: 8192}},
		TTFT:   50 * time.Millisecond, InterTokenDelay: 10 * time.Millisecond, CompletionTokens: 100,
	}, 4, "-scheduler", policy)
	a, b := r.user("light", "student", 1), r.user("heavy", "student", 3)
	ctx := context.Background()
	var wg sync.WaitGroup
	start := time.Now().Add(200 * time.Millisecond)
	stop := start.Add(d)
	none := func(int) int { return 0 }
	r.closedLoop(ctx, &wg, a, 12, start, stop, none, false, 0)
	r.closedLoop(ctx, &wg, b, 12, start, stop, none, false, 0)
	time.Sleep(d / 2)
	var q map[string]any
	r.admin(ctx, "GET", "/api/admin/queue", nil, &q)
	t.Logf("queue mid-run: %v", q["users"])
	wg.Wait()
	n := r.requestsBetween(start, stop.Add(time.Minute))
	tok := r.tokensBetween(start, stop.Add(time.Minute))
	t.Logf("%s: requests %v tokens %v ratio %.2f", policy, n, tok, float64(n["heavy"])/float64(n["light"]))
	var ds []struct {
		Username string `json:"username"`
		Deficit  string `json:"deficit"`
		Waited   string `json:"waited"`
		Position int    `json:"queue_position"`
		At       string `json:"decided_at"`
	}
	r.admin(ctx, "GET", "/api/admin/scheduler/decisions?limit=1000", nil, &ds)
	var sb strings.Builder
	for i := len(ds) - 1; i >= 0; i-- {
		d := ds[i]
		fmt.Fprintf(&sb, "%s %s %s %s p%d\n", d.At[17:], d.Username[:1], d.Deficit, d.Waited, d.Position)
	}
	t.Log(sb.String())
	if os.Getenv("MINDROUTER_FAIR_REPRO_LOGS") != "" {
		for _, l := range strings.Split(r.c.Logs(), "\n") {
			if strings.Contains(l, "grant") {
				t.Log(l)
			}
		}
	}
}
