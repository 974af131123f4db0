package cluster

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// HAOptions shape the production topology of deploy/compose as processes: two
// control planes with leader election on one MariaDB database, two data planes
// that list both, and HAProxy (deploy/compose/haproxy.cfg) in front of them.
type HAOptions struct {
	Backends []Backend
	// DBDSN is a MariaDB DSN of the test's own database.
	DBDSN string
	// LeaderLeaseTTL is the control planes' -leader-lease-ttl; default 2s (at
	// 1s a leader starting under a loaded CI machine's -race tests could miss
	// its first renewal, and correctly step down).
	LeaderLeaseTTL time.Duration
	// DrainDelay is the data planes' -drain-delay; default 2s.
	DrainDelay time.Duration
	// ControlPlaneArgs and DataPlaneArgs are extra flags.
	ControlPlaneArgs, DataPlaneArgs []string
}

// HA is a running HA topology.
type HA struct {
	t        testing.TB
	bin      string
	dir      string
	AdminKey string
	// LBURL is HAProxy's base URL (the OpenAI base URL is LBURL+"/v1").
	LBURL string
	// StatsURL is HAProxy's stats page.
	StatsURL string
	CP       [2]*Node
	DP       [2]*Node
	lb       *proc
	env      []string
}

// Node is one control-plane or data-plane process of an HA topology.
type Node struct {
	name string
	bin  string
	args []string
	// URL is the process's HTTP base URL (the REST port of a control plane).
	URL string
	// GRPCAddr is a control plane's gRPC address.
	GRPCAddr string
	p        *proc
}

// StartHA builds the binaries (once) and starts the topology: the first
// control plane (which becomes the leader), then the standby, the data planes
// and HAProxy, and waits until HAProxy sees both data planes up.
func StartHA(t testing.TB, opts HAOptions) *HA {
	t.Helper()
	bin, err := Binaries()
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if opts.LeaderLeaseTTL == 0 {
		opts.LeaderLeaseTTL = 2 * time.Second
	}
	if opts.DrainDelay == 0 {
		opts.DrainDelay = 2 * time.Second
	}
	h := &HA{t: t, bin: bin, dir: t.TempDir(), AdminKey: NewKey(t)}
	// Both control planes must share the cluster token: from the environment,
	// like the compose file's secret.
	h.env = []string{"MINDROUTER_CLUSTER_TOKEN=" + strings.TrimPrefix(NewKey(t), "mr2_")}
	var seeds []string
	for _, b := range opts.Backends {
		seeds = append(seeds, b.Name+"="+b.Engine+":"+b.URL)
	}
	var cpAddrs []string
	for i := range h.CP {
		cpPorts := freePorts(t, 2)
		grpcAddr, restAddr := "127.0.0.1:"+cpPorts[0], "127.0.0.1:"+cpPorts[1]
		cpAddrs = append(cpAddrs, grpcAddr)
		h.CP[i] = &Node{name: "cp" + string(rune('1'+i)), bin: filepath.Join(bin, "mindrouter-controlplane"), URL: "http://" + restAddr, GRPCAddr: grpcAddr,
			args: append([]string{
				"-grpc-listen", grpcAddr, "-rest-listen", restAddr, "-advertise-addr", grpcAddr,
				"-leader-election", "-leader-lease-ttl", opts.LeaderLeaseTTL.String(),
				"-data-dir", filepath.Join(h.dir, "cp"+string(rune('1'+i))), "-admin-api-key", h.AdminKey,
				"-db-driver", "mysql", "-db-dsn", opts.DBDSN,
				"-seed-backends", strings.Join(seeds, ","), "-log-format", "json", "-log-level", "debug",
			}, opts.ControlPlaneArgs...)}
	}
	h.StartControlPlane(0)
	h.WaitLeader(0, 30*time.Second)
	h.StartControlPlane(1)
	h.waitStandby(1)
	for i := range h.DP {
		addr := "127.0.0.1:" + freePort(t)
		h.DP[i] = &Node{name: "dp" + string(rune('1'+i)), bin: filepath.Join(bin, "mindrouter-dataplane"), URL: "http://" + addr,
			args: append([]string{
				"-listen", addr, "-controlplane-addr", strings.Join(cpAddrs, ","), "-drain-delay", opts.DrainDelay.String(),
				"-replica-id", "dp" + string(rune('1'+i)), "-log-format", "json", "-log-level", "debug",
				"-audit-spool-dir", filepath.Join(h.dir, "dp"+string(rune('1'+i))+"-audit-spool"),
			}, opts.DataPlaneArgs...)}
		h.StartDataPlane(i)
	}
	lbPorts := freePorts(t, 2)
	lbAddr, statsAddr := "127.0.0.1:"+lbPorts[0], "127.0.0.1:"+lbPorts[1]
	h.LBURL, h.StatsURL = "http://"+lbAddr, "http://"+statsAddr+"/stats;csv"
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		haproxy = "/usr/sbin/haproxy"
		if _, err := os.Stat(haproxy); err != nil {
			t.Fatalf("HAProxy is required (Debian package haproxy; .ci/run installs it): %v", err)
		}
	}
	h.lb = startProcEnv(t, haproxy, []string{"-db", "-f", filepath.Join(root, "deploy", "compose", "haproxy.cfg")},
		filepath.Join(h.dir, "haproxy.log"), []string{
			"MINDROUTER_LB_LISTEN=" + lbAddr, "MINDROUTER_LB_STATS_LISTEN=" + statsAddr, "MINDROUTER_LB_CHECK_INTERVAL=250ms",
			"MINDROUTER_DP1_ADDR=" + strings.TrimPrefix(h.DP[0].URL, "http://"),
			"MINDROUTER_DP2_ADDR=" + strings.TrimPrefix(h.DP[1].URL, "http://"),
		})
	h.WaitBalanced(30 * time.Second)
	return h
}

// StartControlPlane starts (or restarts) control plane i; it waits until its
// REST port answers /healthz, leader or not.
func (h *HA) StartControlPlane(i int) {
	h.t.Helper()
	n := h.CP[i]
	n.p = startProcEnv(h.t, n.bin, n.args, filepath.Join(h.dir, n.name+".log"), h.env)
	h.waitStatus(n, "/healthz", http.StatusOK, 30*time.Second)
}

// KillControlPlane kills control plane i with SIGKILL.
func (h *HA) KillControlPlane(i int) { h.CP[i].p.kill(syscall.SIGKILL) }

// WaitLeader waits until control plane i answers /readyz 200 (it leads).
func (h *HA) WaitLeader(i int, within time.Duration) {
	h.t.Helper()
	h.waitStatus(h.CP[i], "/readyz", http.StatusOK, within)
}

func (h *HA) waitStandby(i int) {
	h.t.Helper()
	h.waitStatus(h.CP[i], "/readyz", http.StatusServiceUnavailable, 30*time.Second)
}

// Ready reports the status code of node n's /readyz (0 when it does not answer).
func Ready(n *Node) int {
	resp, err := http.Get(n.URL + "/readyz")
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (h *HA) waitStatus(n *Node, path string, want int, within time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if n.p.exited() {
			h.t.Fatalf("%s exited:\n%s", n.name, n.p.log())
		}
		if resp, err := http.Get(n.URL + path); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("%s%s did not answer %d within %v\n%s", n.name, path, want, within, h.Logs())
}

// StartDataPlane starts (or restarts) data plane i and waits until it is ready.
func (h *HA) StartDataPlane(i int) {
	h.t.Helper()
	n := h.DP[i]
	n.p = startProcEnv(h.t, n.bin, n.args, filepath.Join(h.dir, n.name+".log"), h.env)
	h.waitStatus(n, "/readyz", http.StatusOK, 30*time.Second)
}

// StopDataPlane sends SIGTERM to data plane i and waits for it to exit.
func (h *HA) StopDataPlane(i int) { h.DP[i].p.kill(syscall.SIGTERM) }

// LBStates returns HAProxy's state of each data plane (UP, DOWN, ...), by
// server name (dp1, dp2).
func (h *HA) LBStates() map[string]string {
	resp, err := http.Get(h.StatsURL)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		// pxname,svname,...; status is the 18th field.
		if len(f) > 17 && f[0] == "dataplanes" && strings.HasPrefix(f[1], "dp") {
			out[f[1]] = f[17]
		}
	}
	return out
}

// WaitBalanced waits until HAProxy sees both data planes up.
func (h *HA) WaitBalanced(within time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		s := h.LBStates()
		if s["dp1"] == "UP" && s["dp2"] == "UP" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("HAProxy does not see both data planes up within %v: %v\n%s", within, h.LBStates(), h.Logs())
}

// Logs returns every process's log.
func (h *HA) Logs() string {
	var b strings.Builder
	for _, n := range append(h.CP[:], h.DP[:]...) {
		if n != nil && n.p != nil {
			b.WriteString("--- " + n.name + " ---\n" + tail(n.p.log(), 20000) + "\n")
		}
	}
	if h.lb != nil {
		b.WriteString("--- haproxy ---\n" + tail(h.lb.log(), 5000) + "\n")
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
