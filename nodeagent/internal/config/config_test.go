package config_test

import (
	"bytes"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/nodeagent/internal/config"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c config.Config)
		wantErr []string
	}{
		{
			name: "defaults with secret from env",
			env:  map[string]string{"MINDROUTER_AGENT_SECRET": "x"},
			check: func(t *testing.T, c config.Config) {
				assert.Equal(t, "127.0.0.1:9090", c.ControlPlaneAddr)
				assert.Equal(t, host, c.NodeName)
				assert.Equal(t, 10*time.Second, c.Interval)
				assert.Equal(t, "json", c.LogFormat)
				assert.Empty(t, c.MetricsAddr)
				assert.False(t, c.TLS)
			},
		},
		{
			name: "env",
			env: map[string]string{
				"MINDROUTER_AGENT_CONTROL_PLANE": "cp:9443", "MINDROUTER_AGENT_NODE_NAME": "gpu-07",
				"MINDROUTER_AGENT_SECRET_FILE": "/etc/secret", "MINDROUTER_AGENT_INTERVAL": "5s",
				"MINDROUTER_AGENT_TLS_CA_FILE": "/etc/ca.pem", "MINDROUTER_AGENT_METRICS_ADDR": ":9102",
				"MINDROUTER_LOG_FORMAT": "text", "MINDROUTER_LOG_LEVEL": "debug",
			},
			check: func(t *testing.T, c config.Config) {
				assert.Equal(t, "cp:9443", c.ControlPlaneAddr)
				assert.Equal(t, "gpu-07", c.NodeName)
				assert.Equal(t, "/etc/secret", c.SecretFile)
				assert.Equal(t, 5*time.Second, c.Interval)
				assert.True(t, c.TLS, "a CA file implies TLS")
				assert.Equal(t, ":9102", c.MetricsAddr)
				assert.Equal(t, "text", c.LogFormat)
			},
		},
		{
			name: "flags beat env",
			args: []string{"-node-name", "flag-node", "-interval", "30s", "-secret", "y"},
			env:  map[string]string{"MINDROUTER_AGENT_NODE_NAME": "env-node", "MINDROUTER_AGENT_INTERVAL": "5s"},
			check: func(t *testing.T, c config.Config) {
				assert.Equal(t, "flag-node", c.NodeName)
				assert.Equal(t, 30*time.Second, c.Interval)
			},
		},
		{
			name:    "no secret",
			wantErr: []string{"no node secret"},
		},
		{
			name:    "both secrets",
			args:    []string{"-secret", "a", "-secret-file", "/f"},
			wantErr: []string{"only one of -secret and -secret-file"},
		},
		{
			name: "every problem at once",
			args: []string{"-control-plane", "nohost", "-node-name", " ", "-secret", "a", "-interval", "10ms",
				"-log-format", "xml", "-log-level", "loud", "-metrics-addr", "bad"},
			wantErr: []string{"control-plane \"nohost\"", "node-name is empty", "interval 10ms is too short",
				"log-format \"xml\"", "log-level \"loud\"", "metrics-addr \"bad\""},
		},
		{
			name:    "malformed env",
			env:     map[string]string{"MINDROUTER_AGENT_INTERVAL": "soon", "MINDROUTER_AGENT_TLS": "maybe"},
			wantErr: []string{"MINDROUTER_AGENT_INTERVAL=\"soon\"", "MINDROUTER_AGENT_TLS=\"maybe\""},
		},
		{
			name:    "stray arguments",
			args:    []string{"-secret", "a", "extra"},
			wantErr: []string{"unexpected arguments"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load(tt.args, envOf(tt.env), &bytes.Buffer{})
			if len(tt.wantErr) > 0 {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestLoadHelp(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, err := config.Load([]string{"-h"}, envOf(nil), &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, out.String(), "-secret-file")
}

func TestOldEnvironmentNamesStillWorkWithAWarning(t *testing.T) {
	t.Parallel()
	c, err := config.Load(nil, envOf(map[string]string{"MINDROUTER_AGENT_SECRET": "x",
		"MINDROUTER_AGENT_LOG_FORMAT": "text", "MINDROUTER_AGENT_LOG_LEVEL": "debug", "MINDROUTER_LOG_LEVEL": "warn"}), &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "text", c.LogFormat)
	assert.Equal(t, "warn", c.LogLevel, "the new name wins over the old one")
	assert.Equal(t, []config.Deprecation{{Old: "MINDROUTER_AGENT_LOG_FORMAT", New: "MINDROUTER_LOG_FORMAT"}}, c.Deprecated)
}

// TestEveryVariableIsDocumented keeps docs/configuration.md in step with the flags.
func TestEveryVariableIsDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "configuration.md"))
	require.NoError(t, err)
	var out bytes.Buffer
	_, _ = config.Load([]string{"-h"}, envOf(nil), &out)
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
	require.Greater(t, n, 10)
}

func TestResolveSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(good, []byte("  tok3n\n"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))

	s, err := config.Config{Secret: "inline"}.ResolveSecret()
	require.NoError(t, err)
	assert.Equal(t, "inline", s)
	s, err = config.Config{SecretFile: good}.ResolveSecret()
	require.NoError(t, err)
	assert.Equal(t, "tok3n", s)
	_, err = config.Config{SecretFile: empty}.ResolveSecret()
	require.ErrorContains(t, err, "is empty")
	_, err = config.Config{SecretFile: filepath.Join(dir, "missing")}.ResolveSecret()
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestLogValueRedactsSecret(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", config.Config{Secret: "hunter2", NodeName: "n"})
	assert.NotContains(t, buf.String(), "hunter2")
	assert.Contains(t, buf.String(), `"secret_set":true`)
}
