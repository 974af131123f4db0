package config

import (
	"errors"
	"flag"
	"net/url"
	"time"
)

// Alerts configures the alert evaluator and its webhook.
type Alerts struct {
	// Interval between evaluation rounds.
	Interval time.Duration
	// NodeSilentAfter: an online node unheard for this long is silent.
	NodeSilentAfter time.Duration
	// GPUTemperatureC: a GPU at or above it raises an alert.
	GPUTemperatureC float64
	// SpoolFillRatio: a data plane's audit spool at or above this share of its
	// limit raises an alert.
	SpoolFillRatio float64
	// WebhookURL, when set, receives each raise and clear as Slack-compatible
	// JSON. It may hold a secret (Slack's do); it is never logged.
	WebhookURL string
}

func defaultAlerts() Alerts {
	return Alerts{Interval: 15 * time.Second, NodeSilentAfter: 3 * time.Minute, GPUTemperatureC: 85, SpoolFillRatio: 0.8}
}

func (a *Alerts) register(fs *flag.FlagSet) {
	fs.DurationVar(&a.Interval, "alert-interval", a.Interval, "how often alerts are evaluated")
	fs.DurationVar(&a.NodeSilentAfter, "alert-node-silent-after", a.NodeSilentAfter, "an online node whose agent sent nothing for this long raises node_silent")
	fs.Float64Var(&a.GPUTemperatureC, "alert-gpu-temperature", a.GPUTemperatureC, "GPU temperature (°C) at or above which gpu_temperature is raised")
	fs.Float64Var(&a.SpoolFillRatio, "alert-spool-fill", a.SpoolFillRatio, "share (0-1] of a data plane's audit spool limit at which audit_spool_filling is raised")
	fs.StringVar(&a.WebhookURL, "alert-webhook-url", a.WebhookURL, "URL that receives each alert raise and clear as Slack-compatible JSON (secret: prefer the environment variable)")
}

func (a Alerts) validate() []error {
	errs := belowMin(
		minDuration{"alert-interval", a.Interval, time.Second, ""},
		// A shorter silence would flap.
		minDuration{"alert-node-silent-after", a.NodeSilentAfter, 90 * time.Second, "a node's last_seen is written every minute"},
	)
	if a.GPUTemperatureC <= 0 || a.GPUTemperatureC > 150 {
		errs = append(errs, errors.New("alert-gpu-temperature must be in (0, 150] °C"))
	}
	if a.SpoolFillRatio <= 0 || a.SpoolFillRatio > 1 {
		errs = append(errs, errors.New("alert-spool-fill must be in (0, 1]"))
	}
	if a.WebhookURL != "" {
		// The message names no part of the URL: it may hold a secret.
		if u, err := url.Parse(a.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("alert-webhook-url must be an http or https URL"))
		}
	}
	return errs
}
