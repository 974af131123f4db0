package scheduler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	depthVec *prometheus.GaugeVec
	wait     *prometheus.HistogramVec
	rejected prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		depthVec: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mindrouter_queue_depth",
			Help: "Requests waiting for a backend slot, per model.",
		}, []string{"model"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mindrouter_queue_wait_seconds",
			Help:    "Time queued requests waited, by how the wait ended (granted, timeout, cancelled, failed).",
			Buckets: []float64{.001, .005, .025, .1, .25, 1, 2.5, 5, 10, 30, 60, 150, 300},
		}, []string{"outcome"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_queue_full_total",
			Help: "Requests refused because their model's queue was full.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.depthVec, m.wait, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) depth(model string) prometheus.Gauge { return m.depthVec.WithLabelValues(model) }

func (m *metrics) observeWait(outcome string, d time.Duration) {
	m.wait.WithLabelValues(outcome).Observe(d.Seconds())
}
