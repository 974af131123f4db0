package telemetry

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	gpuLabels = []string{"node", "gpu"}

	descUtilization = prometheus.NewDesc("mindrouter_gpu_utilization_percent",
		"GPU utilisation in the node agent's latest sample.", gpuLabels, nil)
	descMemoryUsed = prometheus.NewDesc("mindrouter_gpu_memory_used_bytes",
		"GPU memory in use in the node agent's latest sample.", gpuLabels, nil)
	descMemoryTotal = prometheus.NewDesc("mindrouter_gpu_memory_total_bytes",
		"GPU memory installed.", gpuLabels, nil)
	descPower = prometheus.NewDesc("mindrouter_gpu_power_watts",
		"GPU power draw in the node agent's latest sample.", gpuLabels, nil)
	descTemperature = prometheus.NewDesc("mindrouter_gpu_temperature_celsius",
		"GPU temperature in the node agent's latest sample.", gpuLabels, nil)
)

// gpuCollector exposes the latest readings of connected nodes at scrape time, so a
// node's series vanish as soon as its stream ends.
type gpuCollector struct{ s *Service }

func (c gpuCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUtilization, descMemoryUsed, descMemoryTotal, descPower, descTemperature} {
		ch <- d
	}
}

func (c gpuCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.RLock()
	defer c.s.mu.RUnlock()
	for _, st := range c.s.nodes {
		for _, g := range st.gpus {
			labels := []string{st.sess.nodeName, strconv.FormatUint(uint64(g.GetIndex()), 10)}
			gauge := func(d *prometheus.Desc, v float64) {
				if m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, labels...); err == nil {
					ch <- m
				}
			}
			gauge(descUtilization, float64(g.GetUtilizationGpuPercent()))
			gauge(descMemoryUsed, float64(g.GetMemoryUsedBytes()))
			gauge(descMemoryTotal, float64(g.GetMemoryTotalBytes()))
			gauge(descPower, float64(g.GetPowerDrawMilliwatts())/1000)
			gauge(descTemperature, float64(g.GetTemperatureC()))
		}
	}
}

func (s *Service) register(reg prometheus.Registerer) error {
	cs := []prometheus.Collector{
		gpuCollector{s: s},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mindrouter_telemetry_streams",
			Help: "Node agent telemetry streams open.",
		}, func() float64 { return float64(s.streams.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mindrouter_telemetry_samples_total",
			Help: "Node samples received from agents.",
		}, func() float64 { return float64(s.samples.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mindrouter_telemetry_auth_failures_total",
			Help: "Telemetry streams refused for bad node credentials.",
		}, func() float64 { return float64(s.authFailures.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
