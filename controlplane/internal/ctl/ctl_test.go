package ctl_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/mindrouter/mindrouter/controlplane/internal/app"
)

// binary is the mindrouterctl built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mindrouterctl")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "mindrouterctl")
	build := exec.Command("go", "build", "-o", binary, "github.com/mindrouter/mindrouter/controlplane/cmd/mindrouterctl")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic("build mindrouterctl: " + err.Error())
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// startControlPlane runs the real control plane on SQLite with a known admin
// key and returns its gRPC address and the key.
func startControlPlane(t *testing.T, extra ...string) (string, string) {
	grpcAddr, _, key := startControlPlaneREST(t, extra...)
	return grpcAddr, key
}

// startControlPlaneREST is startControlPlane with extra flags, answering the
// REST address too.
func startControlPlaneREST(t *testing.T, extra ...string) (string, string, string) {
	t.Helper()
	return startControlPlaneIn(t, t.TempDir(), extra...)
}

// startControlPlaneIn is startControlPlaneREST with the data directory dir.
func startControlPlaneIn(t *testing.T, dir string, extra ...string) (string, string, string) {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	key := "mr2_" + base64.RawURLEncoding.EncodeToString(b)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	done := make(chan error, 1)
	args := []string{"-data-dir", dir, "-grpc-listen", "127.0.0.1:0", "-rest-listen", "127.0.0.1:0",
		"-admin-api-key", key, "-log-format", "json", "-shutdown-timeout", "5s",
		// An audited admin write holds its Argon2 work inside one transaction;
		// under -race on a loaded machine that passes the default 5 s.
		"-db-timeout", "30s"}
	args = append(args, extra...)
	go func() { done <- app.Run(ctx, args, func(string) string { return "" }, &lockedBuffer{}, logs) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line struct{ Msg, GRPC, REST string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "control plane serving" {
				return line.GRPC, line.REST, key
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("control plane did not start:\n%s", logs.String())
	return "", "", ""
}

// ctl runs the binary with only the given environment.
func ctl(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

func TestCLIAgainstARealControlPlane(t *testing.T) {
	t.Parallel()
	addr, key := startControlPlane(t)
	env := []string{"MINDROUTER_ADDR=" + addr, "MINDROUTER_API_KEY=" + key}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := ctl(t, env, args...)
		require.Equal(t, 0, code, "mindrouterctl %v: %s", args, errOut)
		return out
	}

	out := run("groups", "list")
	assert.Regexp(t, `(?m)^ID\s+NAME\s+IS_ADMIN`, out, "a table with a header")
	assert.Contains(t, out, "faculty")

	var group struct{ Group struct{ ID, Name string } }
	require.NoError(t, json.Unmarshal([]byte(run("groups", "create", "--name", "lab", "--max-api-keys", "2", "-o", "json")), &group))
	assert.Equal(t, "lab", group.Group.Name)

	out = run("users", "create", "--username", "ada", "--email", "ada@example.edu", "--password", "correct horse battery",
		"--group-id", group.Group.ID, "--college", "Engineering", "--department", "Physics", "--intended-use", "thesis")
	assert.Regexp(t, `(?m)^\d+\s+ada\s+ada@example.edu\s+lab\s+true`, out)
	var users struct {
		Users []struct{ ID, Username string }
		Total string
	}
	require.NoError(t, json.Unmarshal([]byte(run("users", "list", "--search", "ADA", "-o", "json")), &users))
	require.Len(t, users.Users, 1)
	userID := users.Users[0].ID

	var made struct {
		APIKey  struct{ ID string } `json:"api_key"`
		FullKey string              `json:"full_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(run("keys", "create", userID, "--name", "ci", "--scopes", "inference", "-o", "json")), &made))
	assert.True(t, strings.HasPrefix(made.FullKey, "mr2_"))
	out = run("keys", "list", "--user-id", userID)
	assert.Contains(t, out, "ci")
	assert.NotContains(t, out, made.FullKey, "lists never show a key")
	out = run("keys", "revoke", made.APIKey.ID)
	assert.Contains(t, out, "revoked")
	run("keys", "delete", made.APIKey.ID)
	assert.NotContains(t, run("keys", "list", "--user-id", userID), " ci ", "deleted")
	_, errOut, code := ctl(t, env, "keys", "delete", made.APIKey.ID)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "NotFound: ")

	var profile struct {
		User struct{ College, Department, IntendedUse string }
	}
	require.NoError(t, json.Unmarshal([]byte(run("users", "update", userID, "--department", "Chemistry", "-o", "json")), &profile))
	assert.Equal(t, "Engineering", profile.User.College)
	assert.Equal(t, "Chemistry", profile.User.Department)

	assert.Regexp(t, `^ID\s+KIND\s+USERNAME\s+SERVICE_NAME\s+STATUS\s+DATA_RISK_LEVEL\s+COMPLIANCE_TAGS`, run("service-key-requests", "list", "--status", "all"))
	assert.Regexp(t, `^ID\s+KIND`, run("service-key-requests", "list", "--kind", "revocation"))
	_, errOut, code = ctl(t, env, "service-key-requests", "list", "--kind", "bogus")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "InvalidArgument: ")
	_, errOut, code = ctl(t, env, "service-key-requests", "review", "999", "--approved")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "NotFound: ")

	var asYAML map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(run("users", "update", userID, "--is-active=false", "-o", "yaml")), &asYAML))
	assert.Equal(t, false, asYAML["user"].(map[string]any)["is_active"])

	out = run("quota-requests", "list")
	assert.Regexp(t, `^ID\s+USERNAME\s+REQUESTED_TOKENS`, out)
	run("backends", "list")
	run("models", "list")
	out = run("models", "alias", "set", "default-chat", "--targets", "llama3.2,qwen3", "--description", "chat")
	assert.Regexp(t, `(?m)^default-chat\s+llama3.2,qwen3\s+chat`, out)
	assert.Contains(t, run("models", "alias", "list"), "default-chat")
	run("models", "alias", "delete", "default-chat")
	assert.NotContains(t, run("models", "alias", "list"), "default-chat")
	out = run("models", "override", "set", "Qwen/Qwen2.5-VL-7B", "--vision", "--tools=false", "--context-length", "65536", "-o", "json")
	var ov struct{ Override map[string]any }
	require.NoError(t, json.Unmarshal([]byte(out), &ov))
	assert.Equal(t, true, ov.Override["vision"])
	assert.Equal(t, false, ov.Override["tools"])
	assert.NotContains(t, ov.Override, "thinking", "an unset flag leaves the capability to discovery")
	assert.Contains(t, run("models", "override", "list"), "Qwen/Qwen2.5-VL-7B")
	run("models", "override", "delete", "Qwen/Qwen2.5-VL-7B")
	_, errOut, code = ctl(t, env, "models", "alias", "set", "bad/name", "--targets", "x")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "InvalidArgument: ")
	run("nodes", "register", "--name", "gpu-1", "--hostname", "gpu-1.example")
	assert.Contains(t, run("nodes", "list"), "gpu-1.example")
	assert.Contains(t, run("queue"), "total_waiting")
	run("decisions", "--limit", "5")

	_, errOut, code = ctl(t, env, "groups", "delete", group.Group.ID)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "Aborted: ")
	assert.Contains(t, errOut, "move them to another group first")

	_, errOut, code = ctl(t, env, "users", "get", "abc")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `ID: want a whole number, not "abc"`)

	_, errOut, code = ctl(t, append(env, "MINDROUTER_API_KEY=mr2_"+strings.Repeat("A", 43)), "users", "list")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "Unauthenticated: invalid API key (reason REASON_INVALID_CREDENTIAL)")
	assert.NotContains(t, errOut, key)

	_, errOut, code = ctl(t, env, "--tls", "groups", "list")
	assert.Equal(t, 1, code, "--tls takes effect: the plaintext server fails the handshake")
	assert.Contains(t, errOut, "Unavailable: ")

	assert.Regexp(t, `^DAY\s+KEY\s+REQUESTS`, run("telemetry", "report", "--range", "7d", "--group-by", "model"))
	assert.True(t, strings.HasPrefix(run("telemetry", "export", "--range", "1h", "--scope", "gpu"), "at,scope,node_id,gpu_index"))
	assert.Regexp(t, `^AT\s+VALUE`, run("telemetry", "history", "--metric", "cpu_power_watts", "--range", "1h"))
	_, errOut, code = ctl(t, env, "telemetry", "history", "--metric", "volts")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "InvalidArgument: ")

	_, errOut, code = ctl(t, env, "system", "offline")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "a message is required")
	var sys struct {
		Status struct {
			Online    bool
			Message   string
			ChangedBy string `json:"changed_by"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(run("system", "offline", "--message", "driver upgrade", "-o", "json")), &sys))
	assert.False(t, sys.Status.Online)
	assert.Equal(t, "driver upgrade", sys.Status.Message)
	assert.Regexp(t, `(?m)^ONLINE\s+MESSAGE\s+CHANGED_AT\s+CHANGED_BY\n.*driver upgrade`, run("system", "status"))
	require.NoError(t, json.Unmarshal([]byte(run("system", "online", "-o", "json")), &sys))
	assert.True(t, sys.Status.Online)
	assert.Empty(t, sys.Status.Message)

	out = run("completion", "bash")
	assert.Contains(t, out, "mindrouterctl")
}

func TestCLISettingsPrecedence(t *testing.T) {
	t.Parallel()
	addr, key := startControlPlane(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ctl.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("address: "+addr+"\napi_key: "+key+"\noutput: json\n"), 0o600))

	out, errOut, code := ctl(t, []string{"MINDROUTER_CTL_CONFIG=" + cfg}, "groups", "list")
	require.Equal(t, 0, code, errOut)
	assert.True(t, strings.HasPrefix(strings.TrimSpace(out), "{"), "the file's output setting applies")

	_, errOut, code = ctl(t, []string{"MINDROUTER_CTL_CONFIG=" + cfg, "MINDROUTER_API_KEY=mr2_" + strings.Repeat("B", 43)}, "groups", "list")
	assert.Equal(t, 1, code, "the environment beats the file")
	assert.Contains(t, errOut, "Unauthenticated")

	out, errOut, code = ctl(t, []string{"MINDROUTER_CTL_CONFIG=" + cfg, "MINDROUTER_API_KEY=mr2_" + strings.Repeat("B", 43)},
		"--key", key, "-o", "table", "groups", "list")
	require.Equal(t, 0, code, "flags beat both: %s", errOut)
	assert.Regexp(t, `^ID\s+NAME`, out)

	_, errOut, code = ctl(t, nil, "groups", "list")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no API key")
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("adress: x\n"), 0o600))
	_, errOut, code = ctl(t, []string{"MINDROUTER_CTL_CONFIG=" + bad}, "groups", "list")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "adress", "a misspelt setting is named")
	_, errOut, code = ctl(t, []string{"MINDROUTER_API_KEY=" + key, "MINDROUTER_ADDR=" + addr}, "-o", "xml", "groups", "list")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "use table, json or yaml")
}
