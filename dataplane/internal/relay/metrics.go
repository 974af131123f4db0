package relay

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	attempts *prometheus.CounterVec
	// byOutcome caches attempts' counter per outcome, created on first use
	// (so that /metrics shows only outcomes that happened, as before): a
	// label lookup hashes the label and takes the vector's lock each time.
	byOutcome    [OutcomeRejected + 1]atomic.Pointer[prometheus.Counter]
	retries      prometheus.Counter
	admitSeconds prometheus.Histogram
	ttft         prometheus.Histogram
}

// attempt returns the attempts counter of outcome o.
func (m *metrics) attempt(o Outcome) prometheus.Counter {
	if o < 0 || int(o) >= len(m.byOutcome) {
		return m.attempts.WithLabelValues(o.String())
	}
	if c := m.byOutcome[o].Load(); c != nil {
		return *c
	}
	c := m.attempts.WithLabelValues(o.String())
	m.byOutcome[o].Store(&c)
	return c
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_dp_attempts_total",
			Help: "Backend attempts by outcome reported to the control plane.",
		}, []string{"outcome"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_dp_retries_total",
			Help: "Requests retried on another backend after a failure before the first byte.",
		}),
		admitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mindrouter_dp_admit_seconds",
			Help:    "Time in Admit, queueing included.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 30, 120},
		}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mindrouter_dp_ttft_seconds",
			Help:    "Time from dispatch to the first chunk from the backend (streams).",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.attempts, m.retries, m.admitSeconds, m.ttft} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register relay metrics: %w", err)
		}
	}
	return m, nil
}
