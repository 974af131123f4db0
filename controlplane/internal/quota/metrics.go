package quota

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	refusedQuota       prometheus.Counter
	refusedRate        prometheus.Counter
	refusedConcurrency prometheus.Counter
	storeErrors        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, m *Manager) (*metrics, error) {
	refusals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mindrouter_quota_refusals_total",
		Help: "Requests refused by quota, by reason (quota_exhausted, rate_limited, concurrency_limited).",
	}, []string{"reason"})
	mt := &metrics{
		refusedQuota:       refusals.WithLabelValues("quota_exhausted"),
		refusedRate:        refusals.WithLabelValues("rate_limited"),
		refusedConcurrency: refusals.WithLabelValues("concurrency_limited"),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mindrouter_quota_store_errors_total",
			Help: "Failed loads and saves of usage in the store.",
		}),
	}
	if reg == nil {
		return mt, nil
	}
	cs := []prometheus.Collector{
		refusals,
		mt.storeErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mindrouter_quota_reserved_tokens",
			Help: "Tokens held by reservations of admitted or queued requests.",
		}, func() float64 { return float64(m.reserved.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mindrouter_tokens_charged_total",
			Help: "Tokens charged to users' budgets at settlement.",
		}, func() float64 { return float64(m.charged.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("quota: register metrics: %w", err)
		}
	}
	return mt, nil
}
