package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/e2e/internal/cluster"
)

// lookTool finds a Debian tool on PATH or in /usr/bin; it skips the test with the
// package to install when absent (.ci/run installs it).
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/" + name); err == nil {
		return "/usr/bin/" + name
	}
	t.Skipf("%s not installed (apt-get install %s)", name, pkg)
	return ""
}

// checkPromtool runs `promtool check metrics` over every process's scrape: the
// exposition's format and the naming conventions (units, _total suffixes).
func checkPromtool(t *testing.T, targets []scrapeTarget) {
	promtool := lookTool(t, "promtool", "prometheus")
	for _, tg := range targets {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(scrape(t, tg.url))
		out, err := cmd.CombinedOutput()
		if err != nil && tg.process == "enginesim-vllm" && onlyColonComplaints(string(out)) {
			// vLLM's own names (vllm:...), kept as the simulator imitates them.
			continue
		}
		assertf(t, err == nil, "promtool check metrics on %s's /metrics: %v\n%s", tg.process, err, out)
	}
}

// checkPrometheusServer starts Debian's Prometheus server scraping every
// process once a second, waits until every target is up, and queries a
// counter that the traffic moved.
func checkPrometheusServer(ctx context.Context, t *testing.T, targets []scrapeTarget) {
	bin := lookTool(t, "prometheus", "prometheus")
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n")
	for _, tg := range targets {
		u, err := url.Parse(tg.url)
		require.NoError(t, err)
		fmt.Fprintf(&cfg, "  - job_name: %s\n    static_configs:\n      - targets: ['%s']\n", tg.process, u.Host)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg.String()), 0o600))
	port := cluster.FreePort(t)
	base := "http://127.0.0.1:" + port
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	require.NoError(t, err)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address=127.0.0.1:"+port)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log:\n%s", b)
		}
	})

	var last string
	require.Eventually(t, func() bool {
		var resp struct {
			Data struct {
				ActiveTargets []struct {
					Labels    map[string]string `json:"labels"`
					Health    string            `json:"health"`
					LastError string            `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := getJSON(ctx, base+"/api/v1/targets", &resp); err != nil {
			last = err.Error()
			return false
		}
		up := map[string]bool{}
		var states []string
		for _, at := range resp.Data.ActiveTargets {
			up[at.Labels["job"]] = at.Health == "up"
			states = append(states, at.Labels["job"]+"="+at.Health+" "+at.LastError)
		}
		last = strings.Join(states, "; ")
		for _, tg := range targets {
			if !up[tg.process] {
				return false
			}
		}
		return true
	}, time.Minute, 250*time.Millisecond, "every target up; last: %s", func() string { return last }())

	for _, q := range []string{
		`sum(mindrouter_dp_http_requests_total) > 0`,
		`sum(mindrouter_cp_grpc_calls_total) > 0`,
		`count(up == 1) == ` + fmt.Sprint(len(targets)),
	} {
		require.Eventually(t, func() bool {
			var resp struct {
				Status string `json:"status"`
				Data   struct {
					Result []json.RawMessage `json:"result"`
				} `json:"data"`
			}
			err := getJSON(ctx, base+"/api/v1/query?query="+url.QueryEscape(q), &resp)
			if err != nil {
				last = err.Error()
				return false
			}
			last = fmt.Sprintf("%s: %d results", resp.Status, len(resp.Data.Result))
			return resp.Status == "success" && len(resp.Data.Result) == 1
		}, 30*time.Second, 250*time.Millisecond, "query %s", q)
	}
}

func getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// onlyColonComplaints reports whether promtool's output holds nothing but its
// lint about a colon in a metric name.
func onlyColonComplaints(out string) bool {
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasSuffix(strings.TrimSpace(line), "metric names should not contain ':'") {
			return false
		}
		n++
	}
	return n > 0
}
