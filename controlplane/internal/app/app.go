// Package app is the control plane's composition root: it reads the configuration,
// builds every component in dependency order and runs them until the context ends.
package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/alert"
	"github.com/mindrouter/mindrouter/controlplane/internal/audit"
	"github.com/mindrouter/mindrouter/controlplane/internal/config"
	"github.com/mindrouter/mindrouter/controlplane/internal/conversation"
	"github.com/mindrouter/mindrouter/controlplane/internal/election"
	"github.com/mindrouter/mindrouter/controlplane/internal/energy"
	"github.com/mindrouter/mindrouter/controlplane/internal/fairshare"
	"github.com/mindrouter/mindrouter/controlplane/internal/health"
	"github.com/mindrouter/mindrouter/controlplane/internal/identity"
	"github.com/mindrouter/mindrouter/controlplane/internal/modeljob"
	"github.com/mindrouter/mindrouter/controlplane/internal/quota"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/responses"
	"github.com/mindrouter/mindrouter/controlplane/internal/scheduler"
	"github.com/mindrouter/mindrouter/controlplane/internal/scoring"
	"github.com/mindrouter/mindrouter/controlplane/internal/server"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/system"
	"github.com/mindrouter/mindrouter/controlplane/internal/telemetry"
	"github.com/mindrouter/mindrouter/spool"
)

// Run starts the control plane and blocks until ctx is cancelled or a component fails.
// The admin API key is written to stdout once, when it is first created. -h prints
// the flags to stdout and returns nil.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	lookupEnv := func(k string) (string, bool) { v := getenv(k); return v, v != "" }
	cfg, err := config.Load(args, lookupEnv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	for _, d := range cfg.Deprecated {
		log.Warn("deprecated environment variable: it stops working in the next release",
			slog.String("name", d.Old), slog.String("use", d.New))
	}
	metrics := newMetrics()
	tracer, err := newTracerProvider(ctx, getenv)
	if err != nil {
		return err
	}
	var tracing trace.TracerProvider // nil interface, not a typed nil: no spans
	if tracer != nil {
		tracing = tracer
		defer func() { _ = tracer.Shutdown(context.WithoutCancel(ctx)) }()
	}

	clusterToken, err := loadClusterToken(cfg)
	if err != nil {
		return err
	}

	// The store comes first: everything else loads its state from it.
	st, err := store.Open(ctx, storeConfig(cfg), log.With("component", "store"))
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()

	// With leader election nothing below runs before this process leads: a
	// standby only waits, so that it takes over with the database's state as
	// the old leader left it, exactly like a restart.
	leading := func() bool { return true }
	var lead *election.Elector
	if cfg.LeaderElection {
		lead, err = standBy(ctx, cfg, st, metrics, metrics, log.With("component", "election"))
		if err != nil {
			if ctx.Err() != nil {
				log.Info("control plane stopped while standing by")
				return nil
			}
			return err
		}
		// Last: hand the lease over only after the final quota flush.
		defer lead.Resign(context.WithoutCancel(ctx))
		leading = lead.Leading
	}

	ident := identity.New(st, identity.Options{
		CacheTTL: cfg.KeyCacheTTL, MaxStale: cfg.KeyCacheMaxStale,
		Logger: log.With("component", "identity"), Registerer: metrics,
	})
	boot, err := ident.Bootstrap(ctx, cfg.AdminAPIKey)
	if err != nil {
		return err
	}
	// A key from the configuration is the operator's already; echoing it would only
	// put a secret into the process's output.
	if boot.Created && boot.Key != "" && boot.Key != cfg.AdminAPIKey {
		fmt.Fprintf(stdout, "\nAdmin user %q created. Its API key (shown once, keep it safe):\n\n    %s\n\n", boot.Username, boot.Key)
	}

	accounts, err := identity.NewAccounts(ident, st, identity.AccountOptions{
		SessionIdle: cfg.SessionIdle, SessionAbsolute: cfg.SessionMaxAge,
		LoginAttempts: cfg.LoginMaxAttempts, LoginWindow: cfg.LoginWindow,
	})
	if err != nil {
		return err
	}

	var sso *identity.SSO
	if cfg.OIDCConfig != "" {
		providers, err := identity.LoadOIDCProviders(cfg.OIDCConfig)
		if err != nil {
			return err
		}
		sso = identity.NewSSO(accounts, st, providers, nil)
	}

	hist, err := newTelemetryHistory(cfg.History, st, metrics, log.With("component", "history"))
	if err != nil {
		return err
	}
	tele, err := telemetry.New(st, telemetry.Options{SampleInterval: cfg.TelemetryInterval, Logger: log.With("component", "telemetry"), Registerer: metrics, History: hist.writer})
	if err != nil {
		return err
	}
	// The queue owns the exact in-flight counts: admission takes its slots from it
	// and the registry's admin view reports them.
	fairShare := fairshare.DefaultParams()
	fairShare.MaxQueuePerUser = cfg.MaxQueuePerUser
	queue, err := NewQueue(QueueConfig{
		Policy: cfg.SchedulerPolicy, FairShare: fairShare,
		Queue: scheduler.Options{MaxQueuePerModel: cfg.MaxQueuePerModel, QueueTimeout: cfg.QueueTimeout, UpdateInterval: cfg.QueueUpdateInterval},
	}, metrics, log.With("component", "admission"))
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	prober := health.NewProber(nil, log.With("component", "health"))
	reg := registry.New(st, registry.Options{
		Logger: log.With("component", "registry"), Registerer: metrics,
		GPUs: tele, Prober: prober, ContextCap: cfg.ContextCap, InFlight: queue.InFlight,
	})
	if err := reg.Load(ctx); err != nil {
		return fmt.Errorf("load registry: %w", err)
	}

	// Quotas are reserved at Admit and settled at Release in memory; usage is
	// written to the quotas table in batches and restored here at start.
	quotas, err := quota.New(quota.Options{
		Period: cfg.QuotaPeriod, MaxConcurrentPerUser: cfg.MaxConcurrentPerUser,
		Store: usageStore{st: st, leading: leading}, Logger: log.With("component", "quota"), Registerer: metrics,
	})
	if err != nil {
		return err
	}
	if err := quotas.Load(ctx); err != nil {
		return err
	}
	// The on/off switch is read before admission serves: a control plane that
	// starts (or is elected) while the service is offline keeps it offline.
	sysSwitch := system.New(st)
	if err := sysSwitch.Load(ctx); err != nil {
		return err
	}
	adm, err := admission.New(identityPort(ident, accounts), registryPort(reg), queue, admission.Options{
		Scorer:           registryScorer(reg, scoring.Defaults()),
		DefaultMaxTokens: cfg.DefaultMaxTokens,
		LeaseTTL:         cfg.LeaseTTL, SessionGrace: cfg.SessionGrace, HeartbeatInterval: cfg.HeartbeatInterval,
		Revocations: ident, Accountant: Accountant(quotas), Logger: log.With("component", "admission"), Registerer: metrics,
		Usage: settledRequests{hist.writer}, Gate: sysSwitch, TracerProvider: tracing,
		Status: server.StatusOf(log.With("component", "server")), Leading: leading,
	})
	if err != nil {
		return err
	}

	seedBackends(ctx, log, reg, cfg.SeedBackends)

	auditWriter, auditSvc, retention, err := newAudit(cfg, st, metrics, log.With("component", "audit"))
	if err != nil {
		return err
	}

	modelJobs := modeljob.NewRunner(st, reg, modeljob.Options{
		Backoff: cfg.ModelJobs.PullBackoff, ReadTimeout: cfg.ModelJobs.PullReadTimeout, ProgressInterval: cfg.ModelJobs.ProgressInterval,
		Logger: log.With("component", "modeljob"), Registerer: metrics,
	})
	alerts := newAlerting(cfg.Alerts, st, reg, tele, adm, metrics, log.With("component", "alert"))
	srv := server.New(server.Options{
		Services: server.Services{
			Admission: adm, Session: adm,
			Registry: registry.NewAdminServer(reg), Catalog: registry.NewCatalogServer(reg), Identity: identity.NewAdminServer(ident, st, accounts),
			Account: identity.NewAccountServer(ident, st, accounts).WithUsage(accountUsage{quotas}), SignIn: identity.NewSignInServer(accounts, sso),
			Conversation: conversation.NewServer(st),
			Responses:    responses.NewServer(st, ident),
			Scheduler:    admission.NewSchedulerService(adm, admission.AdminOptions{Quota: quotaView{quotas}}),
			Status:       admission.NewStatusService(adm, fleetCounter(reg)).WithTotal(st.LifetimeTokens),
			Telemetry:    tele,
			TelemetryHistory: energy.NewService(st, energy.ServiceOptions{Tiers: hist.tiers, Prices: energy.Prices{
				PerKWh: cfg.History.PricePerKWh, PromptPerMillion: cfg.History.CommercialPromptPrice, CompletionPerMillion: cfg.History.CommercialOutputPrice,
			}}),
			Audit: auditSvc, AuditIngest: audit.NewIngester(auditWriter, log.With("component", "audit")),
			Alert:    alert.NewService(st),
			System:   system.NewService(sysSwitch, actorName),
			ModelJob: modeljob.NewService(st, reg, modelJobs, modeljob.ServiceOptions{MaxAttempts: cfg.ModelJobs.PullAttempts}),
		},
		Actions:  st,
		Verifier: ident, Sessions: accounts, ClusterToken: clusterToken, Ready: st.Ping, Leading: leading,
		Logger: log.With("component", "server"), Registerer: metrics, Gatherer: metrics, TracerProvider: tracing, Propagator: newPropagator(),
	})
	grpcLis, err := net.Listen("tcp", cfg.GRPCListen)
	if err != nil {
		return fmt.Errorf("listen gRPC: %w", err)
	}
	restLis, err := net.Listen("tcp", cfg.RESTListen)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("listen REST: %w", err)
	}
	grpcLis, restLis, err = secureListeners(cfg, grpcLis, restLis)
	if err != nil {
		grpcLis.Close()
		restLis.Close()
		return err
	}
	log.Info("control plane serving", "grpc", grpcLis.Addr().String(), "rest", restLis.Addr().String(),
		"grpc_tls", tlsMode(cfg.TLSCertFile, cfg.TLSClientCAFile), "rest_tls", tlsMode(cfg.RESTTLSCertFile, ""),
		"db_driver", cfg.DatabaseDriver, "context_cap", cfg.ContextCap, "scheduler", cfg.SchedulerPolicy)

	g, gctx := errgroup.WithContext(ctx)
	// The quota manager's last flush must come after the last Release: the server
	// keeps settling releases during its graceful stop.
	qctx, stopQuotas := context.WithCancel(context.WithoutCancel(gctx))
	g.Go(func() error {
		defer stopQuotas()
		return srv.Serve(gctx, grpcLis, restLis, cfg.ShutdownTimeout)
	})
	g.Go(func() error { return adm.Run(gctx) })
	g.Go(func() error { return quotas.Run(qctx) })
	g.Go(func() error { return reg.RunHealth(gctx, cfg.HealthInterval) })
	// Usage counts are flushed once more when the context ends.
	g.Go(func() error { return ident.Run(gctx) })
	g.Go(func() error { accounts.Run(gctx, min(cfg.SessionIdle, time.Hour)); return nil })
	g.Go(func() error { return auditWriter.Run(gctx) })
	g.Go(func() error { return retention.Run(gctx) })
	respRetention := responses.Retention{Store: st, Age: cfg.ResponsesRetention, Interval: cfg.AuditPurgeInterval,
		Batch: cfg.AuditPurgeBatch, Leading: leading, Logger: log.With("component", "responses")}
	g.Go(func() error { return respRetention.Run(gctx) })
	if lead != nil {
		g.Go(func() error {
			select {
			case <-lead.Lost():
				return errLostLeadership
			case <-gctx.Done():
				return nil
			}
		})
	}
	// Like the quota manager's, the history writer's last flush comes after the
	// last Release.
	g.Go(func() error { return hist.writer.Run(qctx) })
	g.Go(func() error { return hist.downsampler.Run(gctx) })
	g.Go(func() error { return hist.attributor.Run(gctx) })
	g.Go(func() error { return alerts.run(gctx) })
	g.Go(func() error { return modelJobs.Run(gctx) })
	err = g.Wait()
	log.Info("control plane stopped")
	return err
}

// newAudit builds the audit trail's writer (with its spool), admin service and
// retention.
func newAudit(cfg config.Config, st *store.Store, reg prometheus.Registerer, log *slog.Logger) (*audit.Writer, *audit.Service, *audit.Retention, error) {
	dir := cfg.AuditSpoolDir
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, "audit-spool")
	}
	spool, err := spool.Open(dir, cfg.AuditSpoolMaxBytes)
	if err != nil {
		return nil, nil, nil, err
	}
	if n, b := spool.Len(); n > 0 {
		log.Info("audit spool holds batches from a previous run; replaying", "batches", n, "bytes", b)
	}
	w := audit.NewWriter(st, spool, audit.WriterOptions{ArtifactMaxBytes: cfg.AuditArtifactMaxBytes,
		ReplayInterval: cfg.AuditReplayInterval, Logger: log, Registerer: reg})
	ret := audit.NewRetention(st, audit.RetentionOptions{Content: cfg.AuditContentRetention, Metadata: cfg.AuditMetadataRetention,
		Interval: cfg.AuditPurgeInterval, Batch: cfg.AuditPurgeBatch, Logger: log})
	return w, audit.NewService(st, ret, log), ret, nil
}

func storeConfig(cfg config.Config) store.Config {
	if cfg.DatabaseDriver == "sqlite" && cfg.DatabaseDSN == "" {
		return store.Config{Driver: "sqlite", DSN: store.SQLiteDSN(cfg.SQLitePath()), Timeout: cfg.DatabaseTimeout}
	}
	return store.Config{Driver: cfg.DatabaseDriver, DSN: cfg.DatabaseDSN, Timeout: cfg.DatabaseTimeout}
}

// loadClusterToken returns the configured token, or the one in the token file, or
// creates one in the data directory so that a local data plane can read it.
func loadClusterToken(cfg config.Config) (string, error) {
	if cfg.ClusterToken != "" {
		return cfg.ClusterToken, nil
	}
	path := cfg.ClusterTokenFile
	if path == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return "", fmt.Errorf("create data dir: %w", err)
		}
		path = filepath.Join(cfg.DataDir, "cluster-token")
	}
	return config.ReadOrCreateSecret(path, func() (string, error) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return base64.RawURLEncoding.EncodeToString(b), nil
	})
}

// seedBackends registers the configured backends that do not exist yet; a backend
// already stored under a seed's name is left exactly as it is, so restarts never
// undo an admin's changes. Failures are logged, not fatal: a backend can be
// registered later through the admin API.
func seedBackends(ctx context.Context, log *slog.Logger, reg *registry.Registry, seeds []config.BackendSeed) {
	for _, s := range seeds {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		b, created, err := reg.SeedBackend(sctx, store.BackendSpec{Name: s.Name, URL: s.URL, Engine: s.Engine, MaxConcurrent: registry.DefaultMaxConcurrent})
		cancel()
		if err != nil {
			log.Warn("seed backend", "name", s.Name, "error", err)
			continue
		}
		if !created && (b.URL != s.URL || string(b.Engine) != s.Engine) {
			// The stored backend wins: an admin may have moved it on purpose.
			log.Warn("seed backend differs from the stored one; the stored one is kept (change it through the admin API)",
				"name", s.Name, "seed_url", s.URL, "stored_url", b.URL, "seed_engine", s.Engine, "stored_engine", b.Engine)
		}
		log.Info("seed backend", "name", b.Name, "engine", b.Engine, "status", b.Status, "created", created, "models", len(b.Models))
	}
}

// quotaView shows the quota manager's usage in the admin queue view.
type quotaView struct{ m *quota.Manager }

func (q quotaView) Usage(userID int64) (used, reserved, budget int64, rpm int) {
	u := q.m.Usage(userID)
	return u.TokensUsed, u.Reserved, u.Budget, u.RequestsInWindow
}

// fleetCounter counts the registry's backends and nodes for the public
// status page.
func fleetCounter(reg *registry.Registry) admission.FleetFunc {
	return func(ctx context.Context) (admission.Fleet, error) {
		var f admission.Fleet
		for _, b := range reg.ListBackends() {
			f.BackendsTotal++
			switch b.Status {
			case registry.StatusHealthy:
				f.BackendsHealthy++
			case registry.StatusDisabled:
				f.BackendsDisabled++
			case registry.StatusDraining:
				f.BackendsDraining++
			}
			if b.Circuit == registry.CircuitOpen {
				f.CircuitsOpen++
			}
		}
		nodes, err := reg.ListNodes(ctx)
		if err != nil {
			return f, err
		}
		for _, n := range nodes {
			f.NodesTotal++
			if n.Status == "online" {
				f.NodesOnline++
			}
		}
		return f, nil
	}
}

// accountUsage shows the quota manager's usage on a user's own dashboard.
type accountUsage struct{ m *quota.Manager }

func (a accountUsage) Usage(userID int64) identity.Usage {
	u := a.m.Usage(userID)
	return identity.Usage{TokensUsed: u.TokensUsed, LifetimeTokensUsed: u.LifetimeTokensUsed, TokensReserved: u.Reserved,
		PeriodStart: u.PeriodStart, PeriodEnd: u.PeriodEnd, RequestsLastMinute: u.RequestsInWindow, InFlight: u.InFlight}
}

// usageStore keeps the quota manager's usage in the quotas table. A control
// plane that no longer leads writes nothing: the new leader's totals win.
type usageStore struct {
	st      *store.Store
	leading func() bool
}

func (u usageStore) LoadUsage(ctx context.Context) ([]quota.Record, error) {
	rows, err := u.st.ListQuotaUsage(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]quota.Record, len(rows))
	for i, r := range rows {
		out[i] = quota.Record{UserID: r.UserID, TokensUsed: r.TokensUsed, LifetimeTokensUsed: r.LifetimeTokensUsed,
			PeriodStart: r.PeriodStart, PeriodDays: r.PeriodDays}
	}
	return out, nil
}

func (u usageStore) SaveUsage(ctx context.Context, records []quota.Record) error {
	if !u.leading() {
		return errors.New("not the leader: quota usage not written")
	}
	rows := make([]store.QuotaUsage, len(records))
	for i, r := range records {
		rows[i] = store.QuotaUsage{UserID: r.UserID, TokensUsed: r.TokensUsed, LifetimeTokensUsed: r.LifetimeTokensUsed,
			PeriodStart: r.PeriodStart, PeriodDays: r.PeriodDays}
	}
	return u.st.UpsertQuotaUsage(ctx, rows)
}
