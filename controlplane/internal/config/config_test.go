package config

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// envOf is a lookupEnv over m.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadPrecedence(t *testing.T) {
	env := map[string]string{"MINDROUTER_CP_GRPC_LISTEN": "127.0.0.1:7000", "MINDROUTER_CP_LEASE_TTL": "45s"}
	c, err := Load([]string{"-lease-ttl", "50s"}, envOf(env), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7000", c.GRPCListen, "env overrides the default")
	require.Equal(t, 50*time.Second, c.LeaseTTL, "flag overrides env")
	require.Equal(t, ":9091", c.RESTListen)
	require.Equal(t, 64, c.MaxQueuePerUser)
	require.Equal(t, 32, c.MaxConcurrentPerUser)
	require.Equal(t, 720*time.Hour, c.QuotaPeriod)
	require.EqualValues(t, 1000, c.DefaultMaxTokens)

	require.Equal(t, "json", c.LogFormat, "every binary logs JSON by default")
	require.Empty(t, c.Deprecated)

	c, err = Load([]string{"-max-concurrent-per-user", "-1", "-quota-period", "168h"}, envOf(nil), io.Discard)
	require.NoError(t, err)
	require.Equal(t, -1, c.MaxConcurrentPerUser)
	require.Equal(t, 168*time.Hour, c.QuotaPeriod)
}

func TestLoadRejectsBadInput(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad env duration", nil, map[string]string{"MINDROUTER_CP_QUEUE_TIMEOUT": "soon"}, "MINDROUTER_CP_QUEUE_TIMEOUT"},
		{"bad old env duration", nil, map[string]string{"MINDROUTER_QUEUE_TIMEOUT": "soon"}, "MINDROUTER_QUEUE_TIMEOUT"},
		{"token and token file", []string{"-cluster-token", "t", "-cluster-token-file", "f"}, nil, "not both"},
		{"stray argument", []string{"serve"}, nil, "unexpected arguments"},
		{"mysql without dsn", []string{"-db-driver", "mysql"}, nil, "mysql needs -db-dsn"},
		{"unknown driver", []string{"-db-driver", "postgres"}, nil, "use sqlite or mysql"},
		{"heartbeat vs ttl", []string{"-heartbeat-interval", "40s"}, nil, "must be shorter than lease-ttl"},
		{"bad seed", []string{"-seed-backends", "x=tgi:http://a"}, nil, "seed backend"},
		{"bad admin key", []string{"-admin-api-key", "sk-123"}, nil, "must start with mr2_"},
		{"unknown scheduler", []string{"-scheduler", "lottery"}, nil, "use wdrr or fifo"},
		{"no per-user queue", []string{"-max-queue-per-user", "0"}, nil, "max-queue-per-user must be at least 1"},
		{"zero concurrency", []string{"-max-concurrent-per-user", "0"}, nil, "or -1 for unlimited"},
		{"tiny quota period", []string{"-quota-period", "5m"}, nil, "quota-period 5m0s: use whole days"},
		{"quota period not in days", []string{"-quota-period", "36h"}, nil, "use whole days"},
		{"no output allowance", nil, map[string]string{"MINDROUTER_CP_DEFAULT_MAX_TOKENS": "0"}, "default-max-tokens must be at least 1"},
		{"alert interval too short", []string{"-alert-interval", "500ms"}, nil, "alert-interval must be at least 1s"},
		{"node silence too short", []string{"-alert-node-silent-after", "1m"}, nil,
			"alert-node-silent-after must be at least 90s (a node's last_seen is written every minute)"},
		{"raw retention too short", []string{"-history-raw-retention", "30s"}, nil,
			"history-raw-retention must be at least 1m (the next tier folds 1-minute buckets from it)"},
		{"minute retention too short", []string{"-history-minute-retention", "59m"}, nil, "history-minute-retention must be at least 1h"},
		{"hour retention too short", []string{"-history-hour-retention", "10m"}, nil, "history-hour-retention must be at least 1h"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, envOf(tc.env), io.Discard)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestOldEnvironmentNamesStillWorkWithAWarning(t *testing.T) {
	c, err := Load(nil, envOf(map[string]string{"MINDROUTER_LEASE_TTL": "45s", "MINDROUTER_DATA_DIR": "/old",
		"MINDROUTER_CP_DATA_DIR": "/new"}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, 45*time.Second, c.LeaseTTL)
	require.Equal(t, "/new", c.DataDir, "the new name wins over the old one")
	require.Equal(t, []Deprecation{{Old: "MINDROUTER_LEASE_TTL", New: "MINDROUTER_CP_LEASE_TTL"}}, c.Deprecated)
}

func TestHelpNamesEveryVariableAndHidesTheToken(t *testing.T) {
	var out bytes.Buffer
	_, err := Load([]string{"-h"}, envOf(map[string]string{"MINDROUTER_CLUSTER_TOKEN": "super-secret"}), &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.NotContains(t, out.String(), "super-secret")
	for _, name := range []string{"MINDROUTER_CP_GRPC_LISTEN", "MINDROUTER_CLUSTER_TOKEN", "MINDROUTER_LOG_FORMAT", "MINDROUTER_CP_LEASE_TTL"} {
		require.Contains(t, out.String(), "(env "+name+")")
	}
}

// TestEveryVariableIsDocumented keeps docs/configuration.md in step with the flags.
func TestEveryVariableIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "configuration.md"))
	require.NoError(t, err)
	var out bytes.Buffer
	_, _ = Load([]string{"-h"}, envOf(nil), &out)
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := 0
	for _, line := range strings.Split(out.String(), "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "-")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		n++
		require.Contains(t, string(doc), "`"+EnvName(name)+"`", "flag -%s", name)
	}
	require.Greater(t, n, 20)
	for old := range renamedEnv {
		require.Contains(t, string(doc), "`"+old+"`", "renamed variable")
	}
}

func TestParseSeeds(t *testing.T) {
	got, err := ParseSeeds("a=ollama:http://127.0.0.1:11434, b=vllm:https://gpu:8000")
	require.NoError(t, err)
	require.Equal(t, []BackendSeed{{"a", "ollama", "http://127.0.0.1:11434"}, {"b", "vllm", "https://gpu:8000"}}, got)
}

func TestReadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "token")
	calls := 0
	gen := func() (string, error) { calls++; return "s3cret", nil }
	first, err := ReadOrCreateSecret(path, gen)
	require.NoError(t, err)
	second, err := ReadOrCreateSecret(path, gen)
	require.NoError(t, err)
	require.Equal(t, "s3cret", first)
	require.Equal(t, first, second)
	require.Equal(t, 1, calls, "the secret is generated once and then read back")
}

// TestLeaderElectionSettings: the deployment contract's names, their defaults
// (a single process, always the leader) and their validation.
func TestLeaderElectionSettings(t *testing.T) {
	c, err := Load(nil, envOf(nil), io.Discard)
	require.NoError(t, err)
	require.False(t, c.LeaderElection, "the embedded default is one process, always the leader")
	require.Equal(t, 5*time.Second, c.LeaderLeaseTTL)
	require.True(t, strings.HasSuffix(c.Advertise(), ":9090"), c.Advertise())

	c, err = Load(nil, envOf(map[string]string{"MINDROUTER_LEADER_ELECTION": "true", "MINDROUTER_LEADER_LEASE_TTL": "2s",
		"MINDROUTER_ADVERTISE_ADDR": "cp-1:9090"}), io.Discard)
	require.NoError(t, err)
	require.True(t, c.LeaderElection)
	require.Equal(t, 2*time.Second, c.LeaderLeaseTTL)
	require.Equal(t, "cp-1:9090", c.Advertise())

	_, err = Load([]string{"-leader-election", "-leader-lease-ttl", "10ms", "-advertise-addr", "cp-1"}, envOf(nil), io.Discard)
	require.ErrorContains(t, err, "leader-lease-ttl 10ms is too short")
	require.ErrorContains(t, err, `advertise-addr "cp-1": want host:port`)
}

func TestHistoryFlags(t *testing.T) {
	c, err := Load([]string{"-history-raw-retention", "2h", "-energy-prompt-weight", "0.5", "-energy-price-kwh", "0.3"},
		envOf(map[string]string{"MINDROUTER_CP_HISTORY_HOUR_RETENTION": "48h"}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, 2*time.Hour, c.History.RawRetention)
	require.Equal(t, 48*time.Hour, c.History.HourRetention)
	require.Equal(t, 30*24*time.Hour, c.History.MinuteRetention)
	require.InDelta(t, 0.5, c.History.PromptWeight, 0)
	require.InDelta(t, 0.3, c.History.PricePerKWh, 0)
	for _, bad := range [][]string{
		{"-history-raw-retention", "1s"},
		{"-energy-prompt-weight", "-1"},
		{"-energy-prompt-weight", "0", "-energy-completion-weight", "0"},
		{"-energy-price-kwh", "-0.1"},
		{"-history-queue", "0"},
	} {
		_, err := Load(bad, envOf(nil), io.Discard)
		require.Error(t, err, "%v", bad)
	}
}
