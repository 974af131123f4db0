package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mindrouter/mindrouter/controlplane/internal/health/healthtest"
	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/server"
	controlplanev1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/controlplane/v1"
)

// keyPattern matches an API key anywhere in output.
var keyPattern = regexp.MustCompile(`mr2_[A-Za-z0-9_-]{43}`)

// syncBuffer is an io.Writer that several goroutines may write while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// running is one app.Run in a goroutine.
type running struct {
	stdout, stderr *syncBuffer
	grpcAddr       string
	restURL        string
	cancel         context.CancelFunc
	done           chan error
	stopped        bool
}

// env turns a map into a getenv function.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// baseArgs points the control plane at dataDir with loopback listeners on free ports.
func baseArgs(dataDir string, extra ...string) []string {
	return append([]string{
		"-data-dir", dataDir,
		"-grpc-listen", "127.0.0.1:0",
		"-rest-listen", "127.0.0.1:0",
		"-shutdown-timeout", "5s",
		"-log-format", "json",
		"-log-level", "debug",
	}, extra...)
}

// start runs the control plane and waits until it serves; the test's cleanup stops it.
func start(t *testing.T, args []string, vars map[string]string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, args, env(vars), r.stdout, r.stderr) }()
	t.Cleanup(func() {
		if !r.stopped {
			require.NoError(t, r.stop(t))
		}
	})

	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-r.done:
			r.stopped = true
			t.Fatalf("Run returned before serving: %v\nstderr:\n%s", err, r.stderr.String())
		case <-deadline:
			t.Fatalf("control plane did not start serving\nstderr:\n%s", r.stderr.String())
		case <-tick.C:
			if grpcAddr, restAddr, ok := servingAddrs(r.stderr.String()); ok {
				r.grpcAddr, r.restURL = grpcAddr, "http://"+restAddr
				return r
			}
		}
	}
}

// servingAddrs finds the bound addresses in the "control plane serving" log line.
func servingAddrs(logs string) (grpcAddr, restAddr string, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Msg  string `json:"msg"`
			GRPC string `json:"grpc"`
			REST string `json:"rest"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "control plane serving" {
			return line.GRPC, line.REST, true
		}
	}
	return "", "", false
}

// stop cancels Run's context and returns what Run returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.stopped = true
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("Run did not return after cancellation\nstderr:\n%s", r.stderr.String())
		return nil
	}
}

// get sends an authenticated GET to the REST listener.
func (r *running) get(t *testing.T, path, key string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.restURL+path, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// asDataPlane returns an admission client over a new connection and a context
// carrying the cluster token, as a data plane has; both end with the test.
func (r *running) asDataPlane(t *testing.T, clusterToken string) (controlplanev1.AdmissionServiceClient, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return controlplanev1.NewAdmissionServiceClient(conn), metadata.AppendToOutgoingContext(ctx, server.ClusterTokenHeader, clusterToken)
}

// catalog calls AdmissionService.ListModels as a data plane would.
func (r *running) catalog(t *testing.T, clusterToken, credential string) (*controlplanev1.ListModelsResponse, error) {
	t.Helper()
	c, ctx := r.asDataPlane(t, clusterToken)
	return c.ListModels(ctx, &controlplanev1.ListModelsRequest{Credential: credential})
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the cluster token is readable by its owner only")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	tok := strings.TrimSpace(string(b))
	require.GreaterOrEqual(t, len(tok), 40, "a 32-byte random token")
	return tok
}

func TestFirstStartPrintsTheAdminKeyOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	first := start(t, baseArgs(dir), nil)
	keys := keyPattern.FindAllString(first.stdout.String(), -1)
	require.Len(t, keys, 1, "stdout:\n%s", first.stdout.String())
	admin := keys[0]
	require.NotContains(t, first.stderr.String(), admin, "the key is never logged")
	code, body := first.get(t, "/api/admin/groups", admin)
	require.Equal(t, http.StatusOK, code, string(body))

	tokenPath := filepath.Join(dir, "cluster-token")
	token := readToken(t, tokenPath)
	require.NotContains(t, first.stderr.String(), token, "the cluster token is never logged")
	_, err := first.catalog(t, token, admin)
	require.NoError(t, err, "the data plane's token opens admission")
	_, err = first.catalog(t, token+"x", admin)
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	require.NoError(t, first.stop(t), "cancelling the context is a clean stop")
	require.FileExists(t, filepath.Join(dir, "mindrouter.db"))

	second := start(t, baseArgs(dir), nil)
	require.Empty(t, keyPattern.FindAllString(second.stdout.String(), -1), "no key on a second start: %s", second.stdout.String())
	code, _ = second.get(t, "/api/admin/groups", admin)
	require.Equal(t, http.StatusOK, code, "the first key survives a restart")
	require.Equal(t, token, readToken(t, tokenPath), "the cluster token is reused")
	_, err = second.catalog(t, token, admin)
	require.NoError(t, err)
	require.NoError(t, second.stop(t))
}

func TestSeededAdminKeyFromTheEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seed, err := identity.NewKey()
	require.NoError(t, err)

	r := start(t, baseArgs(dir), map[string]string{"MINDROUTER_CP_ADMIN_API_KEY": seed})
	code, body := r.get(t, "/api/admin/backends", seed)
	require.Equal(t, http.StatusOK, code, string(body))
	require.NotContains(t, r.stderr.String(), seed, "the seeded key is never logged")
	require.Empty(t, keyPattern.FindAllString(r.stdout.String(), -1), "no other key was generated")
	unknown, err := identity.NewKey()
	require.NoError(t, err)
	code, _ = r.get(t, "/api/admin/backends", unknown)
	require.Equal(t, http.StatusUnauthorized, code)
	require.NoError(t, r.stop(t))

	// A restart with the same seed changes nothing; a new seed is added to the admin.
	again := start(t, baseArgs(dir), map[string]string{"MINDROUTER_CP_ADMIN_API_KEY": seed})
	require.Empty(t, again.stdout.String())
	code, _ = again.get(t, "/api/admin/backends", seed)
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, again.stop(t))

	flagSeed, err := identity.NewKey()
	require.NoError(t, err)
	third := start(t, baseArgs(dir, "-admin-api-key", flagSeed), map[string]string{"MINDROUTER_CP_ADMIN_API_KEY": seed})
	code, _ = third.get(t, "/api/admin/backends", flagSeed)
	require.Equal(t, http.StatusOK, code, "the flag wins over the environment")
	code, _ = third.get(t, "/api/admin/backends", seed)
	require.Equal(t, http.StatusOK, code, "earlier keys stay valid")
	require.NoError(t, third.stop(t))
}

func TestSeedBackendIsProbedAndListed(t *testing.T) {
	t.Parallel()
	ollama := healthtest.NewOllama(t, "0.9.0", healthtest.Model{
		Name: "llama3.2:3b", Family: "llama", ContextLength: 131072, Capabilities: []string{"completion", "tools"}, Loaded: true,
	})
	seed, err := identity.NewKey()
	require.NoError(t, err)
	dir := t.TempDir()
	r := start(t, baseArgs(dir, "-seed-backends", "local=ollama:"+ollama.URL(), "-context-cap", "8192"),
		map[string]string{"MINDROUTER_CP_ADMIN_API_KEY": seed})

	var backends []struct {
		Name    string   `json:"name"`
		Engine  string   `json:"engine"`
		URL     string   `json:"url"`
		Status  string   `json:"status"`
		Version string   `json:"version"`
		Models  []string `json:"models"`
	}
	require.Eventually(t, func() bool {
		code, body := r.get(t, "/api/admin/backends", seed)
		return code == http.StatusOK && json.Unmarshal(body, &backends) == nil &&
			len(backends) == 1 && backends[0].Status == "healthy"
	}, 30*time.Second, 20*time.Millisecond)
	b := backends[0]
	require.Equal(t, "local", b.Name)
	require.Equal(t, "ollama", b.Engine)
	require.Equal(t, ollama.URL(), b.URL)
	require.Equal(t, "0.9.0", b.Version)
	require.Equal(t, []string{"llama3.2:3b"}, b.Models)
	require.Positive(t, ollama.Calls("/api/tags"))

	// The catalog the data plane sees has the model, capped by -context-cap.
	token := readToken(t, filepath.Join(dir, "cluster-token"))
	cat, err := r.catalog(t, token, seed)
	require.NoError(t, err)
	require.Len(t, cat.GetModels(), 1)
	require.Equal(t, "llama3.2:3b", cat.GetModels()[0].GetName())
	require.EqualValues(t, 8192, cat.GetModels()[0].GetContextLength())
	require.NoError(t, r.stop(t))

	// A restart registers the same seed again without a duplicate.
	again := start(t, baseArgs(dir, "-seed-backends", "local=ollama:"+ollama.URL()), nil)
	code, body := again.get(t, "/api/admin/backends", seed)
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal(body, &backends))
	require.Len(t, backends, 1)
	require.NoError(t, again.stop(t))
}

func TestExplicitClusterTokenIsUsedAndNotWritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seed, err := identity.NewKey()
	require.NoError(t, err)
	r := start(t, baseArgs(dir), map[string]string{
		"MINDROUTER_CP_ADMIN_API_KEY": seed, "MINDROUTER_CLUSTER_TOKEN": "explicit-cluster-token",
	})
	_, err = r.catalog(t, "explicit-cluster-token", seed)
	require.NoError(t, err)
	require.NoFileExists(t, filepath.Join(dir, "cluster-token"))
	require.NoError(t, r.stop(t))

	// A token file elsewhere is created there, 0600, and reused.
	tokenFile := filepath.Join(t.TempDir(), "secrets", "token")
	r = start(t, baseArgs(dir, "-cluster-token-file", tokenFile), nil)
	token := readToken(t, tokenFile)
	_, err = r.catalog(t, token, seed)
	require.NoError(t, err)
	require.NoError(t, r.stop(t))
	r = start(t, baseArgs(dir, "-cluster-token-file", tokenFile), nil)
	require.Equal(t, token, readToken(t, tokenFile))
	_, err = r.catalog(t, token, seed)
	require.NoError(t, err)
	require.NoError(t, r.stop(t))
}

func TestBadConfigurationIsRefusedNamingTheSetting(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		vars    map[string]string
		mention string
	}{
		{"unknown flag", []string{"-no-such-flag"}, nil, "no-such-flag"},
		{"context cap too small", []string{"-context-cap", "10"}, nil, "context-cap"},
		{"unknown database driver", []string{"-db-driver", "postgres"}, nil, "db-driver"},
		{"mysql without DSN", []string{"-db-driver", "mysql"}, nil, "db-dsn"},
		{"log format", []string{"-log-format", "xml"}, nil, "log-format"},
		{"log level", []string{"-log-level", "loud"}, nil, "log-level"},
		{"admin key not ours", []string{"-admin-api-key", "sk-123"}, nil, "admin-api-key"},
		{"seed backend", []string{"-seed-backends", "local=tgi:http://x"}, nil, "seed backend"},
		{"heartbeat not below lease", []string{"-heartbeat-interval", "1m", "-lease-ttl", "30s"}, nil, "heartbeat-interval"},
		{"malformed environment", nil, map[string]string{"MINDROUTER_CP_LEASE_TTL": "soon"}, "MINDROUTER_CP_LEASE_TTL"},
		{"malformed old environment name", nil, map[string]string{"MINDROUTER_LEASE_TTL": "soon"}, "MINDROUTER_LEASE_TTL"},
		{"token and token file", []string{"-cluster-token", "t", "-cluster-token-file", "f"}, nil, "not both"},
		{"negative duration", []string{"-queue-timeout", "-1s"}, nil, "queue-timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var stdout, stderr syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := Run(ctx, baseArgs(dir, tc.args...), env(tc.vars), &stdout, &stderr)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.mention)
			require.Empty(t, stdout.String(), "nothing is created before the configuration is valid")
			require.NoFileExists(t, filepath.Join(dir, "mindrouter.db"))
			require.NoFileExists(t, filepath.Join(dir, "cluster-token"))
		})
	}
}

func TestHelpIsNotAnError(t *testing.T) {
	t.Parallel()
	var stdout, stderr syncBuffer
	dir := t.TempDir()
	require.NoError(t, Run(t.Context(), baseArgs(dir, "-h"), env(nil), &stdout, &stderr))
	require.Contains(t, stdout.String(), "MINDROUTER_CP_GRPC_LISTEN", "the flags and their variables go to stdout")
	require.NoFileExists(t, filepath.Join(dir, "mindrouter.db"))
}

func TestOldEnvironmentNameIsReadWithAWarning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := start(t, baseArgs(dir), map[string]string{"MINDROUTER_SESSION_GRACE": "20s"})
	require.NoError(t, r.stop(t))
	require.Contains(t, r.stderr.String(), `"name":"MINDROUTER_SESSION_GRACE","use":"MINDROUTER_CP_SESSION_GRACE"`)
}

func TestOccupiedPortIsAnError(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	args := baseArgs(t.TempDir())
	args = append(args, "-rest-listen", taken.Addr().String())
	err = Run(ctx, args, env(nil), &stdout, &stderr)
	require.Error(t, err)
	require.Contains(t, err.Error(), taken.Addr().String())
}
