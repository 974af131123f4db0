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
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/mindrouter/mindrouter/dataplane/internal/audit"
	"github.com/mindrouter/mindrouter/dataplane/internal/config"
	"github.com/mindrouter/mindrouter/dataplane/internal/cpclient"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/audio"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/ollama"
	"github.com/mindrouter/mindrouter/dataplane/internal/engine/vllm"
	"github.com/mindrouter/mindrouter/dataplane/internal/imagefetch"
	"github.com/mindrouter/mindrouter/dataplane/internal/relay"
	"github.com/mindrouter/mindrouter/dataplane/internal/server"
	"github.com/mindrouter/mindrouter/dataplane/internal/signin"
	"github.com/mindrouter/mindrouter/dataplane/internal/surface"
	anthropicsurface "github.com/mindrouter/mindrouter/dataplane/internal/surface/anthropic"
	ollamasurface "github.com/mindrouter/mindrouter/dataplane/internal/surface/ollama"
	openaisurface "github.com/mindrouter/mindrouter/dataplane/internal/surface/openai"
	"github.com/mindrouter/mindrouter/dataplane/internal/tracing"
	"github.com/mindrouter/mindrouter/dataplane/internal/web"
	"github.com/mindrouter/mindrouter/spool"
)

// Version is the binary's version, set at build time with
// -ldflags "-X github.com/mindrouter/mindrouter/dataplane/internal/app.Version=…".
var Version = "dev"

// Run reads the configuration from args and the environment, builds the data
// plane and serves until ctx ends. -h prints the flags to stdout and returns nil.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(args, os.LookupEnv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := NewLogger(cfg, stderr)
	if err != nil {
		return err
	}
	for _, d := range cfg.Deprecated {
		log.Warn("deprecated environment variable: it stops working in the next release",
			slog.String("name", d.Old), slog.String("use", d.New))
	}
	shutdownTracing, spans, err := setupTracing(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()
	if cfg.PprofListen != "" {
		stopPprof, err := startPprof(cfg.PprofListen, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	a, err := New(cfg, log, spans)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if ln, err = publicTLS(cfg, ln); err != nil {
		return err
	}
	return a.Serve(ctx, ln)
}

// NewLogger returns the process logger described by cfg.
func NewLogger(cfg config.Config, w io.Writer) (*slog.Logger, error) {
	level, err := config.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// App is a wired data plane.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	conn    *grpc.ClientConn
	cp      *cpclient.Client
	handler http.Handler
	audit   *audit.Shipper
	sender  *cpclient.AuditSender

	// spool is the audit spool, set before Run starts the session's heartbeats.
	spool    *spool.Spool
	draining atomic.Bool
	inflight sync.WaitGroup
}

// New wires the data plane. It does not contact the control plane: the
// connection is lazy, and requests get 503 until the control plane answers.
// spans says whether requests record OpenTelemetry spans (an exporter is
// configured); without, trace context is only passed through (package tracing).
func New(cfg config.Config, log *slog.Logger, spans bool) (*App, error) {
	a := &App{cfg: cfg, log: log}
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("register go metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("register process metrics: %w", err)
	}

	creds, err := controlPlaneCreds(cfg)
	if err != nil {
		return nil, err
	}
	conn, err := cpclient.Dial(cfg.ControlPlaneAddr, tracing.DialOption(spans), creds)
	if err != nil {
		return nil, err
	}
	a.conn = conn
	// With one control plane, an unreachable one is a 503 at once (it is
	// restarting, and nothing else can answer); with several, a failover.
	var failoverWait time.Duration
	if len(cfg.ControlPlaneAddrs()) > 1 {
		failoverWait = cfg.ControlPlaneFailoverWait
	}
	a.cp, err = cpclient.New(conn, cpclient.Config{
		ClusterToken: cfg.ClusterToken, ReplicaID: cfg.ReplicaID, Version: Version,
		AdmitTimeout: cfg.AdmitTimeout, ReleaseTimeout: cfg.ReleaseTimeout, FailoverWait: failoverWait,
		DrainTimeout: cfg.ReleaseDrainTimeout,
		// One unary call per request instead of two: releases ride the session.
		SessionReleases: true,
		AuditSpool:      a.auditSpoolFill,
		UnaryAdmit:      cfg.AdmitTransport == "unary",
	}, log.With(slog.String("component", "cpclient")), reg)
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}

	if err := a.newAudit(conn, reg); err != nil {
		return nil, errors.Join(err, conn.Close())
	}

	ollamaMetrics, err := ollama.NewMetrics(reg)
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	client := engine.NewClient(tracing.Transport(engine.NewTransport(engine.TransportConfig{
		DialTimeout: cfg.BackendDialTimeout, ResponseHeaderTimeout: cfg.BackendHeaderTimeout,
	}), spans))
	ollamaEngine := ollama.New(ollama.Config{Client: client, IdleTimeout: cfg.BackendIdleTimeout,
		Metrics: ollamaMetrics, Logger: log.With(slog.String("component", "engine.ollama"))})
	engines := map[relay.Engine]engine.Engine{
		relay.EngineOllama: ollamaEngine,
		relay.EngineVLLM:   vllm.New(vllm.Config{Client: client, IdleTimeout: cfg.BackendIdleTimeout}),
		// One client for both: a Speaches server is registered once as tts and once as stt.
		relay.EngineTTS: audio.New(audio.Config{Client: client}),
		relay.EngineSTT: audio.New(audio.Config{Client: client}),
	}
	allowCIDRs, allowHosts, err := cfg.ImageFetchAllowList()
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	images := imagefetch.New(imagefetch.Config{Policy: imagefetch.Policy{AllowCIDRs: allowCIDRs, AllowHosts: allowHosts},
		MaxBytes: cfg.ImageFetchMaxBytes, Timeout: cfg.ImageFetchTimeout})
	rl, err := relay.New(a.cp, engines, relay.Config{MaxAttempts: cfg.MaxAttempts, Images: images, KeepThinkTags: cfg.KeepThinkTags},
		log.With(slog.String("component", "relay")), reg)
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	admin, err := server.AdminGateway(context.Background(), conn)
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	webCP := cpclient.NewWeb(conn, cfg.ClusterToken, 0)
	pages, err := web.New(webCP, web.Config{Version: Version, SessionCookie: signin.CookieName,
		// The chat's messages go through the same relay as the API's.
		Chat: &web.Chat{Conversations: webCP, Relay: rl}},
		log.With(slog.String("component", "web")))
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	oai := openaisurface.New(rl, a.cp, openaisurface.Config{WriteTimeout: cfg.StreamWriteTimeout, Responses: cpclient.NewResponses(conn, cfg.ClusterToken)}, log.With(slog.String("component", "openai")))
	tools, err := a.newToolRoutes(oai, rl, reg)
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	srv, err := server.New(server.Options{
		MaxBodyBytes: cfg.MaxBodyBytes, BodyReadTimeout: cfg.BodyReadTimeout, BodyMinRate: cfg.BodyMinRate,
		Surfaces: []server.Surface{
			// Before OpenAI: it owns /v1/messages, which the OpenAI surface's /v1/ would claim.
			anthropicsurface.New(rl, a.cp, anthropicsurface.Config{WriteTimeout: cfg.StreamWriteTimeout}, log.With(slog.String("component", "anthropic"))),
			oai,
			tools,
			ollamasurface.New(rl, a.cp, rl, ollamasurface.Config{WriteTimeout: cfg.StreamWriteTimeout}, log.With(slog.String("component", "ollama"))),
		},
		Admin: admin,
		SignIn: signin.New(conn, signin.Config{ClusterToken: cfg.ClusterToken, SecureCookies: cfg.SecureCookies},
			log.With(slog.String("component", "signin"))),
		Web: pages, WebRoutes: web.Routes,
		Ready:    func() bool { return !a.draining.Load() && a.cp.Available(failoverWait) },
		Registry: reg,
		Spans:    spans,
		Log:      log,
	})
	if err != nil {
		return nil, errors.Join(err, conn.Close())
	}
	a.handler = a.track(srv)
	return a, nil
}

// Handler returns the data plane's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// track counts handlers in flight, so that shutdown can wait for their
// releases, and takes the control plane's Release off the client's path: the
// relay defers the release of a lease that served the request until the
// handler has returned, and track then sends it from a goroutine of its own
// (still counted in flight) once the reply is on the wire. The client's next
// request on the connection need not wait for it either.
func (a *App) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.inflight.Add(1)
		var entry *audit.Entry // nil records nothing: audit off
		if a.audit != nil {
			entry = audit.NewEntry(time.Now(), clientIP(r), r.UserAgent(), a.audit.Gate)
		}
		r, deferred := surface.Track(r, entry)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			recorded := entry.Started()
			if !deferred.Pending() && !recorded {
				a.inflight.Done()
				return
			}
			// A whole answer of known length can be put on the wire now; a
			// stream has flushed every event already, and net/http ends both.
			if w.Header().Get("Content-Length") != "" {
				_ = http.NewResponseController(w).Flush()
			}
			end := time.Now()
			go func() {
				if recorded {
					a.audit.Submit(entry.Finish(sw.status, end, a.audit.Content()))
				}
				a.sendDeferred(deferred)
			}()
		}()
		next.ServeHTTP(sw, r)
	})
}

// auditSpoolFill reports the audit spool's fill for the session heartbeat.
func (a *App) auditSpoolFill() (bytes, maxBytes int64) {
	if a.spool == nil {
		return 0, 0
	}
	_, b := a.spool.Len()
	return b, a.spool.MaxBytes()
}

// newAudit builds the audit shipper: its spool and its stream to the control
// plane. With audit off (-audit=off) there is none, and it says so loudly.
func (a *App) newAudit(conn *grpc.ClientConn, reg prometheus.Registerer) error {
	if !a.cfg.Audit {
		a.log.Warn("AUDIT IS OFF (-audit=off / MINDROUTER_DP_AUDIT=off): no request this data plane answers is recorded in the audit trail; " +
			"records spooled by an earlier run stay in its spool until audit is turned back on")
		return nil
	}
	dir := a.cfg.AuditSpoolDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "mindrouter-audit-"+a.cfg.ReplicaID)
	}
	spool, err := spool.Open(dir, a.cfg.AuditSpoolMaxBytes)
	if err != nil {
		return err
	}
	a.spool = spool
	if n, b := spool.Len(); n > 0 {
		a.log.Info("audit spool holds batches from a previous run; replaying", slog.Int("batches", n), slog.Int64("bytes", b))
	}
	a.sender = a.cp.NewAuditSender(conn)
	a.audit = audit.NewShipper(a.sender, spool, audit.Options{
		FlushInterval: a.cfg.AuditFlushInterval, RetryInterval: a.cfg.AuditRetryInterval,
		Policy: audit.Policy(a.cfg.AuditSpoolFull), Content: a.cfg.AuditContent,
		Logger: a.log.With(slog.String("component", "audit")), Registerer: reg,
	})
	return nil
}

// statusWriter remembers the status the client got, for the audit record.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer (for code that type-asserts http.Flusher).
func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// clientIP is the address the request came from.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// sendDeferred sends a request's deferred releases; the request counts as in
// flight until they are sent.
func (a *App) sendDeferred(d *relay.Deferred) {
	defer a.inflight.Done()
	d.Send()
}

// Serve serves on ln until ctx ends, then shuts down in order: stop accepting
// and let requests in flight finish (up to the shutdown timeout, after which
// their connections are closed and they release as cancelled), and only then
// stop the control-plane client, which first retries any releases still
// pending. The control-plane client must outlive the HTTP server, or the last
// requests' usage would be lost.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	a.log.Info("data plane starting", slog.Any("config", a.cfg), slog.String("version", Version),
		slog.String("addr", ln.Addr().String()))
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	cpCtx, stopCP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCP()
	var cpDone sync.WaitGroup
	cpDone.Go(func() { _ = a.cp.Run(cpCtx) })
	// The shipper stops after the last request has been recorded, and before
	// the control-plane connection: its last flush needs it.
	auditCtx, stopAudit := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAudit()
	var auditDone sync.WaitGroup
	if a.audit != nil {
		auditDone.Go(func() { _ = a.audit.Run(auditCtx) })
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve http: %w", err)
	}
	a.draining.Store(true)
	if err == nil && a.cfg.DrainDelay > 0 {
		// /readyz answers 503 now; keep serving until the load balancer has
		// seen it and stopped sending, then stop accepting.
		a.log.Info("data plane draining: unready, still serving", slog.Duration("drain_delay", a.cfg.DrainDelay))
		t := time.NewTimer(a.cfg.DrainDelay)
		select {
		case <-t.C:
		case err = <-serveErr:
			err = fmt.Errorf("serve http: %w", err)
			t.Stop()
		}
	}
	a.log.Info("data plane shutting down", slog.Duration("timeout", a.cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	if serr := srv.Shutdown(sctx); serr != nil {
		a.log.Warn("requests still in flight at the shutdown deadline; closing their connections")
		_ = srv.Close()
	}
	cancel()
	if err == nil {
		if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
			err = fmt.Errorf("serve http: %w", serr)
		}
	}
	a.waitInflight(5 * time.Second)
	stopAudit()
	auditDone.Wait()
	if a.sender != nil {
		a.sender.Close()
	}
	stopCP()
	cpDone.Wait()
	a.log.Info("data plane stopped")
	return err
}

// waitInflight waits for handlers (whose connections Close cut) to release.
func (a *App) waitInflight(limit time.Duration) {
	done := make(chan struct{})
	go func() {
		a.inflight.Wait()
		close(done)
	}()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		a.log.Warn("handlers still running after shutdown; their releases may be late")
	}
}

// Close releases the control-plane connection.
func (a *App) Close() error { return a.conn.Close() }
