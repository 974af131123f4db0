package ollamatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// Version is the Ollama version the harness builds and expects.
const Version = "0.17.4"

// Environment variables understood by the harness.
const (
	// EnvBin names an ollama binary to use instead of the cached build.
	EnvBin = "MINDROUTER_OLLAMA_BIN"
	// EnvSkip, set to 1, makes tests skip instead of fail when no ollama
	// binary can be found or built.
	EnvSkip = "MINDROUTER_SKIP_OLLAMA"
	// EnvCache overrides the cache root ($HOME/.cache/mindrouter), as in
	// .ci/ollama.sh.
	EnvCache = "MINDROUTER_CACHE"
)

// DefaultModelName is the name the tiny model is created under; Ollama
// reports it as "tiny:latest".
const DefaultModelName = "tiny"

// DefaultTemplate is the chat template of the tiny model. It renders each
// message as "role: content" on its own line and ends with "assistant:". It
// does not mention .Tools, so Ollama reports no "tools" capability and
// rejects requests that carry tools.
const DefaultTemplate = `{{- range .Messages }}{{ .Role }}: {{ .Content }}
{{ end }}assistant:`

// Options configures Start. The zero value is ready to use.
type Options struct {
	// ModelName is the name the tiny model is created under; default
	// DefaultModelName.
	ModelName string
	// Seed seeds the tiny model's weights; default 1.
	Seed int64
	// NumCtx is the model's "PARAMETER num_ctx"; default 256.
	NumCtx int
	// Template is the model's TEMPLATE; default DefaultTemplate.
	Template string
	// NumParallel sets OLLAMA_NUM_PARALLEL; default 2.
	NumParallel int
	// KeepAlive sets OLLAMA_KEEP_ALIVE; default "10m", so the model stays
	// loaded for the life of the test binary.
	KeepAlive string
	// Env holds extra KEY=VALUE entries for the server's environment; they
	// override the harness's own.
	Env []string
	// StartTimeout bounds the wait for the server to answer and the model
	// to be created; default 60s.
	StartTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.ModelName == "" {
		o.ModelName = DefaultModelName
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.NumCtx == 0 {
		o.NumCtx = 256
	}
	if o.Template == "" {
		o.Template = DefaultTemplate
	}
	if o.NumParallel == 0 {
		o.NumParallel = 2
	}
	if o.KeepAlive == "" {
		o.KeepAlive = "10m"
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	return o
}

// Server is a running `ollama serve` with the tiny model created.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL string
	// Host is the server's address as OLLAMA_HOST takes it, 127.0.0.1:PORT.
	Host string
	// Bin is the path of the ollama binary.
	Bin string
	// ModelName is the name the tiny model was created under ("tiny");
	// Ollama reports it as ModelName+":latest".
	ModelName string
	// LogPath is the file that receives the server's stdout and stderr.
	LogPath string

	dir  string // working directory: model files, Modelfiles, log
	env  []string
	opts Options

	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	waitErr  error
	stopOnce sync.Once
}

// Start starts an ollama server for t and creates the tiny model on it. The
// server is stopped, and its log shown if t failed, by t.Cleanup. ctx bounds
// only finding or building the binary and starting up; the server runs on
// until the test ends.
//
// Start fails t when no binary can be found or built, unless
// MINDROUTER_SKIP_OLLAMA=1, in which case it skips t.
func Start(ctx context.Context, t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := FindBinary(ctx, t.Logf)
	if err != nil {
		failOrSkip(t, err)
	}
	s, err := start(ctx, bin, t.TempDir(), opts, t.Logf)
	if s != nil {
		t.Cleanup(func() {
			s.Stop()
			if t.Failed() {
				t.Logf("ollama log (%s):\n%s", s.LogPath, s.Log())
			}
		})
	}
	if err != nil {
		t.Fatalf("ollamatest: %v", err)
	}
	return s
}

var shared struct {
	mu      sync.Mutex
	started bool
	srv     *Server
	dir     string
	err     error
}

// Shared returns the server shared by all tests of the test binary, starting
// it with default Options on first use. Call StopShared from TestMain after
// m.Run, or the server outlives the test binary. A failed start is
// remembered: every later call fails at once with the same error.
//
// Tests sharing the server must not depend on what the others load or
// unload. If t fails, the tail of the server's log is shown.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.started {
		shared.started = true
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		var bin string
		bin, shared.err = FindBinary(ctx, t.Logf)
		if shared.err == nil {
			shared.dir, shared.err = os.MkdirTemp("", "ollamatest-")
		}
		if shared.err == nil {
			shared.srv, shared.err = start(ctx, bin, shared.dir, Options{}, t.Logf)
			if shared.err != nil && shared.srv != nil {
				shared.srv.Stop()
				t.Logf("ollama log (%s):\n%s", shared.srv.LogPath, shared.srv.Log())
			}
		}
	}
	if shared.err != nil {
		failOrSkip(t, fmt.Errorf("shared server: %w", shared.err))
	}
	s := shared.srv
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ollama log tail (%s):\n%s", s.LogPath, tail(s.Log(), 16<<10))
		}
	})
	return s
}

// StopShared stops the shared server, if one was started, and removes its
// files. Shared fails after StopShared.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	shared.started = true
	shared.srv = nil
	shared.err = errors.New("StopShared was called")
}

func failOrSkip(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(EnvSkip) == "1" {
		t.Skipf("ollamatest: SKIPPING: %s=1 is set and the ollama server is unavailable: %v", EnvSkip, err)
	}
	t.Fatalf("ollamatest: %v (set %s=1 to skip instead)", err, EnvSkip)
}

// CacheBinary returns where .ci/ollama.sh caches the ollama binary.
func CacheBinary() string {
	cache := os.Getenv(EnvCache)
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "mindrouter")
	}
	return filepath.Join(cache, "ollama-"+Version, "ollama")
}

// FindBinary returns the ollama binary: $MINDROUTER_OLLAMA_BIN, else the
// cached build, else one built now by .ci/ollama.sh from the repository root
// (found by walking up from the working directory to go.work). A build takes
// several minutes; concurrent test binaries wait on one build. logf, if not
// nil, reports a build.
func FindBinary(ctx context.Context, logf func(format string, args ...any)) (string, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if bin := os.Getenv(EnvBin); bin != "" {
		if !isExecutable(bin) {
			return "", fmt.Errorf("%s=%s is not an executable file", EnvBin, bin)
		}
		return bin, nil
	}
	bin := CacheBinary()
	if isExecutable(bin) {
		return bin, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", fmt.Errorf("no ollama binary at %s and cannot build one: %w", bin, err)
	}
	script := filepath.Join(root, ".ci", "ollama.sh")

	// Serialize builds across test binaries that go test runs in parallel.
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(filepath.Dir(bin), ".build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	logf("ollamatest: no ollama binary at %s; BUILDING OLLAMA %s with %s, this takes several minutes on a cold cache (run it beforehand, or set %s)", bin, Version, script, EnvBin)
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if isExecutable(bin) { // built by another test binary meanwhile
		return bin, nil
	}

	began := time.Now()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s failed: %w\n%s", script, err, tail(stderr.String(), 8<<10))
	}
	built := strings.TrimSpace(lastLine(stdout.String()))
	if !isExecutable(built) {
		return "", fmt.Errorf("%s printed %q, not an executable", script, built)
	}
	logf("ollamatest: built %s in %s", built, time.Since(began).Round(time.Second))
	return built, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory")
		}
		dir = parent
	}
}

func start(ctx context.Context, bin, dir string, opts Options, logf func(string, ...any)) (*Server, error) {
	opts = opts.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	home := filepath.Join(dir, "home")
	models := filepath.Join(dir, "models")
	for _, d := range []string{home, models} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	logPath := filepath.Join(dir, "ollama.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy

	var s *Server
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		host := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s = &Server{
			URL:       "http://" + host,
			Host:      host,
			Bin:       bin,
			ModelName: opts.ModelName,
			LogPath:   logPath,
			dir:       dir,
			opts:      opts,
			done:      make(chan struct{}),
		}
		s.env = append(cleanEnv(),
			"HOME="+home,
			"OLLAMA_HOST="+host,
			"OLLAMA_MODELS="+models,
			"OLLAMA_NOPRUNE=1",
			"OLLAMA_NO_CLOUD=1",
			"OLLAMA_KEEP_ALIVE="+opts.KeepAlive,
			"OLLAMA_NUM_PARALLEL="+strconv.Itoa(opts.NumParallel),
		)
		s.env = append(s.env, opts.Env...)

		cmd := exec.Command(bin, "serve")
		cmd.Dir = dir
		cmd.Env = s.env
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = sysProcAttr()
		began := time.Now()
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s serve: %w", bin, err)
		}
		s.cmd = cmd
		go func() {
			s.waitErr = cmd.Wait()
			close(s.done)
		}()
		err = s.waitReady(ctx)
		if err == nil {
			logf("ollamatest: ollama %s serving at %s after %s (log %s)", Version, s.URL, time.Since(began).Round(time.Millisecond), logPath)
			break
		}
		s.Stop()
		if attempt < 3 && strings.Contains(s.Log(), "address already in use") {
			continue // lost the port to someone else
		}
		return s, err
	}

	if err := s.CreateModel(ctx, opts.ModelName, opts.Seed); err != nil {
		return s, err
	}
	return s, nil
}

// waitReady polls GET / until the server answers 200.
func (s *Server) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("ollama serve exited before answering: %w", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("ollama serve did not answer at %s: %w", s.URL, ctx.Err())
		case <-tick.C:
		}
	}
}

// CreateModel writes a tiny model with the given weight seed (see
// WriteTinyModel) and creates it on the server as name, with the server's
// template and num_ctx, by running `ollama create`. Models with different
// seeds produce different text.
func (s *Server) CreateModel(ctx context.Context, name string, seed int64) error {
	stem := fmt.Sprintf("tiny-%d", seed)
	gguf := filepath.Join(s.dir, stem+".gguf")
	if _, err := os.Stat(gguf); err != nil {
		if err := WriteTinyModel(gguf, seed); err != nil {
			return err
		}
	}
	modelfile := filepath.Join(s.dir, fmt.Sprintf("Modelfile.%s.%d", strings.ReplaceAll(name, "/", "_"), seed))
	// One thread: the model is tiny, and llama.cpp's spinning worker threads
	// slow down badly when test binaries oversubscribe the CPU.
	content := fmt.Sprintf("FROM ./%s.gguf\nTEMPLATE \"\"\"%s\"\"\"\nPARAMETER num_ctx %d\nPARAMETER num_thread 1\n", stem, s.opts.Template, s.opts.NumCtx)
	if err := os.WriteFile(modelfile, []byte(content), 0o644); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, s.Bin, "create", name, "-f", modelfile)
	cmd.Dir = s.dir
	cmd.Env = s.env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ollama create %s: %w\n%s", name, err, out)
	}
	return nil
}

// Env returns the environment the server runs with, including OLLAMA_HOST;
// use it to run other ollama CLI commands against the server.
func (s *Server) Env() []string { return append([]string(nil), s.env...) }

// Log returns what the server has written to its log so far.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", s.LogPath, err)
	}
	return string(b)
}

// Stop stops the server and its runners: SIGTERM to the process group, then
// SIGKILL after 5 s. It is safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		pgid := s.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-s.done
		}
		// Runners may outlive serve by a moment; make sure none is left.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cleanEnv returns the process environment without HOME and OLLAMA_*, so a
// developer's own Ollama settings do not leak into the test server.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OLLAMA_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
