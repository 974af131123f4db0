package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Backend is a backend seeded into the control plane at start.
type Backend struct {
	Name   string
	Engine string // ollama or vllm
	URL    string
}

// Options shape a cluster.
type Options struct {
	Backends []Backend
	// DBDriver and DBDSN select the database; empty means SQLite in a temp dir.
	DBDriver, DBDSN string
	// ControlPlaneArgs and DataPlaneArgs are extra flags.
	ControlPlaneArgs, DataPlaneArgs []string
	// DataPlanePort, when set, is the data plane's port (from FreePort), for
	// settings that must name the data plane's URL before it starts.
	DataPlanePort string
	// Env is extra environment (KEY=value) for both processes, e.g. the OTLP
	// exporter's endpoint.
	Env []string
}

// Cluster is a running control plane and data plane.
type Cluster struct {
	t        testing.TB
	bin      string
	dataDir  string
	AdminKey string
	// DataPlaneURL is the data plane's base URL (OpenAI base URL is DataPlaneURL+"/v1").
	DataPlaneURL string
	// RESTURL is the control plane's REST admin base URL.
	RESTURL string
	// GRPCAddr is the control plane's gRPC address.
	GRPCAddr       string
	cp, dp         *proc
	cpArgs, dpArgs []string
	env            []string
}

// Start builds (once) and starts a cluster; everything stops at t.Cleanup.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bin, err := Binaries()
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	c := &Cluster{t: t, bin: bin, dataDir: t.TempDir(), AdminKey: NewKey(t), env: opts.Env}
	var seeds []string
	for _, b := range opts.Backends {
		seeds = append(seeds, b.Name+"="+b.Engine+":"+b.URL)
	}
	// Ports come from freePort, which releases them before the process binds
	// them; another process on a busy machine (a parallel test, an Ollama
	// runner) can take one in between. The first start therefore tries fresh
	// ports when a bind fails; restarts keep the ports they were given.
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, 2)
		grpcPort, restPort := ports[0], ports[1]
		c.GRPCAddr = "127.0.0.1:" + grpcPort
		c.RESTURL = "http://127.0.0.1:" + restPort
		cpArgs := []string{
			"-grpc-listen", c.GRPCAddr, "-rest-listen", "127.0.0.1:" + restPort,
			"-data-dir", c.dataDir, "-admin-api-key", c.AdminKey,
			"-seed-backends", strings.Join(seeds, ","), "-log-format", "json", "-log-level", "debug",
		}
		if opts.DBDriver != "" {
			cpArgs = append(cpArgs, "-db-driver", opts.DBDriver, "-db-dsn", opts.DBDSN)
		}
		c.cpArgs = append(cpArgs, opts.ControlPlaneArgs...)
		if c.startControlPlane(attempt < 3) {
			break
		}
	}
	for attempt := 1; ; attempt++ {
		dpPort := opts.DataPlanePort
		if dpPort == "" {
			dpPort = freePort(t)
		}
		c.DataPlaneURL = "http://127.0.0.1:" + dpPort
		c.dpArgs = append([]string{
			"-listen", "127.0.0.1:" + dpPort, "-controlplane-addr", c.GRPCAddr,
			"-cluster-token-file", filepath.Join(c.dataDir, "cluster-token"), "-log-format", "json", "-log-level", "debug",
			"-audit-spool-dir", filepath.Join(c.dataDir, "dp-audit-spool"),
		}, opts.DataPlaneArgs...)
		if c.startDataPlane(opts.DataPlanePort == "" && attempt < 3) {
			break
		}
	}
	return c
}

// StartControlPlane starts (or restarts) the control plane process, with the
// same flags (seeds included) and data directory, and waits until it is ready.
func (c *Cluster) StartControlPlane() {
	c.t.Helper()
	c.startControlPlane(false)
}

// startControlPlane starts the control plane; with retryBind, a process that
// exits because its port was taken reports false instead of failing the test.
func (c *Cluster) startControlPlane(retryBind bool) bool {
	c.t.Helper()
	c.cp = startProcEnv(c.t, filepath.Join(c.bin, "mindrouter-controlplane"), c.cpArgs, filepath.Join(c.dataDir, "cp.log"), c.env)
	return waitHTTP(c.t, c.RESTURL+"/readyz", c.cp, retryBind)
}

// KillControlPlane kills the control plane with SIGKILL and waits for it.
func (c *Cluster) KillControlPlane() { c.cp.kill(syscall.SIGKILL) }

// StartDataPlane starts (or restarts) the data plane process.
func (c *Cluster) StartDataPlane() {
	c.t.Helper()
	c.startDataPlane(false)
}

func (c *Cluster) startDataPlane(retryBind bool) bool {
	c.t.Helper()
	c.dp = startProcEnv(c.t, filepath.Join(c.bin, "mindrouter-dataplane"), c.dpArgs, filepath.Join(c.dataDir, "dp.log"), c.env)
	return waitHTTP(c.t, c.DataPlaneURL+"/readyz", c.dp, retryBind)
}

// KillDataPlane kills the data plane with SIGKILL: no graceful release of anything.
func (c *Cluster) KillDataPlane() { c.dp.kill(syscall.SIGKILL) }

// StopDataPlane stops the data plane gracefully (SIGTERM), waits for it (at
// most 15 s, then SIGKILL) and returns its exit code (-1 when a signal ended it).
func (c *Cluster) StopDataPlane() int {
	c.dp.kill(syscall.SIGTERM)
	return c.dp.cmd.ProcessState.ExitCode()
}

// StopControlPlane stops the control plane gracefully (SIGTERM) and waits.
func (c *Cluster) StopControlPlane() { c.cp.kill(syscall.SIGTERM) }

// SQLitePath is the control plane's SQLite database (when DBDriver is empty), for
// tests that check what it stored where no API lists it.
func (c *Cluster) SQLitePath() string { return filepath.Join(c.dataDir, "mindrouter.db") }

// Logs returns both processes' logs (for failure messages).
func (c *Cluster) Logs() string {
	return "--- control plane ---\n" + c.cp.log() + "\n--- data plane ---\n" + c.dp.log()
}

// AdminJSON calls the REST admin API at base (the control plane's REST URL or the
// data plane's URL) with the admin key and decodes the JSON answer into out.
func (c *Cluster) AdminJSON(ctx context.Context, base, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w: %s", path, err, raw)
		}
	}
	return resp.StatusCode, nil
}

// NewKey mints a well-formed API key (mr2_ + 43 base64url characters).
func NewKey(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "mr2_" + base64.RawURLEncoding.EncodeToString(b)
}

type proc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	once    sync.Once
}

// startProcEnv starts bin with args, its output appended to logPath and env
// added to the environment; it stops at t.Cleanup.
func startProcEnv(t testing.TB, bin string, args []string, logPath string, env []string) *proc {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "MINDROUTER_SEED_BACKENDS=", "MINDROUTER_ADMIN_API_KEY=",
		"MINDROUTER_CP_SEED_BACKENDS=", "MINDROUTER_CP_ADMIN_API_KEY=")
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &proc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("%s log:\n%s", filepath.Base(bin), p.log())
		}
	})
	return p
}

// kill signals the process and waits up to 15 s for it, then kills it hard.
func (p *proc) kill(sig syscall.Signal) {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// waitHTTP waits until url answers 200. With retryBind, a process that exited
// because its address was in use makes it return false (the caller picks other
// ports); any other exit fails the test.
func waitHTTP(t testing.TB, url string, p *proc, retryBind bool) bool {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			if retryBind && strings.Contains(p.log(), "address already in use") {
				t.Logf("port taken before the process bound it; retrying with other ports:\n%s", p.log())
				return false
			}
			t.Fatalf("process exited before %s answered:\n%s", url, p.log())
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 30s:\n%s", url, p.log())
	return false
}

// FreePort asks the kernel for a free loopback port. The port is released before the
// process binds it, which is racy in theory but fine on a test machine.
func FreePort(t testing.TB) string { return freePort(t) }

// freePorts returns n distinct free ports: each listener stays open until all
// are chosen, because the kernel may hand a just-closed port out again. Two
// HAProxy binds on one port do not fail (HAProxy sets SO_REUSEPORT); the
// kernel then splits the connections between them.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	ports := make([]string, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
