package alert

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

// Store keeps the alerts (store.Store).
type Store interface {
	RaiseAlert(ctx context.Context, spec store.AlertSpec, at time.Time) (store.Alert, error)
	TouchAlert(ctx context.Context, id int64, message string, at time.Time) error
	ClearAlert(ctx context.Context, id int64, at time.Time) error
	ActiveAlerts(ctx context.Context) ([]store.Alert, error)
}

// Source gives an evaluation round its snapshot of the fleet.
type Source func(ctx context.Context) (Snapshot, error)

// Event is a raise or a clear, as handed to the Notifier.
type Event struct {
	Alert   store.Alert
	Cleared bool
}

// Notifier is told of each raise and clear. Notify must not block: the
// evaluation goes on whatever the notifier does.
type Notifier interface {
	Notify(Event)
}

// Options configure an Evaluator.
type Options struct {
	Thresholds Thresholds
	// Interval between rounds; default 15s.
	Interval time.Duration
	// Notifier, when set, is told of raises and clears.
	Notifier Notifier
	// Now is the clock; default time.Now.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Evaluator raises, refreshes and clears alerts; see the package comment. Its
// methods must be called from one goroutine (Run's).
type Evaluator struct {
	st     Store
	source Source
	opts   Options
	log    *slog.Logger
	// active holds the active alerts by kind and subject; nil until loaded.
	active map[string]store.Alert
	gauge  *prometheus.GaugeVec
	rounds *prometheus.CounterVec
}

// NewEvaluator returns an Evaluator over st and source.
func NewEvaluator(st Store, source Source, opts Options) *Evaluator {
	if opts.Interval <= 0 {
		opts.Interval = 15 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Evaluator{st: st, source: source, opts: opts, log: opts.Logger}
	e.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mindrouter_alerts_active",
		Help: "Active alerts, by kind."}, []string{"kind"})
	e.rounds = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mindrouter_alert_evaluations_total",
		Help: "Alert evaluation rounds, by result (ok or error)."}, []string{"result"})
	for _, k := range Kinds {
		e.gauge.WithLabelValues(k)
	}
	e.rounds.WithLabelValues("ok")
	e.rounds.WithLabelValues("error")
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(e.gauge, e.rounds)
	}
	return e
}

// Run evaluates every Interval until ctx ends. A failed round is logged and
// retried on the next tick.
func (e *Evaluator) Run(ctx context.Context) error {
	t := time.NewTicker(e.opts.Interval)
	defer t.Stop()
	for {
		if err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("alert evaluation failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Evaluate runs one round: it raises the conditions that hold and have no active
// alert, refreshes the ones that do, and clears active alerts whose condition
// ended.
func (e *Evaluator) Evaluate(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			e.rounds.WithLabelValues("error").Inc()
		} else {
			e.rounds.WithLabelValues("ok").Inc()
		}
	}()
	if e.active == nil {
		// A new leader takes over the alerts its predecessor left active.
		held, err := e.st.ActiveAlerts(ctx)
		if err != nil {
			return err
		}
		e.active = make(map[string]store.Alert, len(held))
		for _, a := range held {
			e.active[a.Kind+"\x00"+a.Subject] = a
		}
	}
	snap, err := e.source(ctx)
	if err != nil {
		return err
	}
	now := e.opts.Now()
	holding := make(map[string]bool)
	var errs []error
	for _, c := range Conditions(snap, now, e.opts.Thresholds) {
		holding[c.key()] = true
		if a, ok := e.active[c.key()]; ok {
			if err := e.st.TouchAlert(ctx, a.ID, c.Message, now); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		a, err := e.st.RaiseAlert(ctx, store.AlertSpec{Kind: c.Kind, Subject: c.Subject, Severity: c.Severity, Message: c.Message}, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.active[c.key()] = a
		e.log.Warn("alert raised", slog.String("kind", a.Kind), slog.String("subject", a.Subject), slog.String("message", a.Message))
		e.notify(Event{Alert: a})
	}
	for k, a := range e.active {
		if holding[k] {
			continue
		}
		if err := e.st.ClearAlert(ctx, a.ID, now); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(e.active, k)
		cleared := now.UTC()
		a.ClearedAt = &cleared
		e.log.Info("alert cleared", slog.String("kind", a.Kind), slog.String("subject", a.Subject))
		e.notify(Event{Alert: a, Cleared: true})
	}
	e.updateGauge()
	return errors.Join(errs...)
}

func (e *Evaluator) notify(ev Event) {
	if e.opts.Notifier != nil {
		e.opts.Notifier.Notify(ev)
	}
}

func (e *Evaluator) updateGauge() {
	counts := make(map[string]int, len(Kinds))
	for _, a := range e.active {
		counts[a.Kind]++
	}
	for _, k := range Kinds {
		e.gauge.WithLabelValues(k).Set(float64(counts[k]))
	}
}
