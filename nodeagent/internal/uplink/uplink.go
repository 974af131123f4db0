package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	nodeagentv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/nodeagent/v1"
)

// Metadata keys the control plane authenticates a stream with.
const (
	NodeHeader = "x-mindrouter-node"
	AuthHeader = "authorization"
)

// Defaults for the zero values of Config.
const (
	DefaultInterval    = 10 * time.Second
	DefaultMinInterval = time.Second
	DefaultBackoffBase = 500 * time.Millisecond
	DefaultBackoffMax  = 30 * time.Second
)

// Source produces one NodeSample per call (collector.Collector in production).
type Source interface {
	Collect(ctx context.Context) (*nodeagentv1.NodeSample, error)
}

// Config configures an Uplink. NodeName and Secret are required.
type Config struct {
	NodeName string
	// Secret is the node's agent secret; it is sent as a bearer token and never logged.
	Secret       string
	AgentVersion string
	Hostname     string
	// Interval is the sampling interval until the control plane's Welcome sets one.
	Interval time.Duration
	// MinInterval is the floor applied to the Welcome's interval.
	MinInterval time.Duration
	// BackoffBase and BackoffMax bound the reconnect delay (exponential with jitter).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	Logger      *slog.Logger
	// Registerer receives the uplink's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Stats is a snapshot of the uplink's counters.
type Stats struct {
	// Collected counts samples read from the Source.
	Collected uint64
	// Sent counts samples written to a stream.
	Sent uint64
	// Acked counts Acks received.
	Acked uint64
	// Dropped counts samples replaced by a newer one before they could be sent.
	Dropped uint64
	// Connects counts streams the control plane welcomed.
	Connects uint64
	// Failures counts streams that failed or ended.
	Failures uint64
	// Connected reports whether a welcomed stream is open now.
	Connected bool
	// Interval is the sampling interval in force.
	Interval time.Duration
}

// Uplink streams samples to the control plane. Create it with New and call Run once.
type Uplink struct {
	client nodeagentv1.TelemetryServiceClient
	src    Source
	cfg    Config
	log    *slog.Logger

	box       mailbox
	intervalC chan struct{} // the interval changed
	kick      chan struct{} // sample now
	running   atomic.Bool

	interval                                            atomic.Int64
	collected, sent, acked, dropped, connects, failures atomic.Uint64
	connected                                           atomic.Bool
}

// New returns an Uplink sending samples from src over conn, which the caller owns.
func New(conn grpc.ClientConnInterface, src Source, cfg Config) (*Uplink, error) {
	var errs []error
	if conn == nil {
		errs = append(errs, errors.New("uplink: connection is required"))
	}
	if src == nil {
		errs = append(errs, errors.New("uplink: sample source is required"))
	}
	if cfg.NodeName == "" {
		errs = append(errs, errors.New("uplink: node name is required"))
	}
	if cfg.Secret == "" {
		errs = append(errs, errors.New("uplink: node secret is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Interval = positiveOr(cfg.Interval, DefaultInterval)
	cfg.MinInterval = positiveOr(cfg.MinInterval, DefaultMinInterval)
	cfg.BackoffBase = positiveOr(cfg.BackoffBase, DefaultBackoffBase)
	cfg.BackoffMax = max(positiveOr(cfg.BackoffMax, DefaultBackoffMax), cfg.BackoffBase)
	u := &Uplink{
		client:    nodeagentv1.NewTelemetryServiceClient(conn),
		src:       src,
		cfg:       cfg,
		log:       cfg.Logger,
		box:       newMailbox(),
		intervalC: make(chan struct{}, 1),
		kick:      make(chan struct{}, 1),
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	u.interval.Store(int64(cfg.Interval))
	if cfg.Registerer != nil {
		if err := u.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("uplink: register metrics: %w", err)
		}
	}
	return u, nil
}

// Run samples and streams until ctx is cancelled, reconnecting on any error, and then
// returns nil once its goroutines have stopped. It may be called once.
func (u *Uplink) Run(ctx context.Context) error {
	if !u.running.CompareAndSwap(false, true) {
		return errors.New("uplink: already running")
	}
	var wg sync.WaitGroup
	wg.Go(func() { u.sampleLoop(ctx) })
	u.connectLoop(ctx)
	wg.Wait()
	return nil
}

// Stats returns the uplink's counters.
func (u *Uplink) Stats() Stats {
	return Stats{
		Collected: u.collected.Load(),
		Sent:      u.sent.Load(),
		Acked:     u.acked.Load(),
		Dropped:   u.dropped.Load(),
		Connects:  u.connects.Load(),
		Failures:  u.failures.Load(),
		Connected: u.connected.Load(),
		Interval:  time.Duration(u.interval.Load()),
	}
}

// sampleLoop collects at once, then every interval, and whenever a new stream asks.
func (u *Uplink) sampleLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.intervalC:
			timer.Reset(time.Duration(u.interval.Load()))
			continue
		case <-u.kick:
		case <-timer.C:
		}
		u.collectOnce(ctx)
		timer.Reset(time.Duration(u.interval.Load()))
	}
}

func (u *Uplink) collectOnce(ctx context.Context) {
	s, err := u.src.Collect(ctx)
	if err != nil {
		if ctx.Err() == nil {
			u.log.Warn("collect sample", "error", err)
		}
		return
	}
	u.collected.Add(1)
	if u.box.put(s) {
		u.dropped.Add(1)
	}
}

// connectLoop runs one stream after another until ctx ends, backing off between them.
// The backoff starts again from its base only after a stream that stayed up longer than
// BackoffMax, so a control plane that welcomes and then drops the agent at once (or two
// agents fighting over one node name) cannot make it reconnect in a tight loop.
func (u *Uplink) connectLoop(ctx context.Context) {
	attempt := 0
	for {
		welcomedAt, err := u.session(ctx)
		if ctx.Err() != nil {
			return
		}
		u.failures.Add(1)
		if !welcomedAt.IsZero() && time.Since(welcomedAt) >= u.cfg.BackoffMax {
			attempt = 0
		}
		delay := Backoff(attempt, u.cfg.BackoffBase, u.cfg.BackoffMax, rand.Float64)
		attempt++
		// The error carries the status the control plane sent, never our metadata.
		u.log.Warn("telemetry stream down; reconnecting",
			"error", err, "code", status.Code(err).String(), "retry_in", delay, "attempt", attempt)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Backoff returns the delay before reconnect attempt n (0-based): base·2ⁿ capped at
// ceiling, of which the upper half is random ("equal jitter"), so agents restarted together
// spread out yet never retry in a tight loop.
func Backoff(n int, base, ceiling time.Duration, rnd func() float64) time.Duration {
	d := ceiling
	if n < 32 {
		if b := base << n; b > 0 && b < ceiling {
			d = b
		}
	}
	half := d / 2
	return half + time.Duration(rnd()*float64(d-half))
}

func positiveOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (u *Uplink) register(reg prometheus.Registerer) error {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	cs := []prometheus.Collector{
		counter("mindrouter_agent_samples_collected_total", "Samples read from NVML.", &u.collected),
		counter("mindrouter_agent_samples_sent_total", "Samples sent to the control plane.", &u.sent),
		counter("mindrouter_agent_samples_acked_total", "Samples the control plane acknowledged.", &u.acked),
		counter("mindrouter_agent_samples_dropped_total",
			"Samples replaced by a newer one while the control plane was unreachable.", &u.dropped),
		counter("mindrouter_agent_stream_failures_total", "Telemetry streams that failed or ended.", &u.failures),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mindrouter_agent_connected",
			Help: "1 while a telemetry stream to the control plane is open.",
		}, func() float64 {
			if u.connected.Load() {
				return 1
			}
			return 0
		}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
