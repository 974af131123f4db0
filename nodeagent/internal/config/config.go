package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
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
	// TLSCertFile and TLSKeyFile are the client certificate a control plane
	// with mutual TLS demands (re-read when they change; implies TLS).
	TLSCertFile string
	TLSKeyFile  string
	// NVMLLibrary overrides the path of libnvidia-ml.so.1.
	NVMLLibrary string
	// PowercapRoot is where RAPL zones are read for host power; "off" disables it.
	PowercapRoot string
	// MetricsAddr serves /metrics and /healthz when set (off by default).
	MetricsAddr string
	LogFormat   string
	LogLevel    string
	// Deprecated lists the old environment variables that were read; the
	// caller warns about them once it can log.
	Deprecated []Deprecation
}

// NewDefault returns the defaults; NodeName is the host's name when it can be read.
func NewDefault() Config {
	host, _ := os.Hostname()
	return Config{
		ControlPlaneAddr: "127.0.0.1:9090",
		NodeName:         host,
		Interval:         10 * time.Second,
		PowercapRoot:     "/sys/class/powercap",
		LogFormat:        "json",
		LogLevel:         "info",
	}
}

// Load builds the configuration from the defaults, the environment (read with
// lookupEnv; see EnvName) and args, in that order of precedence, and validates the
// result. -h prints the flags to usage and returns flag.ErrHelp.
func Load(args []string, lookupEnv func(string) (string, bool), usage io.Writer) (Config, error) {
	c := NewDefault()
	fs := flag.NewFlagSet("mindrouter-nodeagent", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag is returned as an error; only -h prints
	fs.StringVar(&c.ControlPlaneAddr, "control-plane", c.ControlPlaneAddr, "control plane gRPC address, host:port; or a comma-separated list of the leader and its standbys (the one that answers is the leader)")
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "this node's registered name (default: the hostname)")
	fs.StringVar(&c.Secret, "secret", c.Secret, "node agent secret (prefer -secret-file or the environment: flags are visible in ps)")
	fs.StringVar(&c.SecretFile, "secret-file", c.SecretFile, "file holding the node agent secret")
	fs.DurationVar(&c.Interval, "interval", c.Interval, "sampling interval until the control plane sets one")
	fs.BoolVar(&c.TLS, "tls", c.TLS, "dial the control plane over TLS")
	fs.StringVar(&c.TLSCAFile, "tls-ca-file", c.TLSCAFile, "PEM CA bundle to verify the control plane (implies -tls)")
	fs.StringVar(&c.TLSServerName, "tls-server-name", c.TLSServerName, "server name to verify instead of the address's host")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", c.TLSCertFile, "PEM client certificate for a control plane that requires mutual TLS (implies -tls)")
	fs.StringVar(&c.TLSKeyFile, "tls-key-file", c.TLSKeyFile, "PEM private key of -tls-cert-file")
	fs.StringVar(&c.NVMLLibrary, "nvml-library", c.NVMLLibrary, "path of libnvidia-ml.so.1 (default: the loader's search path)")
	fs.StringVar(&c.PowercapRoot, "powercap-root", c.PowercapRoot, "directory of RAPL powercap zones read for host CPU power; off disables")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "serve /metrics and /healthz on this address (empty: off)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: json or text")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	deprecated, envErr := applyEnv(fs, lookupEnv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(usage)
			fs.Usage()
		}
		return Config{}, err
	}
	errs := []error{envErr}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q: every setting is a -flag", fs.Args()))
	}
	if c.TLSCAFile != "" || c.TLSCertFile != "" {
		c.TLS = true
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("-tls-cert-file and -tls-key-file go together"))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	c.Deprecated = deprecated
	return c, c.Validate()
}

// ControlPlaneAddrs splits ControlPlaneAddr (a comma-separated list of a
// leader and its standbys) into its addresses.
func (c Config) ControlPlaneAddrs() []string {
	var out []string
	for _, a := range strings.Split(c.ControlPlaneAddr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Validate reports every problem at once, each phrased as what to fix.
func (c Config) Validate() error {
	var errs []error
	if len(c.ControlPlaneAddrs()) == 0 {
		errs = append(errs, errors.New("control-plane is empty: want host:port, e.g. cp.example.org:9090"))
	}
	for _, a := range c.ControlPlaneAddrs() {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("control-plane %q: want host:port, e.g. cp.example.org:9090 (or a comma-separated list of the leader and its standbys)", a))
		}
	}
	if strings.TrimSpace(c.NodeName) == "" {
		errs = append(errs, errors.New("node-name is empty and the hostname is unknown: set -node-name"))
	}
	switch {
	case c.Secret == "" && c.SecretFile == "":
		errs = append(errs, errors.New("no node secret: set -secret-file (or MINDROUTER_AGENT_SECRET_FILE, or MINDROUTER_AGENT_SECRET)"))
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
