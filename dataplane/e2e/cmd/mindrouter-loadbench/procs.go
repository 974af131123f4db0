package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The process handling below is a copy of the small start/stop logic of
// internal/cluster, which takes a testing.TB and builds its own binaries; the
// harness needs plain errors, the simulator binary and, for profiles, binaries
// built with a pprof listener added by a build overlay.

// process is one child process whose output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

// startProcess starts bin with args; env is added to the harness's environment.
func startProcess(name, bin string, args, env []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "MINDROUTER_SEED_BACKENDS=", "MINDROUTER_ADMIN_API_KEY=",
		"MINDROUTER_CP_SEED_BACKENDS=", "MINDROUTER_CP_ADMIN_API_KEY=")
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.done) }()
	return p, nil
}

// pid returns the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits up to 15 s, then kills the process.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the end of the process's log, for error messages.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitHTTP polls url until it answers 200, the process exits or 30 s pass.
func waitHTTP(ctx context.Context, url string, p *process) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited before %s answered:\n%s", p.name, url, p.tail())
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %s not ready after 30s:\n%s", p.name, url, p.tail())
}

// freePort asks the kernel for a free loopback port (released before use: racy in
// theory, fine on a benchmark machine).
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// pprofOverlay is added to each main package when profiles are asked for: it
// serves net/http/pprof on $MINDROUTER_LOADBENCH_PPROF. The product sources are
// not touched; the file exists only in the build overlay.
const pprofOverlay = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("MINDROUTER_LOADBENCH_PPROF"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

// exportRev writes the tree of git revision rev into dir (git archive: read-only,
// the repository's state is not touched) so that binaries can be built from a
// commit while the working tree is being edited.
func exportRev(ctx context.Context, root, rev, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", rev)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var stderr strings.Builder
	archive.Stderr = &stderr
	if err := archive.Start(); err != nil {
		return fmt.Errorf("git archive %s: %w", rev, err)
	}
	out, uerr := untar.CombinedOutput()
	if err := archive.Wait(); err != nil {
		return fmt.Errorf("git archive %s: %w: %s", rev, err, stderr.String())
	}
	if uerr != nil {
		return fmt.Errorf("untar %s: %w: %s", rev, uerr, out)
	}
	return nil
}

// mains are the packages the harness builds, relative to the repository root.
var mains = []string{
	"controlplane/cmd/mindrouter-controlplane",
	"dataplane/cmd/mindrouter-dataplane",
	"dataplane/cmd/mindrouter-enginesim",
}

// buildBinaries builds the control plane, data plane and simulator into dir;
// withPprof adds the pprof listener through a build overlay.
func buildBinaries(ctx context.Context, root, dir string, withPprof bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	if withPprof {
		src := filepath.Join(dir, "pprof_overlay.go")
		if err := os.WriteFile(src, []byte(pprofOverlay), 0o644); err != nil {
			return fmt.Errorf("write pprof overlay: %w", err)
		}
		replace := map[string]string{}
		for _, m := range mains {
			replace[filepath.Join(root, m, "zz_loadbench_pprof.go")] = src
		}
		b, err := json.Marshal(map[string]any{"Replace": replace})
		if err != nil {
			return err
		}
		overlay := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(overlay, b, 0o644); err != nil {
			return fmt.Errorf("write overlay: %w", err)
		}
		args = append(args, "-overlay", overlay)
	}
	for _, m := range mains {
		args = append(args, "./"+m)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build binaries: %w\n%s", err, out)
	}
	return nil
}
