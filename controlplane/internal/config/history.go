package config

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// History configures the telemetry history and the energy accounting.
type History struct {
	// RawRetention, MinuteRetention and HourRetention keep each tier.
	RawRetention    time.Duration
	MinuteRetention time.Duration
	HourRetention   time.Duration
	// DownsampleInterval is how often tiers are folded and pruned.
	DownsampleInterval time.Duration
	// QueueSize bounds the writer's queue (full: dropped and counted).
	QueueSize int
	// Energy attribution: token weights, how long after a request ends it is
	// attributed, and how often.
	PromptWeight     float64
	CompletionWeight float64
	SettleDelay      time.Duration
	EnergyInterval   time.Duration
	// TraceWait is how long past SettleDelay a request waits for its node's
	// power samples to reach its end.
	TraceWait time.Duration
	// Prices: electricity per kWh, and a commercial API's per-million-token
	// prices for the comparison.
	PricePerKWh           float64
	CommercialPromptPrice float64
	CommercialOutputPrice float64
}

func defaultHistory() History {
	return History{
		RawRetention: 24 * time.Hour, MinuteRetention: 30 * 24 * time.Hour, HourRetention: 365 * 24 * time.Hour,
		DownsampleInterval: time.Minute, QueueSize: 4096,
		PromptWeight: 0.2, CompletionWeight: 1, SettleDelay: 10 * time.Minute, EnergyInterval: time.Minute, TraceWait: 10 * time.Minute,
		PricePerKWh: 0.15, CommercialPromptPrice: 2.50, CommercialOutputPrice: 10,
	}
}

func (h *History) register(fs *flag.FlagSet) {
	fs.DurationVar(&h.RawRetention, "history-raw-retention", h.RawRetention, "how long raw telemetry samples are kept")
	fs.DurationVar(&h.MinuteRetention, "history-minute-retention", h.MinuteRetention, "how long 1-minute telemetry buckets are kept")
	fs.DurationVar(&h.HourRetention, "history-hour-retention", h.HourRetention, "how long 1-hour telemetry buckets (and settled requests) are kept")
	fs.DurationVar(&h.DownsampleInterval, "history-downsample-interval", h.DownsampleInterval, "how often telemetry is folded into coarser tiers and pruned")
	fs.IntVar(&h.QueueSize, "history-queue", h.QueueSize, "telemetry batches queued for the database writer before new ones are dropped")
	fs.Float64Var(&h.PromptWeight, "energy-prompt-weight", h.PromptWeight, "energy share of a prompt token relative to energy-completion-weight")
	fs.Float64Var(&h.CompletionWeight, "energy-completion-weight", h.CompletionWeight, "energy share of a generated token")
	fs.DurationVar(&h.SettleDelay, "energy-settle-delay", h.SettleDelay, "how long after a request ends its energy is attributed")
	fs.DurationVar(&h.EnergyInterval, "energy-interval", h.EnergyInterval, "how often request energy is attributed")
	fs.DurationVar(&h.TraceWait, "energy-trace-wait", h.TraceWait, "how long past energy-settle-delay a request waits for its node's power samples to reach its end before it is attributed with what arrived")
	fs.Float64Var(&h.PricePerKWh, "energy-price-kwh", h.PricePerKWh, "electricity price per kWh (any currency; reports use it)")
	fs.Float64Var(&h.CommercialPromptPrice, "energy-commercial-prompt-price", h.CommercialPromptPrice, "commercial API price per million prompt tokens, for comparison")
	fs.Float64Var(&h.CommercialOutputPrice, "energy-commercial-output-price", h.CommercialOutputPrice, "commercial API price per million generated tokens, for comparison")
}

func (h History) validate() []error {
	errs := belowMin(
		minDuration{"history-raw-retention", h.RawRetention, time.Minute, "the next tier folds 1-minute buckets from it"},
		minDuration{"history-minute-retention", h.MinuteRetention, time.Hour, ""},
		minDuration{"history-hour-retention", h.HourRetention, time.Hour, ""},
	)
	if h.DownsampleInterval <= 0 || h.EnergyInterval <= 0 || h.SettleDelay <= 0 || h.TraceWait <= 0 {
		errs = append(errs, errors.New("history-downsample-interval, energy-interval, energy-settle-delay and energy-trace-wait must be positive"))
	}
	if h.QueueSize < 1 {
		errs = append(errs, errors.New("history-queue must be at least 1"))
	}
	if h.PromptWeight < 0 || h.CompletionWeight < 0 || h.PromptWeight+h.CompletionWeight == 0 {
		errs = append(errs, fmt.Errorf("energy-prompt-weight (%g) and energy-completion-weight (%g) must not be negative and not both 0", h.PromptWeight, h.CompletionWeight))
	}
	if h.PricePerKWh < 0 || h.CommercialPromptPrice < 0 || h.CommercialOutputPrice < 0 {
		errs = append(errs, errors.New("energy prices must not be negative"))
	}
	return errs
}
