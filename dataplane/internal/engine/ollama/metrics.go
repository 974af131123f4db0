package ollama

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Tool-choice retry results, the values of the result label.
const (
	// retryRecovered: the second answer made the required call.
	retryRecovered = "recovered"
	// retryMissing: it did not either; the client got tool_call_missing.
	retryMissing = "missing"
	// retryFailed: the second call failed (the backend's error reached the client).
	retryFailed = "failed"
)

// Metrics are the engine's Prometheus series. A nil *Metrics counts nothing.
type Metrics struct {
	toolChoiceRetries *prometheus.CounterVec
}

// NewMetrics registers the engine's series with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{toolChoiceRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mindrouter_dp_tool_choice_retries_total",
		Help: "Ollama calls made again because the answer lacked the tool call tool_choice required, by how the second answer ended (recovered, missing, failed).",
	}, []string{"result"})}
	for _, r := range []string{retryRecovered, retryMissing, retryFailed} {
		m.toolChoiceRetries.WithLabelValues(r) // exported at 0 before the first retry
	}
	if err := reg.Register(m.toolChoiceRetries); err != nil {
		return nil, fmt.Errorf("register ollama engine metrics: %w", err)
	}
	return m, nil
}

func (m *Metrics) toolChoiceRetry(result string) {
	if m != nil {
		m.toolChoiceRetries.WithLabelValues(result).Inc()
	}
}
