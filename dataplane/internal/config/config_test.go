package config_test

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/config"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(
		[]string{"-listen", "127.0.0.1:9000", "-max-attempts", "5"},
		env(map[string]string{
			"MINDROUTER_DP_LISTEN":               ":7000",
			"MINDROUTER_CONTROLPLANE_ADDR":       "cp:9090",
			"MINDROUTER_CLUSTER_TOKEN":           "tok",
			"MINDROUTER_DP_MAX_BODY_BYTES":       "10MiB",
			"MINDROUTER_DP_ADMIT_TIMEOUT":        "30s",
			"MINDROUTER_LOG_FORMAT":              "text",
			"MINDROUTER_DP_REPLICA_ID":           "dp-a",
			"MINDROUTER_DP_BACKEND_IDLE_TIMEOUT": "0s",
		}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9000", cfg.Listen, "flags beat the environment")
	require.Equal(t, "cp:9090", cfg.ControlPlaneAddr, "the environment beats defaults")
	require.Equal(t, "tok", cfg.ClusterToken)
	require.Equal(t, int64(10<<20), cfg.MaxBodyBytes)
	require.Equal(t, 5, cfg.MaxAttempts)
	require.Equal(t, 30*time.Second, cfg.AdmitTimeout)
	require.Equal(t, "text", cfg.LogFormat)
	require.Equal(t, "dp-a", cfg.ReplicaID)
	require.Zero(t, cfg.BackendIdleTimeout)
	require.Equal(t, 180*time.Second, cfg.BackendHeaderTimeout, "defaults stay")
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(nil, env(map[string]string{"MINDROUTER_CLUSTER_TOKEN": "t"}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, ":8000", cfg.Listen)
	require.Equal(t, "127.0.0.1:9090", cfg.ControlPlaneAddr)
	require.Equal(t, int64(50<<20), cfg.MaxBodyBytes)
	require.Equal(t, 3, cfg.MaxAttempts)
	host, _ := os.Hostname()
	require.True(t, strings.HasPrefix(cfg.ReplicaID, host+"-"), "replica id %q", cfg.ReplicaID)
}

func TestTokenFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte("  from-file\n"), 0o600))
	cfg, err := config.Load([]string{"-cluster-token-file", path}, env(nil), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "from-file", cfg.ClusterToken)

	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	_, err = config.Load([]string{"-cluster-token-file", empty}, env(nil), io.Discard)
	require.ErrorContains(t, err, "is empty")
	_, err = config.Load([]string{"-cluster-token-file", filepath.Join(t.TempDir(), "missing")}, env(nil), io.Discard)
	require.ErrorContains(t, err, "cluster token file")
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := config.Load([]string{"-listen", "nonsense", "-max-attempts", "0", "-log-format", "xml", "-log-level", "loud",
		"-release-timeout", "0s", "-release-drain-timeout", "0s", "-admit-timeout", "-1s"}, env(nil), io.Discard)
	require.Error(t, err)
	for _, want := range []string{"--listen", "no cluster token", "--max-attempts", "--log-format", "--log-level", "--release-timeout", "--release-drain-timeout", "--admit-timeout"} {
		require.ErrorContains(t, err, want)
	}
	_, err = config.Load(nil, env(map[string]string{"MINDROUTER_DP_MAX_ATTEMPTS": "many", "MINDROUTER_DP_MAX_BODY_BYTES": "lots", "MINDROUTER_DP_ADMIT_TIMEOUT": "soon"}), io.Discard)
	require.ErrorContains(t, err, `MINDROUTER_DP_MAX_ATTEMPTS="many": not an integer`)
	require.ErrorContains(t, err, "MINDROUTER_DP_MAX_BODY_BYTES")
	require.ErrorContains(t, err, "MINDROUTER_DP_ADMIT_TIMEOUT")
	_, err = config.Load([]string{"-cluster-token", "a", "-cluster-token-file", "b"}, env(nil), io.Discard)
	require.ErrorContains(t, err, "not both")
	_, err = config.Load([]string{"extra"}, env(map[string]string{"MINDROUTER_CLUSTER_TOKEN": "t"}), io.Discard)
	require.ErrorContains(t, err, "unexpected arguments")
}

func TestHelpHidesTheToken(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	_, err := config.Load([]string{"-h"}, env(map[string]string{"MINDROUTER_CLUSTER_TOKEN": "super-secret"}), &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Contains(t, out.String(), "MINDROUTER_CLUSTER_TOKEN")
	require.NotContains(t, out.String(), "super-secret")
}

func TestLogValueRedactsToken(t *testing.T) {
	t.Parallel()
	cfg := config.NewDefault()
	cfg.ClusterToken = "super-secret"
	require.NotContains(t, cfg.LogValue().String(), "super-secret")
}

func TestPprofListen(t *testing.T) {
	t.Parallel()
	token := map[string]string{"MINDROUTER_CLUSTER_TOKEN": "t"}
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		remote  bool
		wantErr string
	}{
		{name: "off by default"},
		{name: "loopback flag", args: []string{"-pprof-listen", "127.0.0.1:6060"}, want: "127.0.0.1:6060"},
		{name: "loopback env", env: map[string]string{"MINDROUTER_DP_PPROF_LISTEN": "localhost:6060"}, want: "localhost:6060"},
		{name: "ipv6 loopback", args: []string{"-pprof-listen", "[::1]:0"}, want: "[::1]:0"},
		{name: "flag beats env", args: []string{"-pprof-listen", "127.0.0.2:1"},
			env: map[string]string{"MINDROUTER_DP_PPROF_LISTEN": "127.0.0.1:6060"}, want: "127.0.0.2:1"},
		{name: "old env name still read", env: map[string]string{"MINDROUTER_PPROF_LISTEN": "localhost:6061"}, want: "localhost:6061"},
		{name: "all interfaces refused", args: []string{"-pprof-listen", ":6060"}, wantErr: "not a loopback address"},
		{name: "remote address refused", args: []string{"-pprof-listen", "10.0.0.5:6060"}, wantErr: "--pprof-allow-remote"},
		{name: "host name refused", args: []string{"-pprof-listen", "dp.example:6060"}, wantErr: "not a loopback address"},
		{name: "not host:port", args: []string{"-pprof-listen", "6060"}, wantErr: "--pprof-listen"},
		{name: "remote allowed by flag", args: []string{"-pprof-listen", ":6060", "-pprof-allow-remote"}, want: ":6060", remote: true},
		{name: "remote allowed by env", args: []string{"-pprof-listen", "10.0.0.5:6060"},
			env: map[string]string{"MINDROUTER_PPROF_ALLOW_REMOTE": "true"}, want: "10.0.0.5:6060", remote: true},
		{name: "allow-remote is not an address check", args: []string{"-pprof-listen", "nope", "-pprof-allow-remote"}, wantErr: "not host:port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := map[string]string{}
			for k, v := range token {
				e[k] = v
			}
			for k, v := range tc.env {
				e[k] = v
			}
			cfg, err := config.Load(tc.args, env(e), io.Discard)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, cfg.PprofListen)
			require.Equal(t, tc.remote, cfg.PprofAllowRemote)
		})
	}
}

func TestHelpNamesPprofFlags(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	_, err := config.Load([]string{"-h"}, env(nil), &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, want := range []string{"-pprof-listen", "MINDROUTER_DP_PPROF_LISTEN", "-pprof-allow-remote", "MINDROUTER_DP_PPROF_ALLOW_REMOTE", "loopback"} {
		require.Contains(t, out.String(), want)
	}
}

func TestOldEnvironmentNamesStillWorkWithAWarning(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(nil, env(map[string]string{"MINDROUTER_CLUSTER_TOKEN": "t",
		"MINDROUTER_DP_CONTROLPLANE_ADDR": "cp:1", "MINDROUTER_PPROF_LISTEN": "127.0.0.1:1",
		"MINDROUTER_DP_PPROF_LISTEN": "127.0.0.1:2"}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "cp:1", cfg.ControlPlaneAddr)
	require.Equal(t, "127.0.0.1:2", cfg.PprofListen, "the new name wins over the old one")
	require.Equal(t, []config.Deprecation{{Old: "MINDROUTER_DP_CONTROLPLANE_ADDR", New: "MINDROUTER_CONTROLPLANE_ADDR"}}, cfg.Deprecated)
}

// TestSeveralControlPlanes: a comma-separated list names a leader and its
// standbys; every entry must be host:port.
func TestSeveralControlPlanes(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load([]string{"-controlplane-addr", "cp-0:9090, cp-1:9090", "-drain-delay", "5s"},
		env(map[string]string{"MINDROUTER_CLUSTER_TOKEN": "t"}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{"cp-0:9090", "cp-1:9090"}, cfg.ControlPlaneAddrs())
	require.Equal(t, 5*time.Second, cfg.DrainDelay)
	_, err = config.Load([]string{"-controlplane-addr", "cp-0:9090,cp-1"}, env(map[string]string{"MINDROUTER_CLUSTER_TOKEN": "t"}), io.Discard)
	require.ErrorContains(t, err, `"cp-1" is not host:port`)
	_, err = config.Load([]string{"-drain-delay", "-1s"}, env(map[string]string{"MINDROUTER_CLUSTER_TOKEN": "t"}), io.Discard)
	require.ErrorContains(t, err, "--drain-delay must not be negative")
}

// TestEveryVariableIsDocumented keeps docs/configuration.md in step with the flags.
func TestEveryVariableIsDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "configuration.md"))
	require.NoError(t, err)
	var out strings.Builder
	_, _ = config.Load([]string{"-h"}, env(nil), &out)
	n := 0
	for _, line := range strings.Split(out.String(), "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "-")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		n++
		require.Contains(t, string(doc), "`"+config.EnvName(name)+"`", "flag -%s", name)
	}
	require.Greater(t, n, 15)
}

// TestAuditSwitch: audit is on unless -audit=off or MINDROUTER_DP_AUDIT=off
// turns it off; anything but on/off (or true/false) is refused.
func TestAuditSwitch(t *testing.T) {
	t.Parallel()
	base := map[string]string{"MINDROUTER_CLUSTER_TOKEN": "tok"}
	cfg, err := config.Load(nil, env(base), io.Discard)
	require.NoError(t, err)
	require.True(t, cfg.Audit, "on by default")
	cfg, err = config.Load([]string{"-audit", "off"}, env(base), io.Discard)
	require.NoError(t, err)
	require.False(t, cfg.Audit)
	withEnv := map[string]string{"MINDROUTER_CLUSTER_TOKEN": "tok", "MINDROUTER_DP_AUDIT": "OFF"}
	cfg, err = config.Load(nil, env(withEnv), io.Discard)
	require.NoError(t, err)
	require.False(t, cfg.Audit, "the environment turns it off")
	cfg, err = config.Load([]string{"-audit=on"}, env(withEnv), io.Discard)
	require.NoError(t, err)
	require.True(t, cfg.Audit, "a flag beats the environment")
	_, err = config.Load([]string{"-audit", "maybe"}, env(base), io.Discard)
	require.Error(t, err)
}
