// Package compose holds the test of deploy/compose: it loads compose.yaml with
// the Compose specification's own loader and checks it against the binaries it
// configures. It is a module of its own, outside go.work, so that compose-go's
// dependencies stay out of the product modules.
package compose

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// binaries maps an image name to the binary inside it and its main package.
var binaries = map[string]string{
	"mindrouter-controlplane": "./controlplane/cmd/mindrouter-controlplane",
	"mindrouter-dataplane":    "./dataplane/cmd/mindrouter-dataplane",
	"mindrouter-enginesim":    "./dataplane/cmd/mindrouter-enginesim",
	"mindrouter-nodeagent":    "./nodeagent/cmd/mindrouter-nodeagent",
}

var (
	flagLine = regexp.MustCompile(`(?m)^\s+-([a-z0-9][a-z0-9-]*)`)
	envName  = regexp.MustCompile(`\(env ([A-Z0-9_]+)\)`)
	cfgVar   = regexp.MustCompile(`"\$\{([A-Z0-9_]+)\}"`)
	target   = regexp.MustCompile(`"([a-z0-9-]+):([0-9]+)"`)
)

// help is what a binary's -h says it accepts.
type help struct{ flags, env map[string]bool }

func loadProject(t *testing.T) *types.Project {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."), cli.WithName("mindrouter"), cli.WithProfiles([]string{"gpu"}),
		cli.WithEnv([]string{
			"MINDROUTER_CLUSTER_TOKEN=test-token", "MINDROUTER_ADMIN_API_KEY=mr2_" + strings.Repeat("a", 43),
			"MINDROUTER_DB_PASSWORD=test-password",
		}))
	require.NoError(t, err)
	p, err := opts.LoadProject(ctx)
	require.NoError(t, err, "compose.yaml does not load")
	return p
}

// buildHelp builds each binary in the repository's workspace and reads its -h.
func buildHelp(t *testing.T) map[string]help {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, pkg := range binaries {
		args = append(args, pkg)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	// This module runs with GOWORK=off; the binaries build in the workspace.
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	helps := map[string]help{}
	for name := range binaries {
		// -h prints the flags (and their variables) and exits, 0 or 2.
		out, _ := exec.Command(filepath.Join(dir, name), "-h").CombinedOutput()
		h := help{flags: map[string]bool{}, env: map[string]bool{}}
		for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
			h.flags[m[1]] = true
		}
		for _, m := range envName.FindAllStringSubmatch(string(out), -1) {
			h.env[m[1]] = true
		}
		require.NotEmpty(t, h.flags, "%s -h lists no flags:\n%s", name, out)
		helps[name] = h
	}
	return helps
}

// binaryOf names the MindRouter binary a service's image holds ("" for others).
func binaryOf(s types.ServiceConfig) string {
	for name := range binaries {
		if strings.Contains(s.Image, "/"+name+":") {
			return name
		}
	}
	return ""
}

// TestEveryFlagAndVariableExists loads compose.yaml and checks that every flag
// in a MindRouter service's command and every environment variable it sets is
// one the binary in its image accepts (its -h lists it).
func TestEveryFlagAndVariableExists(t *testing.T) {
	p := loadProject(t)
	helps := buildHelp(t)
	// The check tells a setting from a near miss.
	dp := helps["mindrouter-dataplane"]
	require.True(t, dp.env["MINDROUTER_CONTROLPLANE_ADDR"] && dp.flags["drain-delay"])
	require.False(t, dp.env["MINDROUTER_DP_CONTROLPLANE_ADDRESS"] || dp.flags["drain-delays"])
	seen := map[string]int{}
	for _, s := range p.Services {
		bin := binaryOf(s)
		if bin == "" {
			continue
		}
		seen[bin]++
		h := helps[bin]
		for _, arg := range s.Command {
			if !strings.HasPrefix(arg, "-") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
			assert.True(t, h.flags[name], "service %s: %s has no flag -%s", s.Name, bin, name)
		}
		for k := range s.Environment {
			assert.True(t, h.env[k], "service %s: %s reads no variable %s", s.Name, bin, k)
		}
	}
	for name := range binaries {
		assert.Positive(t, seen[name], "no service runs %s", name)
	}
}

// TestTopologyIsConsistent checks what ties the services together: two
// control planes with leader election, each advertising its own service name;
// data planes and the node agent listing exactly those; HAProxy given every
// variable its configuration reads and pointed at the data planes; Prometheus
// scraping every MindRouter process.
func TestTopologyIsConsistent(t *testing.T) {
	p := loadProject(t)
	var cps, dps []string
	for _, s := range p.Services {
		switch binaryOf(s) {
		case "mindrouter-controlplane":
			require.Equal(t, "true", deref(s.Environment["MINDROUTER_LEADER_ELECTION"]), s.Name)
			require.Equal(t, s.Name+":9090", deref(s.Environment["MINDROUTER_ADVERTISE_ADDR"]), s.Name)
			cps = append(cps, s.Name+":9090")
		case "mindrouter-dataplane":
			dps = append(dps, s.Name+":8000")
		}
	}
	slices.Sort(cps)
	slices.Sort(dps)
	require.Len(t, cps, 2, "a leader and a standby")
	require.Len(t, dps, 2)
	for _, s := range p.Services {
		switch binaryOf(s) {
		case "mindrouter-dataplane":
			require.Equal(t, strings.Join(cps, ","), deref(s.Environment["MINDROUTER_CONTROLPLANE_ADDR"]), s.Name)
		case "mindrouter-nodeagent":
			require.Contains(t, s.Command, "-control-plane="+strings.Join(cps, ","))
		}
	}

	lb, err := p.GetService("haproxy")
	require.NoError(t, err)
	cfg, err := os.ReadFile("haproxy.cfg")
	require.NoError(t, err)
	for _, m := range cfgVar.FindAllStringSubmatch(string(cfg), -1) {
		assert.NotEmpty(t, deref(lb.Environment[m[1]]), "haproxy.cfg reads %s, which the haproxy service does not set", m[1])
	}
	got := []string{deref(lb.Environment["MINDROUTER_DP1_ADDR"]), deref(lb.Environment["MINDROUTER_DP2_ADDR"])}
	slices.Sort(got)
	require.Equal(t, dps, got)
	mounted := false
	for _, v := range lb.Volumes {
		mounted = mounted || (filepath.Base(v.Source) == "haproxy.cfg" && v.Target == "/usr/local/etc/haproxy/haproxy.cfg")
	}
	require.True(t, mounted, "the haproxy service runs this directory's haproxy.cfg")

	prom, err := os.ReadFile("prometheus.yml")
	require.NoError(t, err)
	scraped := map[string]bool{}
	for _, m := range target.FindAllStringSubmatch(string(prom), -1) {
		_, err := p.GetService(m[1])
		assert.NoError(t, err, "prometheus.yml scrapes %s, which is no service", m[1])
		scraped[m[1]] = true
	}
	for _, s := range p.Services {
		if binaryOf(s) != "" || s.Name == "haproxy" {
			assert.True(t, scraped[s.Name], "Prometheus does not scrape %s", s.Name)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
