package config

import (
	"crypto/rand"
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

// Config is everything the data plane needs to boot.
type Config struct {
	// Listen is the HTTP listen address.
	Listen string
	// ControlPlaneAddr is the control plane's gRPC address (host:port), or a
	// comma-separated list of a leader and its standbys (ControlPlaneAddrs).
	ControlPlaneAddr string
	// ControlPlaneFailoverWait is how long, with several control planes, an
	// admission waits for one that answers (a failover) instead of failing.
	ControlPlaneFailoverWait time.Duration
	// DrainDelay is how long a data plane told to stop keeps serving while its
	// /readyz answers 503, so that its load balancer stops sending first.
	DrainDelay time.Duration
	// ClusterToken authenticates this replica to the control plane; set it or
	// ClusterTokenFile.
	ClusterToken string
	// ClusterTokenFile is a file holding the cluster token.
	ClusterTokenFile string
	// ReplicaID names this replica; default hostname plus a random suffix.
	ReplicaID string
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// ReadHeaderTimeout bounds the wait for a request's headers.
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout bounds the wait for a request body; a body read at
	// BodyMinRate or faster gets longer (see server.Options).
	BodyReadTimeout time.Duration
	// BodyMinRate is the slowest upload, in bytes per second, that a large
	// body may keep up once BodyReadTimeout has passed.
	BodyMinRate int64
	// MaxAttempts is how many backends a request may try before its first byte.
	MaxAttempts int
	// AdmitTimeout bounds the wait for admission, queueing included; 0 leaves it
	// to the control plane's queue timeout.
	AdmitTimeout time.Duration
	// AdmitTransport is how admissions reach the control plane: "session" (as
	// messages on the replica's session stream, the unary call while it is down
	// or when the control plane predates it) or "unary" (one Admit call each).
	AdmitTransport string
	// BackendDialTimeout bounds connecting to a backend.
	BackendDialTimeout time.Duration
	// BackendHeaderTimeout bounds the wait for a backend's response headers (a
	// stream's first token; a non-streamed answer's whole generation).
	BackendHeaderTimeout time.Duration
	// BackendIdleTimeout ends a stream whose backend sends nothing for this long.
	BackendIdleTimeout time.Duration
	// ReleaseTimeout bounds one Release call to the control plane.
	ReleaseTimeout time.Duration
	// StreamWriteTimeout bounds each write to a streaming client.
	StreamWriteTimeout time.Duration
	// ShutdownTimeout is how long streams in flight may finish at shutdown.
	ShutdownTimeout time.Duration
	// ReleaseDrainTimeout is how long, after the streams, shutdown keeps
	// retrying releases the control plane has not taken.
	ReleaseDrainTimeout time.Duration
	// ImageFetchAllow lists CIDRs, IP addresses and host names (a leading "."
	// allows subdomains) the image fetcher may reach although they are
	// private, loopback, link-local or otherwise refused; empty by default.
	ImageFetchAllow []string
	// ImageFetchMaxBytes bounds one image fetched by URL.
	ImageFetchMaxBytes int64
	// ImageFetchTimeout bounds one image fetch.
	ImageFetchTimeout time.Duration
	// KeepThinkTags leaves a leading <think>…</think> block in answer content
	// instead of moving it to the reasoning.
	KeepThinkTags bool
	// Audit trail: the spool kept while the control plane does not acknowledge
	// records (AuditSpoolDir, empty: a directory named after the replica under
	// the system's temporary directory), its bound, what happens when it is
	// full (fail-closed or fail-open), whether content is recorded, and the
	// shipper's batching and retry delays.
	// Audit false records nothing (no entry, no spool, no stream): for
	// benchmarks of what the trail costs, and deployments that need none.
	Audit              bool
	AuditSpoolDir      string
	AuditSpoolMaxBytes int64
	AuditSpoolFull     string
	AuditContent       bool
	AuditFlushInterval time.Duration
	AuditRetryInterval time.Duration
	// LogFormat is json or text.
	LogFormat string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// PprofListen, when set, serves net/http/pprof on this address, on a
	// listener of its own; empty (the default) serves none.
	PprofListen string
	// PprofAllowRemote lets PprofListen name a non-loopback address. Profiles
	// expose memory contents and cost CPU, so they stay on loopback by default.
	PprofAllowRemote bool
	// SecureCookies marks the browser session cookie Secure on plain HTTP too.
	SecureCookies bool
	// TLSCertFile and TLSKeyFile serve the public HTTP port over TLS (re-read
	// when they change).
	TLSCertFile string
	TLSKeyFile  string
	// ControlPlaneCAFile turns on TLS to the control plane, verified against
	// this CA bundle; ControlPlaneCertFile and ControlPlaneKeyFile are the
	// client certificate a control plane with mutual TLS demands;
	// ControlPlaneServerName is the name verified instead of the address's host.
	ControlPlaneCAFile     string
	ControlPlaneCertFile   string
	ControlPlaneKeyFile    string
	ControlPlaneServerName string
	// Search configures web search (/v1/search and the MCP web_search tool).
	Search Search
	// Deprecated lists the old environment variables that were read; the
	// caller warns about them once it can log.
	Deprecated []Deprecation
}

// NewDefault returns the defaults.
func NewDefault() Config {
	return Config{
		Listen:                   ":8000",
		ControlPlaneAddr:         "127.0.0.1:9090",
		MaxBodyBytes:             50 << 20,
		ReadHeaderTimeout:        10 * time.Second,
		BodyReadTimeout:          30 * time.Second,
		BodyMinRate:              64 << 10,
		MaxAttempts:              3,
		AdmitTimeout:             5 * time.Minute,
		AdmitTransport:           "session",
		BackendDialTimeout:       10 * time.Second,
		BackendHeaderTimeout:     180 * time.Second,
		BackendIdleTimeout:       180 * time.Second,
		ReleaseTimeout:           5 * time.Second,
		StreamWriteTimeout:       60 * time.Second,
		ShutdownTimeout:          30 * time.Second,
		ReleaseDrainTimeout:      10 * time.Second,
		ControlPlaneFailoverWait: 15 * time.Second,
		ImageFetchMaxBytes:       20 << 20,
		ImageFetchTimeout:        10 * time.Second,
		LogFormat:                "json",
		LogLevel:                 "info",
		Audit:                    true,
		AuditSpoolMaxBytes:       256 << 20,
		AuditSpoolFull:           "fail-closed",
		AuditContent:             true,
		AuditFlushInterval:       50 * time.Millisecond,
		AuditRetryInterval:       time.Second,
		Search:                   defaultSearch(),
	}
}

// Load builds the configuration from the defaults, the environment (read with
// lookupEnv; see EnvName) and args, in that order of precedence, reads the token
// file and validates the result. -h prints the flags to usage and returns
// flag.ErrHelp.
func Load(args []string, lookupEnv func(string) (string, bool), usage io.Writer) (Config, error) {
	cfg := NewDefault()
	fs := flag.NewFlagSet("mindrouter-dataplane", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag is returned as an error; only -h prints
	for _, s := range cfg.settings() {
		fs.Var(s.value, s.flag, s.help)
	}
	deprecated, envErr := applyEnv(fs, lookupEnv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(usage)
			fs.Usage()
		}
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if envErr != nil {
		return Config{}, envErr
	}
	cfg.Deprecated = deprecated
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	if cfg.ClusterTokenFile != "" {
		b, err := os.ReadFile(cfg.ClusterTokenFile)
		if err != nil {
			return Config{}, fmt.Errorf("read the cluster token file (--cluster-token-file): %w", err)
		}
		cfg.ClusterToken = strings.TrimSpace(string(b))
		if cfg.ClusterToken == "" {
			return Config{}, fmt.Errorf("the cluster token file %q is empty", cfg.ClusterTokenFile)
		}
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = defaultReplicaID()
	}
	return cfg, nil
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("--listen %q is not host:port (e.g. :8000)", c.Listen)
	}
	if len(c.ControlPlaneAddrs()) == 0 {
		bad("--controlplane-addr is empty: name the control plane's host:port (e.g. 127.0.0.1:9090)")
	}
	for _, a := range c.ControlPlaneAddrs() {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("--controlplane-addr %q is not host:port (e.g. 127.0.0.1:9090, or cp-0:9090,cp-1:9090)", a)
		}
	}
	switch {
	case c.ClusterToken == "" && c.ClusterTokenFile == "":
		bad("no cluster token: set MINDROUTER_CLUSTER_TOKEN (or --cluster-token) or MINDROUTER_CLUSTER_TOKEN_FILE (or --cluster-token-file) to the control plane's cluster token")
	case c.ClusterToken != "" && c.ClusterTokenFile != "":
		bad("set the cluster token or the cluster token file, not both")
	}
	errs = append(errs, c.Search.validate()...)
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("--tls-cert-file and --tls-key-file go together")
	}
	if (c.ControlPlaneCertFile == "") != (c.ControlPlaneKeyFile == "") {
		bad("--controlplane-cert-file and --controlplane-key-file go together")
	}
	if c.MaxBodyBytes <= 0 {
		bad("--max-body-bytes must be positive")
	}
	if c.BodyMinRate <= 0 {
		bad("--body-min-rate must be positive")
	}
	if c.AuditSpoolFull != "fail-closed" && c.AuditSpoolFull != "fail-open" {
		bad("--audit-spool-full must be fail-closed or fail-open; got %q", c.AuditSpoolFull)
	}
	if c.AuditSpoolMaxBytes <= 0 || c.AuditFlushInterval <= 0 || c.AuditRetryInterval <= 0 {
		bad("--audit-spool-max-bytes, --audit-flush-interval and --audit-retry-interval must be positive")
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 10 {
		bad("--max-attempts must be between 1 and 10; got %d", c.MaxAttempts)
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"--read-header-timeout", c.ReadHeaderTimeout},
		{"--body-read-timeout", c.BodyReadTimeout},
		{"--backend-dial-timeout", c.BackendDialTimeout},
		{"--backend-header-timeout", c.BackendHeaderTimeout},
		{"--release-timeout", c.ReleaseTimeout},
		{"--shutdown-timeout", c.ShutdownTimeout},
		{"--release-drain-timeout", c.ReleaseDrainTimeout},
		{"--controlplane-failover-wait", c.ControlPlaneFailoverWait},
	}
	for _, p := range positive {
		if p.d <= 0 {
			bad("%s must be positive; got %s", p.name, p.d)
		}
	}
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"--admit-timeout", c.AdmitTimeout}, {"--backend-idle-timeout", c.BackendIdleTimeout}, {"--stream-write-timeout", c.StreamWriteTimeout}, {"--drain-delay", c.DrainDelay}} {
		if p.d < 0 {
			bad("%s must not be negative (0 disables it); got %s", p.name, p.d)
		}
	}
	if c.ImageFetchMaxBytes <= 0 {
		bad("--image-fetch-max-bytes must be positive")
	}
	if c.ImageFetchTimeout <= 0 {
		bad("--image-fetch-timeout must be positive; got %s", c.ImageFetchTimeout)
	}
	if _, _, err := c.ImageFetchAllowList(); err != nil {
		bad("--image-fetch-allow: %v", err)
	}
	if c.AdmitTransport != "session" && c.AdmitTransport != "unary" {
		bad("--admit-transport must be session or unary; got %q", c.AdmitTransport)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("--log-format must be json or text; got %q", c.LogFormat)
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		bad("--log-level: %v", err)
	}
	if err := c.checkPprof(); err != nil {
		bad("%v", err)
	}
	return errors.Join(errs...)
}

// ControlPlaneAddrs splits ControlPlaneAddr into its addresses.
func (c Config) ControlPlaneAddrs() []string {
	var out []string
	for _, a := range strings.Split(c.ControlPlaneAddr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// checkPprof accepts an empty address, a loopback one, or any host:port with
// PprofAllowRemote.
func (c Config) checkPprof() error {
	if c.PprofListen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(c.PprofListen)
	if err != nil {
		return fmt.Errorf("--pprof-listen %q is not host:port (e.g. 127.0.0.1:6060)", c.PprofListen)
	}
	if c.PprofAllowRemote || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("--pprof-listen %q is not a loopback address; use 127.0.0.1, [::1] or localhost, "+
		"or set --pprof-allow-remote to expose profiles beyond this host", c.PprofListen)
}

// isLoopback reports whether host names only loopback interfaces; an empty
// host means every interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseLevel parses debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("must be debug, info, warn or error; got %q", s)
	}
	return l, nil
}

// LogValue logs the configuration with the token redacted.
func (c Config) LogValue() slog.Value {
	token := ""
	if c.ClusterToken != "" {
		token = "[redacted]"
	}
	return slog.GroupValue(
		slog.String("listen", c.Listen), slog.String("controlplane_addr", c.ControlPlaneAddr),
		slog.Duration("controlplane_failover_wait", c.ControlPlaneFailoverWait), slog.Duration("drain_delay", c.DrainDelay),
		slog.String("cluster_token", token), slog.String("cluster_token_file", c.ClusterTokenFile),
		slog.String("replica_id", c.ReplicaID), slog.Int64("max_body_bytes", c.MaxBodyBytes),
		slog.Duration("read_header_timeout", c.ReadHeaderTimeout), slog.Duration("body_read_timeout", c.BodyReadTimeout),
		slog.Int64("body_min_rate", c.BodyMinRate), slog.Int("max_attempts", c.MaxAttempts), slog.Duration("admit_timeout", c.AdmitTimeout), slog.String("admit_transport", c.AdmitTransport),
		slog.Duration("backend_dial_timeout", c.BackendDialTimeout),
		slog.Duration("backend_header_timeout", c.BackendHeaderTimeout),
		slog.Duration("backend_idle_timeout", c.BackendIdleTimeout), slog.Duration("release_timeout", c.ReleaseTimeout),
		slog.Duration("stream_write_timeout", c.StreamWriteTimeout), slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.Duration("release_drain_timeout", c.ReleaseDrainTimeout),
		slog.Any("image_fetch_allow", c.ImageFetchAllow), slog.Int64("image_fetch_max_bytes", c.ImageFetchMaxBytes),
		slog.Duration("image_fetch_timeout", c.ImageFetchTimeout), slog.Bool("keep_think_tags", c.KeepThinkTags),
		slog.String("log_format", c.LogFormat), slog.String("log_level", c.LogLevel),
		slog.String("pprof_listen", c.PprofListen), slog.Bool("pprof_allow_remote", c.PprofAllowRemote),
	)
}

func defaultReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "dataplane"
	}
	return host + "-" + strings.ToLower(rand.Text()[:6])
}
