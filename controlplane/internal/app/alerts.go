package app

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/alert"
	"github.com/mindrouter/mindrouter/controlplane/internal/config"
	"github.com/mindrouter/mindrouter/controlplane/internal/registry"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
	"github.com/mindrouter/mindrouter/controlplane/internal/telemetry"
)

// alerting is the alert evaluator and, when a URL is set, its webhook.
type alerting struct {
	evaluator *alert.Evaluator
	webhook   *alert.Webhook
}

func newAlerting(cfg config.Alerts, st *store.Store, reg *registry.Registry, tele *telemetry.Service, adm *admission.Server,
	metrics prometheus.Registerer, log *slog.Logger) *alerting {
	a := &alerting{}
	var notifier alert.Notifier
	if cfg.WebhookURL != "" {
		a.webhook = alert.NewWebhook(cfg.WebhookURL, alert.WebhookOptions{Logger: log, Registerer: metrics})
		notifier = a.webhook
	}
	source := func(ctx context.Context) (alert.Snapshot, error) {
		nodes, err := st.ListNodes(ctx)
		if err != nil {
			return alert.Snapshot{}, err
		}
		return alert.Snapshot{Backends: reg.ListBackends(), Nodes: nodes, GPUs: tele.Latest(), Spools: adm.SpoolFills()}, nil
	}
	a.evaluator = alert.NewEvaluator(st, source, alert.Options{
		Thresholds: alert.Thresholds{NodeSilentAfter: cfg.NodeSilentAfter, GPUTemperatureC: cfg.GPUTemperatureC, SpoolFillRatio: cfg.SpoolFillRatio},
		Interval:   cfg.Interval, Notifier: notifier, Logger: log, Registerer: metrics,
	})
	return a
}

// run evaluates and delivers until ctx ends.
func (a *alerting) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	if a.webhook != nil {
		g.Go(func() error { return a.webhook.Run(gctx) })
	}
	g.Go(func() error { return a.evaluator.Run(gctx) })
	return g.Wait()
}
