package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// MinInterval is the shortest sampling interval accepted locally.
const MinInterval = time.Second

// Config is the node agent's configuration. Every field, its flag, its environment
// variable and its default are listed in docs/configuration.md.
type Config struct {
	// ControlPlaneAddr is the control plane's gRPC address (host:port).
	ControlPlaneAddr string
	// NodeName is the node's registered name; defaults to the hostname.
	NodeName string
	// Secret is the node's agent secret. Prefer SecretFile: flags show in ps.
	Secret string
	// SecretFile is a file holding the secret (surrounding whitespace ignored).
	SecretFile string
	// Interval is the sampling interval until the control plane sets one.
	Interval time.Duration
	// TLS dials the control plane over TLS (system roots unless TLSCAFile).
	TLS           bool
	TLSCAFile     string
	TLSServerName string
	// NVMLLibrary overrides the path of libnvidia-ml.so.1.
	NVMLLibrary string
	// MetricsAddr serves /metrics and /healthz when set (off by default).
	MetricsAddr string
	LogFormat   string
	LogLevel    string
}

// NewDefault returns the defaults; NodeName is the host's name when it can be read.
func NewDefault() Config {
	host, _ := os.Hostname()
	return Config{
		ControlPlaneAddr: "127.0.0.1:9090",
		NodeName:         host,
		Interval:         10 * time.Second,
		LogFormat:        "json",
		LogLevel:         "info",
	}
}

// Load parses args over the environment (getenv) over the defaults and validates the
// result. Usage and flag errors are written to stderr; -h returns flag.ErrHelp.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := NewDefault()
	fs := flag.NewFlagSet("mindrouter-nodeagent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := envReader{getenv: getenv}
	fs.StringVar(&c.ControlPlaneAddr, "control-plane", env.str("MINDROUTER_AGENT_CONTROL_PLANE", c.ControlPlaneAddr), "control plane gRPC address, host:port")
	fs.StringVar(&c.NodeName, "node-name", env.str("MINDROUTER_AGENT_NODE_NAME", c.NodeName), "this node's registered name (default: the hostname)")
	fs.StringVar(&c.Secret, "secret", env.str("MINDROUTER_AGENT_SECRET", c.Secret), "node agent secret (prefer -secret-file or the environment: flags are visible in ps)")
	fs.StringVar(&c.SecretFile, "secret-file", env.str("MINDROUTER_AGENT_SECRET_FILE", c.SecretFile), "file holding the node agent secret")
	fs.DurationVar(&c.Interval, "interval", env.dur("MINDROUTER_AGENT_INTERVAL", c.Interval), "sampling interval until the control plane sets one")
	fs.BoolVar(&c.TLS, "tls", env.boolean("MINDROUTER_AGENT_TLS", c.TLS), "dial the control plane over TLS")
	fs.StringVar(&c.TLSCAFile, "tls-ca-file", env.str("MINDROUTER_AGENT_TLS_CA_FILE", c.TLSCAFile), "PEM CA bundle to verify the control plane (implies -tls)")
	fs.StringVar(&c.TLSServerName, "tls-server-name", env.str("MINDROUTER_AGENT_TLS_SERVER_NAME", c.TLSServerName), "server name to verify instead of the address's host")
	fs.StringVar(&c.NVMLLibrary, "nvml-library", env.str("MINDROUTER_AGENT_NVML_LIBRARY", c.NVMLLibrary), "path of libnvidia-ml.so.1 (default: the loader's search path)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", env.str("MINDROUTER_AGENT_METRICS_ADDR", c.MetricsAddr), "serve /metrics and /healthz on this address (empty: off)")
	fs.StringVar(&c.LogFormat, "log-format", env.str("MINDROUTER_AGENT_LOG_FORMAT", c.LogFormat), "log format: json or text")
	fs.StringVar(&c.LogLevel, "log-level", env.str("MINDROUTER_AGENT_LOG_LEVEL", c.LogLevel), "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		env.errs = append(env.errs, fmt.Errorf("unexpected arguments %q: every setting is a -flag", fs.Args()))
	}
	if c.TLSCAFile != "" {
		c.TLS = true
	}
	if err := errors.Join(env.errs...); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// Validate reports every problem at once, each phrased as what to fix.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.ControlPlaneAddr); err != nil {
		errs = append(errs, fmt.Errorf("control-plane %q: want host:port, e.g. cp.example.org:9090", c.ControlPlaneAddr))
	}
	if strings.TrimSpace(c.NodeName) == "" {
		errs = append(errs, errors.New("node-name is empty and the hostname is unknown: set -node-name"))
	}
	switch {
	case c.Secret == "" && c.SecretFile == "":
		errs = append(errs, errors.New("no node secret: set -secret-file (or MINDROUTER_AGENT_SECRET)"))
	case c.Secret != "" && c.SecretFile != "":
		errs = append(errs, errors.New("set only one of -secret and -secret-file"))
	}
	if c.Interval < MinInterval {
		errs = append(errs, fmt.Errorf("interval %s is too short: use at least %s", c.Interval, MinInterval))
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("metrics-addr %q: want host:port, e.g. 127.0.0.1:9102", c.MetricsAddr))
		}
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log-format %q: use json or text", c.LogFormat))
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ResolveSecret returns Secret, or the trimmed contents of SecretFile.
func (c Config) ResolveSecret() (string, error) {
	if c.SecretFile == "" {
		return c.Secret, nil
	}
	b, err := os.ReadFile(c.SecretFile)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", c.SecretFile)
	}
	return s, nil
}

// LogValue renders the configuration for logs without the secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("control_plane", c.ControlPlaneAddr),
		slog.String("node_name", c.NodeName),
		slog.Bool("secret_set", c.Secret != ""),
		slog.String("secret_file", c.SecretFile),
		slog.Duration("interval", c.Interval),
		slog.Bool("tls", c.TLS),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.String("log_format", c.LogFormat),
		slog.String("log_level", c.LogLevel),
	)
}

// ParseLevel maps debug, info, warn or error to a slog level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log-level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

// envReader reads typed environment variables and remembers malformed ones.
type envReader struct {
	getenv func(string) string
	errs   []error
}

func (e *envReader) str(key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

func (e *envReader) dur(key string, def time.Duration) time.Duration {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a duration such as 10s", key, v))
		return def
	}
	return d
}

func (e *envReader) boolean(key string, def bool) bool {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want true or false", key, v))
		return def
	}
	return b
}
