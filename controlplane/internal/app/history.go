package app

import (
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/controlplane/internal/admission"
	"github.com/mindrouter/mindrouter/controlplane/internal/config"
	"github.com/mindrouter/mindrouter/controlplane/internal/energy"
	"github.com/mindrouter/mindrouter/controlplane/internal/history"
	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// telemetryHistory is the history writer, its downsampler and the energy
// attribution, built from the configuration.
type telemetryHistory struct {
	writer      *history.Writer
	downsampler *history.Downsampler
	attributor  *energy.Attributor
	tiers       []history.Tier
}

func newTelemetryHistory(cfg config.History, st *store.Store, reg prometheus.Registerer, log *slog.Logger) (*telemetryHistory, error) {
	w, err := history.NewWriter(st, history.WriterOptions{QueueSize: cfg.QueueSize, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	tiers := []history.Tier{
		{Step: 0, Retention: cfg.RawRetention},
		{Step: time.Minute, Retention: cfg.MinuteRetention},
		{Step: time.Hour, Retention: cfg.HourRetention},
	}
	d, err := history.NewDownsampler(st, history.DownsamplerOptions{
		Tiers:    tiers,
		Interval: cfg.DownsampleInterval, Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	a, err := energy.NewAttributor(st, energy.AttributorOptions{
		Weights:     energy.Weights{Prompt: cfg.PromptWeight, Completion: cfg.CompletionWeight},
		SettleDelay: cfg.SettleDelay, TraceWait: cfg.TraceWait, Interval: cfg.EnergyInterval, Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	return &telemetryHistory{writer: w, downsampler: d, attributor: a, tiers: tiers}, nil
}

// settledRequests hands admission's settled requests to the history writer.
type settledRequests struct{ w *history.Writer }

func (s settledRequests) Settled(r admission.Settled) {
	s.w.OfferRequest(store.RequestUsage{
		RequestID: r.RequestID, BackendID: r.BackendID, Model: r.Model,
		UserID: r.Principal.UserID, Username: r.Principal.Username, Group: r.Principal.Group,
		Outcome:   outcomeName(r.Outcome.String()),
		StartedAt: r.Admitted, FirstTokenAt: r.FirstToken, EndedAt: r.Ended, QueueWait: r.QueueWait,
		PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
	})
}

// outcomeName is "success" for "OUTCOME_SUCCESS".
func outcomeName(s string) string { return strings.ToLower(strings.TrimPrefix(s, "OUTCOME_")) }
