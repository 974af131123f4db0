// Package config holds the control plane's one configuration struct: defaults, then
// MINDROUTER_* environment variables, then command-line flags. Only what the process
// needs to boot lives here; runtime policy (quotas, weights) lives in the database.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Config is the control plane's configuration. Every field, its flag, its environment
// variable and its default are listed in docs/configuration.md.
type Config struct {
	GRPCListen     string
	RESTListen     string
	DataDir        string
	DatabaseDriver string
	DatabaseDSN    string
	// DatabaseTimeout bounds every database call after start-up.
	DatabaseTimeout time.Duration
	// KeyCacheTTL is how long a verified API key is trusted without reading its
	// row; KeyCacheMaxStale how long after that read it keeps working while the
	// database is unreachable.
	KeyCacheTTL      time.Duration
	KeyCacheMaxStale time.Duration
	ClusterToken     string
	ClusterTokenFile string
	// TLSCertFile and TLSKeyFile serve the gRPC port over TLS; with
	// TLSClientCAFile every gRPC client (data planes, node agents,
	// mindrouterctl) must present a certificate that CA signed. Re-read when
	// they change.
	TLSCertFile     string
	TLSKeyFile      string
	TLSClientCAFile string
	// RESTTLSCertFile and RESTTLSKeyFile serve the REST admin port over TLS.
	RESTTLSCertFile   string
	RESTTLSKeyFile    string
	AdminAPIKey       string
	SeedBackends      []BackendSeed
	ContextCap        int64
	LeaseTTL          time.Duration
	SessionGrace      time.Duration
	HeartbeatInterval time.Duration
	QueueTimeout      time.Duration
	MaxQueuePerModel  int
	MaxQueuePerUser   int
	// MaxConcurrentPerUser caps one user's requests admitted or queued at once;
	// negative means unlimited.
	MaxConcurrentPerUser int
	// QueueUpdateInterval is the shortest time between two queue updates sent to
	// one waiting request (AdmitStream).
	QueueUpdateInterval time.Duration
	// QuotaPeriod is the length of a user's rolling token-budget period.
	QuotaPeriod time.Duration
	// DefaultMaxTokens is the output allowance reserved for a chat or completion
	// request that sets no max_tokens.
	DefaultMaxTokens  int64
	SchedulerPolicy   string
	HealthInterval    time.Duration
	TelemetryInterval time.Duration
	ShutdownTimeout   time.Duration
	LogFormat         string
	LogLevel          string
	// Browser sign-in: sessions end after SessionIdle without use or
	// SessionMaxAge after sign-in; LoginMaxAttempts failed sign-ins per
	// username and address within LoginWindow, then 429 until it ends.
	SessionIdle      time.Duration
	SessionMaxAge    time.Duration
	LoginMaxAttempts int
	LoginWindow      time.Duration
	// OIDCConfig is a JSON file of OpenID Connect providers; empty: none.
	OIDCConfig string
	// Audit trail: the local spool used while the database is unreachable
	// (AuditSpoolDir, empty: <data-dir>/audit-spool; AuditSpoolMaxBytes, 0:
	// unbounded), the artifact cap, how often the spool is retried, and
	// retention (0 keeps forever) with its pass interval and batch size.
	AuditSpoolDir          string
	AuditSpoolMaxBytes     int64
	AuditArtifactMaxBytes  int64
	AuditReplayInterval    time.Duration
	AuditContentRetention  time.Duration
	AuditMetadataRetention time.Duration
	AuditPurgeInterval     time.Duration
	AuditPurgeBatch        int
	// ResponsesRetention is how long the Responses API's stored responses
	// are kept (0: forever); they are purged every AuditPurgeInterval in
	// batches of AuditPurgeBatch.
	ResponsesRetention time.Duration
	// LeaderElection runs this process as one of several control planes on
	// one database: it acts only while it holds the leader lease
	// (LeaderLeaseTTL) and stands by otherwise. AdvertiseAddr is the gRPC
	// host:port others reach it at, shown by standbys as the leader.
	LeaderElection bool
	LeaderLeaseTTL time.Duration
	AdvertiseAddr  string
	// History is the telemetry history and energy accounting.
	History History
	// Alerts is the alert evaluator and its webhook.
	Alerts Alerts
	// ModelJobs is the Ollama model pulls and deletes.
	ModelJobs ModelJobs
	// Deprecated lists the old environment variables that were read; the
	// caller warns about them once it can log.
	Deprecated []Deprecation
}

// BackendSeed is a backend registered (idempotently) at start-up.
type BackendSeed struct {
	Name   string
	Engine string
	URL    string
}

// String renders a seed as name=engine:url.
func (b BackendSeed) String() string { return b.Name + "=" + b.Engine + ":" + b.URL }

// NewDefault returns the defaults.
func NewDefault() Config {
	return Config{
		GRPCListen:        ":9090",
		RESTListen:        ":9091",
		DataDir:           ".data",
		DatabaseDriver:    "sqlite",
		DatabaseTimeout:   5 * time.Second,
		KeyCacheTTL:       60 * time.Second,
		KeyCacheMaxStale:  time.Hour,
		ContextCap:        32768,
		LeaseTTL:          30 * time.Second,
		SessionGrace:      15 * time.Second,
		HeartbeatInterval: 10 * time.Second,
		QueueTimeout:      150 * time.Second,
		MaxQueuePerModel:  1000,
		MaxQueuePerUser:   64,
		// Counts queued requests too; batch users who need more get a higher setting.
		MaxConcurrentPerUser:  32,
		QueueUpdateInterval:   500 * time.Millisecond,
		QuotaPeriod:           30 * 24 * time.Hour,
		DefaultMaxTokens:      1000,
		SchedulerPolicy:       "wdrr",
		HealthInterval:        30 * time.Second,
		TelemetryInterval:     10 * time.Second,
		ShutdownTimeout:       30 * time.Second,
		LogFormat:             "json",
		LogLevel:              "info",
		SessionIdle:           8 * time.Hour,
		SessionMaxAge:         7 * 24 * time.Hour,
		LoginMaxAttempts:      15,
		LoginWindow:           300 * time.Second,
		AuditSpoolMaxBytes:    1 << 30,
		AuditArtifactMaxBytes: 10 << 20,
		AuditReplayInterval:   time.Second,
		AuditPurgeInterval:    time.Hour,
		AuditPurgeBatch:       500,
		ResponsesRetention:    30 * 24 * time.Hour,
		LeaderLeaseTTL:        5 * time.Second,
		History:               defaultHistory(),
		Alerts:                defaultAlerts(),
		ModelJobs:             defaultModelJobs(),
	}
}

// Load builds the configuration from the defaults, the environment (read with
// lookupEnv; see EnvName) and args, in that order of precedence, and validates the
// result. -h prints the flags to usage and returns flag.ErrHelp.
func Load(args []string, lookupEnv func(string) (string, bool), usage io.Writer) (Config, error) {
	c := NewDefault()
	fs := flag.NewFlagSet("mindrouter-controlplane", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag is returned as an error; only -h prints
	fs.StringVar(&c.GRPCListen, "grpc-listen", c.GRPCListen, "gRPC listen address (data planes, node agents, grpcurl)")
	fs.StringVar(&c.RESTListen, "rest-listen", c.RESTListen, "REST admin gateway, /metrics and /healthz listen address")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the SQLite database and generated secrets")
	fs.StringVar(&c.DatabaseDriver, "db-driver", c.DatabaseDriver, "database driver: sqlite (embedded) or mysql (MariaDB)")
	fs.StringVar(&c.DatabaseDSN, "db-dsn", c.DatabaseDSN, "database DSN; empty with sqlite means <data-dir>/mindrouter.db")
	fs.DurationVar(&c.DatabaseTimeout, "db-timeout", c.DatabaseTimeout, "deadline of every database call; past it the call fails as database_unavailable (503)")
	fs.DurationVar(&c.KeyCacheTTL, "key-cache-ttl", c.KeyCacheTTL, "how long a verified API key is trusted before its row is read again")
	fs.DurationVar(&c.KeyCacheMaxStale, "key-cache-max-stale", c.KeyCacheMaxStale, "how long after its row was last read a cached API key keeps working while the database is unreachable")
	fs.StringVar(&c.ClusterToken, "cluster-token", c.ClusterToken, "shared secret data planes present; empty means read or create <data-dir>/cluster-token")
	fs.StringVar(&c.ClusterTokenFile, "cluster-token-file", c.ClusterTokenFile, "file holding the cluster token")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", c.TLSCertFile, "PEM certificate (chain) of the gRPC port; with -tls-key-file it serves TLS (re-read when the file changes)")
	fs.StringVar(&c.TLSKeyFile, "tls-key-file", c.TLSKeyFile, "PEM private key of -tls-cert-file")
	fs.StringVar(&c.TLSClientCAFile, "tls-client-ca-file", c.TLSClientCAFile, "PEM CA bundle: gRPC clients must present a certificate it signed (mutual TLS; needs -tls-cert-file)")
	fs.StringVar(&c.RESTTLSCertFile, "rest-tls-cert-file", c.RESTTLSCertFile, "PEM certificate (chain) of the REST admin port; with -rest-tls-key-file it serves HTTPS")
	fs.StringVar(&c.RESTTLSKeyFile, "rest-tls-key-file", c.RESTTLSKeyFile, "PEM private key of -rest-tls-cert-file")
	fs.StringVar(&c.AdminAPIKey, "admin-api-key", c.AdminAPIKey, "seed this exact admin API key (mr2_...) instead of generating one")
	var seeds string
	fs.StringVar(&seeds, "seed-backends", seeds, "comma-separated name=engine:url backends registered at start, e.g. local=ollama:http://127.0.0.1:11434")
	fs.Int64Var(&c.ContextCap, "context-cap", c.ContextCap, "context window cap applied to every model")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", c.LeaseTTL, "lease lifetime without renewal")
	fs.DurationVar(&c.SessionGrace, "session-grace", c.SessionGrace, "how long a replica's leases survive a broken session")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval, "session heartbeat interval asked of replicas")
	fs.DurationVar(&c.QueueTimeout, "queue-timeout", c.QueueTimeout, "longest wait in a model queue")
	fs.DurationVar(&c.QueueUpdateInterval, "queue-update-interval", c.QueueUpdateInterval, "shortest time between two queue-position updates to one waiting request")
	fs.IntVar(&c.MaxQueuePerModel, "max-queue", c.MaxQueuePerModel, "waiting requests per model before 503")
	fs.IntVar(&c.MaxQueuePerUser, "max-queue-per-user", c.MaxQueuePerUser, "waiting requests per user and model before 429")
	fs.IntVar(&c.MaxConcurrentPerUser, "max-concurrent-per-user", c.MaxConcurrentPerUser, "requests one user may have admitted or queued at once; -1 for unlimited")
	fs.DurationVar(&c.QuotaPeriod, "quota-period", c.QuotaPeriod, "length of a user's rolling token-budget period, in whole days (e.g. 720h)")
	fs.Int64Var(&c.DefaultMaxTokens, "default-max-tokens", c.DefaultMaxTokens, "output tokens reserved for a chat or completion request that sets no limit")
	fs.StringVar(&c.SchedulerPolicy, "scheduler", c.SchedulerPolicy, "queue order: wdrr (token-weighted fair share) or fifo")
	fs.DurationVar(&c.HealthInterval, "health-interval", c.HealthInterval, "backend poll interval")
	fs.DurationVar(&c.TelemetryInterval, "telemetry-interval", c.TelemetryInterval, "sample interval asked of node agents")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "graceful shutdown deadline")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.DurationVar(&c.SessionIdle, "session-idle", c.SessionIdle, "browser sessions end after this long without use")
	fs.DurationVar(&c.SessionMaxAge, "session-max-age", c.SessionMaxAge, "browser sessions end this long after sign-in, however used")
	fs.IntVar(&c.LoginMaxAttempts, "login-max-attempts", c.LoginMaxAttempts, "failed sign-ins per username and address within login-window before 429")
	fs.DurationVar(&c.LoginWindow, "login-window", c.LoginWindow, "window in which login-max-attempts failed sign-ins are counted")
	fs.StringVar(&c.OIDCConfig, "oidc-config", c.OIDCConfig, "JSON file of OpenID Connect providers for single sign-on (see docs/configuration.md); empty: none")
	fs.StringVar(&c.AuditSpoolDir, "audit-spool-dir", c.AuditSpoolDir, "directory of the audit spool kept while the database is unreachable; empty means <data-dir>/audit-spool")
	fs.Int64Var(&c.AuditSpoolMaxBytes, "audit-spool-max-bytes", c.AuditSpoolMaxBytes, "most bytes the audit spool holds; when full, data planes keep their records (0: unbounded)")
	fs.Int64Var(&c.AuditArtifactMaxBytes, "audit-artifact-max-bytes", c.AuditArtifactMaxBytes, "largest request artifact (image) whose bytes are stored; larger ones keep hash and size only (0: no cap)")
	fs.DurationVar(&c.AuditReplayInterval, "audit-replay-interval", c.AuditReplayInterval, "how often the audit spool is retried while the database is unreachable")
	fs.DurationVar(&c.AuditContentRetention, "audit-content-retention", c.AuditContentRetention, "how long prompts, responses and artifacts are kept (0: forever)")
	fs.DurationVar(&c.AuditMetadataRetention, "audit-metadata-retention", c.AuditMetadataRetention, "how long audit records are kept at all (0: forever)")
	fs.DurationVar(&c.AuditPurgeInterval, "audit-purge-interval", c.AuditPurgeInterval, "interval between audit retention passes")
	fs.DurationVar(&c.ResponsesRetention, "responses-retention", c.ResponsesRetention, "how long stored responses of the Responses API (store=true) are kept (0: forever)")
	fs.IntVar(&c.AuditPurgeBatch, "audit-purge-batch", c.AuditPurgeBatch, "rows per audit retention statement")
	fs.BoolVar(&c.LeaderElection, "leader-election", c.LeaderElection, "run as one of several control planes on one database: act only while holding the leader lease, stand by otherwise (false: always the leader)")
	fs.DurationVar(&c.LeaderLeaseTTL, "leader-lease-ttl", c.LeaderLeaseTTL, "leader lease lifetime without renewal; a standby takes over within 1.2 times this after the leader stops")
	fs.StringVar(&c.AdvertiseAddr, "advertise-addr", c.AdvertiseAddr, "gRPC host:port other processes reach this control plane at (default: the hostname and the -grpc-listen port)")
	c.History.register(fs)
	c.Alerts.register(fs)
	c.ModelJobs.register(fs)
	deprecated, envErr := applyEnv(fs, lookupEnv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(usage)
			fs.Usage()
		}
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q: every setting is a -flag", fs.Args())
	}
	c.Deprecated = deprecated
	errs := []error{envErr}
	parsed, err := ParseSeeds(seeds)
	if err != nil {
		errs = append(errs, err)
	}
	c.SeedBackends = parsed
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// Validate reports every problem at once, each phrased as what to fix.
func (c Config) Validate() error {
	var errs []error
	if c.GRPCListen == "" || c.RESTListen == "" {
		errs = append(errs, errors.New("grpc-listen and rest-listen must be set"))
	}
	switch c.DatabaseDriver {
	case "sqlite":
		if c.DatabaseDSN == "" && c.DataDir == "" {
			errs = append(errs, errors.New("sqlite needs -data-dir or -db-dsn"))
		}
	case "mysql":
		if c.DatabaseDSN == "" {
			errs = append(errs, errors.New("mysql needs -db-dsn (e.g. user:pass@tcp(host:3306)/mindrouter?parseTime=true)"))
		}
	default:
		errs = append(errs, fmt.Errorf("db-driver %q: use sqlite or mysql", c.DatabaseDriver))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("-tls-cert-file and -tls-key-file go together"))
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		errs = append(errs, errors.New("-tls-client-ca-file needs -tls-cert-file and -tls-key-file (mutual TLS is TLS first)"))
	}
	if (c.RESTTLSCertFile == "") != (c.RESTTLSKeyFile == "") {
		errs = append(errs, errors.New("-rest-tls-cert-file and -rest-tls-key-file go together"))
	}
	if c.ClusterToken != "" && c.ClusterTokenFile != "" {
		errs = append(errs, errors.New("set the cluster token or the cluster token file, not both"))
	}
	if c.AdminAPIKey != "" && !strings.HasPrefix(c.AdminAPIKey, "mr2_") {
		errs = append(errs, errors.New("admin-api-key must start with mr2_"))
	}
	if c.ContextCap < 256 {
		errs = append(errs, fmt.Errorf("context-cap %d is too small: use at least 256", c.ContextCap))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"lease-ttl", c.LeaseTTL}, {"session-grace", c.SessionGrace}, {"heartbeat-interval", c.HeartbeatInterval}, {"queue-timeout", c.QueueTimeout}, {"queue-update-interval", c.QueueUpdateInterval}, {"health-interval", c.HealthInterval}, {"telemetry-interval", c.TelemetryInterval}, {"db-timeout", c.DatabaseTimeout}, {"key-cache-ttl", c.KeyCacheTTL}, {"key-cache-max-stale", c.KeyCacheMaxStale},
		{"session-idle", c.SessionIdle}, {"session-max-age", c.SessionMaxAge}, {"login-window", c.LoginWindow}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", d.name))
		}
	}
	if c.LeaderElection && c.LeaderLeaseTTL < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("leader-lease-ttl %s is too short: use at least 100ms (5s in production)", c.LeaderLeaseTTL))
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertiseAddr); err != nil {
			errs = append(errs, fmt.Errorf("advertise-addr %q: want host:port, e.g. cp-0.mindrouter:9090", c.AdvertiseAddr))
		}
	}
	if c.HeartbeatInterval >= c.LeaseTTL {
		errs = append(errs, fmt.Errorf("heartbeat-interval (%s) must be shorter than lease-ttl (%s)", c.HeartbeatInterval, c.LeaseTTL))
	}
	if c.SchedulerPolicy != "wdrr" && c.SchedulerPolicy != "fifo" {
		errs = append(errs, fmt.Errorf("scheduler %q: use wdrr or fifo", c.SchedulerPolicy))
	}
	if c.MaxQueuePerModel < 1 {
		errs = append(errs, errors.New("max-queue must be at least 1"))
	}
	if c.MaxQueuePerUser < 1 {
		errs = append(errs, errors.New("max-queue-per-user must be at least 1"))
	}
	if c.MaxConcurrentPerUser == 0 || c.MaxConcurrentPerUser < -1 {
		errs = append(errs, errors.New("max-concurrent-per-user must be at least 1, or -1 for unlimited"))
	}
	if c.QuotaPeriod < 24*time.Hour || c.QuotaPeriod%(24*time.Hour) != 0 {
		errs = append(errs, fmt.Errorf("quota-period %s: use whole days (24h, 168h, 720h...); periods are stored in days", c.QuotaPeriod))
	}
	if c.LoginMaxAttempts < 1 {
		errs = append(errs, errors.New("login-max-attempts must be at least 1"))
	}
	if c.DefaultMaxTokens < 1 {
		errs = append(errs, errors.New("default-max-tokens must be at least 1"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log-format %q: use text or json", c.LogFormat))
	}
	errs = append(errs, c.History.validate()...)
	errs = append(errs, c.Alerts.validate()...)
	errs = append(errs, c.ModelJobs.validate()...)
	return errors.Join(errs...)
}

// Advertise is the address this control plane names itself by in the leader
// election: AdvertiseAddr, or the hostname with the port of GRPCListen.
func (c Config) Advertise() string {
	if c.AdvertiseAddr != "" {
		return c.AdvertiseAddr
	}
	_, port, err := net.SplitHostPort(c.GRPCListen)
	if err != nil {
		port = "9090"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// SQLitePath is the embedded database file.
func (c Config) SQLitePath() string { return filepath.Join(c.DataDir, "mindrouter.db") }

// ParseSeeds parses "name=engine:url,..." backend seeds.
func ParseSeeds(s string) ([]BackendSeed, error) {
	var out []BackendSeed
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, rest, ok1 := strings.Cut(item, "=")
		engine, url, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || name == "" || !slices.Contains([]string{"ollama", "vllm", "tts", "stt"}, engine) || !strings.HasPrefix(url, "http") {
			return nil, fmt.Errorf("seed backend %q: want name=engine:http://host:port with engine ollama, vllm, tts or stt", item)
		}
		out = append(out, BackendSeed{Name: name, Engine: engine, URL: url})
	}
	return out, nil
}

// ReadOrCreateSecret returns the contents of path, creating it with a fresh random
// secret (mode 0600) when it does not exist.
func ReadOrCreateSecret(path string, gen func() (string, error)) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	s, err := gen()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return s, nil
}
