package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/mindrouter/mindrouter/nodeagent/internal/collector"
	"github.com/mindrouter/mindrouter/nodeagent/internal/config"
	"github.com/mindrouter/mindrouter/nodeagent/internal/powercap"
	"github.com/mindrouter/mindrouter/nodeagent/internal/uplink"
	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
	"github.com/mindrouter/mindrouter/tlsfiles"
)

// Option replaces a dependency of Run; tests use them, main passes none.
type Option func(*deps)

type deps struct {
	nvml   nvml.Interface
	getenv func(string) string
}

// WithNVML makes the agent read lib instead of the system's NVML library.
func WithNVML(lib nvml.Interface) Option { return func(d *deps) { d.nvml = lib } }

// WithGetenv makes the agent read its environment through getenv.
func WithGetenv(getenv func(string) string) Option { return func(d *deps) { d.getenv = getenv } }

// Run runs the node agent until ctx is cancelled. args exclude the program name. It
// returns nil after a clean stop or -h, and an error when the configuration is invalid
// or a listener cannot start; an unreachable control plane or a missing GPU driver is
// not an error (the agent keeps trying and reports what it can).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, opts ...Option) error {
	d := deps{getenv: os.Getenv}
	for _, o := range opts {
		o(&d)
	}
	lookupEnv := func(k string) (string, bool) { v := d.getenv(k); return v, v != "" }
	cfg, err := config.Load(args, lookupEnv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	logger, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	for _, d := range cfg.Deprecated {
		logger.Warn("deprecated environment variable: it stops working in the next release",
			slog.String("name", d.Old), slog.String("use", d.New))
	}
	secret, err := cfg.ResolveSecret()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if d.nvml == nil {
		d.nvml = newNVML(cfg.NVMLLibrary)
	}
	version := agentVersion()
	logger.Info("node agent starting", "version", version, "config", cfg)

	conn, err := dial(cfg, logger)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()

	col := collector.New(d.nvml, collector.WithLogger(logger.With("component", "collector")),
		collector.WithHostPower(hostPower(cfg.PowercapRoot, logger.With("component", "powercap"))))
	defer func() {
		if err := col.Close(); err != nil {
			logger.Warn("close nvml", "error", err)
		}
	}()

	reg := prometheus.NewRegistry()
	hostname, _ := os.Hostname()
	up, err := uplink.New(conn, col, uplink.Config{
		NodeName:     cfg.NodeName,
		Secret:       secret,
		AgentVersion: version,
		Hostname:     hostname,
		Interval:     cfg.Interval,
		MinInterval:  config.MinInterval,
		Logger:       logger.With("component", "uplink"),
		Registerer:   reg,
	})
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // runs before wg.Wait: stops the metrics server on any return
	if cfg.MetricsAddr != "" {
		srv, lis, err := newMetricsServer(cfg.MetricsAddr, reg)
		if err != nil {
			return err
		}
		logger.Info("metrics listening", "addr", lis.Addr().String())
		wg.Go(func() {
			if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics listener", "error", err)
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
	}
	err = up.Run(ctx)
	logger.Info("node agent stopped", "samples_sent", up.Stats().Sent, "samples_dropped", up.Stats().Dropped)
	return err
}

func newLogger(cfg config.Config, w io.Writer) (*slog.Logger, error) {
	level, err := config.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	ho := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, ho)), nil
	}
	return slog.New(slog.NewJSONHandler(w, ho)), nil
}

func newNVML(path string) nvml.Interface {
	if path == "" {
		return nvml.New()
	}
	return nvml.New(nvml.WithLibraryPath(path))
}

// dial creates the (lazily connecting) client; its transport backoff is capped like the
// uplink's so a returning control plane is found within 30 s.
func dial(cfg config.Config, logger *slog.Logger) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if cfg.TLS {
		src, err := tlsfiles.Load(tlsfiles.Files{CertFile: cfg.TLSCertFile, KeyFile: cfg.TLSKeyFile, CAFile: cfg.TLSCAFile})
		if err != nil {
			return nil, fmt.Errorf("control plane TLS: %w", err)
		}
		creds = credentials.NewTLS(src.ClientConfig(cfg.TLSServerName))
	} else if !isLoopback(cfg.ControlPlaneAddrs()[0]) {
		logger.Warn("the node secret is sent without TLS; use -tls on untrusted networks",
			"control_plane", cfg.ControlPlaneAddr)
	}
	target, opts := cfg.ControlPlaneAddr, []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if addrs := cfg.ControlPlaneAddrs(); len(addrs) > 1 {
		// A standby does not open its gRPC port: pick_first over the list (in
		// order) connects to whichever answers, the leader, and moves on by
		// itself when it goes away.
		r := manual.NewBuilderWithScheme("mindrouter-cp")
		var state resolver.State
		for _, a := range addrs {
			host, _, _ := net.SplitHostPort(a)
			state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: host})
		}
		r.InitialState(state)
		target = r.Scheme() + ":///controlplanes"
		opts = append(opts, grpc.WithResolvers(r), grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"pick_first":{}}]}`))
	}
	conn, err := grpc.NewClient(target, append(opts,
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: uplink.DefaultBackoffMax,
			},
			MinConnectTimeout: 20 * time.Second,
		}))...)
	if err != nil {
		return nil, fmt.Errorf("dial control plane %q: %w", cfg.ControlPlaneAddr, err)
	}
	return conn, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newMetricsServer prepares /metrics (the uplink's counters plus Go and process
// metrics) and /healthz on a listener bound to addr; the caller serves and shuts down.
func newMetricsServer(addr string, reg *prometheus.Registry) (*http.Server, net.Listener, error) {
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, nil, fmt.Errorf("register go metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, nil, fmt.Errorf("register process metrics: %w", err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, lis, nil
}

// agentVersion is the module version stamped by the Go toolchain, with the VCS
// revision for development builds.
func agentVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

// hostPower reads RAPL under root, logging each change of why it cannot; "off"
// or empty reads nothing.
func hostPower(root string, log *slog.Logger) func() *nodeagentv1.HostPower {
	if root == "" || root == "off" {
		return nil
	}
	r := powercap.New(root, nil)
	var last string
	return func() *nodeagentv1.HostPower {
		hp, err := r.Read()
		if msg := fmt.Sprint(err); err != nil && msg != last {
			log.Info("host power unavailable; reporting GPU power only", slog.String("reason", msg))
			last = msg
		} else if err == nil {
			last = ""
		}
		return hp
	}
}
