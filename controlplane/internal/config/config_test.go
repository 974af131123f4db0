package config

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadPrecedence(t *testing.T) {
	env := map[string]string{"MINDROUTER_CP_GRPC_LISTEN": "127.0.0.1:7000", "MINDROUTER_LEASE_TTL": "45s"}
	c, err := Load([]string{"-lease-ttl", "50s"}, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7000", c.GRPCListen, "env overrides the default")
	require.Equal(t, 50*time.Second, c.LeaseTTL, "flag overrides env")
	require.Equal(t, ":9091", c.RESTListen)
	require.Equal(t, 64, c.MaxQueuePerUser)
	require.Equal(t, 32, c.MaxConcurrentPerUser)
	require.Equal(t, 720*time.Hour, c.QuotaPeriod)
	require.EqualValues(t, 1000, c.DefaultMaxTokens)

	c, err = Load([]string{"-max-concurrent-per-user", "-1", "-quota-period", "168h"}, func(string) string { return "" }, io.Discard)
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
		{"bad env duration", nil, map[string]string{"MINDROUTER_QUEUE_TIMEOUT": "soon"}, "MINDROUTER_QUEUE_TIMEOUT"},
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
		{"no output allowance", nil, map[string]string{"MINDROUTER_DEFAULT_MAX_TOKENS": "0"}, "default-max-tokens must be at least 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			require.ErrorContains(t, err, tc.want)
		})
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
