package search

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	searches *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		searches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mindrouter_search_requests_total",
			Help: "Web searches sent to the provider, by provider and result (ok, timeout, http_<status>, error).",
		}, []string{"provider", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mindrouter_search_provider_duration_seconds",
			Help:    "Time the search provider took to answer.",
			Buckets: prometheus.DefBuckets,
		}, []string{"provider"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.searches, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register search metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(provider string, err error, took time.Duration) {
	result := "ok"
	var pe *ProviderError
	switch {
	case err == nil:
	case errors.As(err, &pe) && pe.Timeout:
		result = "timeout"
	case errors.As(err, &pe) && pe.Status != 0:
		result = "http_" + strconv.Itoa(pe.Status)
	default:
		result = "error"
	}
	m.searches.WithLabelValues(provider, result).Inc()
	m.duration.WithLabelValues(provider).Observe(took.Seconds())
}
