package monitor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightsout/lightsout/internal/state"
)

type metrics struct {
	checks  *prometheus.CounterVec
	latency prometheus.Histogram
	lag     prometheus.Histogram
	byState *prometheus.Desc
	m       *Monitor
}

func newMetrics(m *Monitor) *metrics {
	return &metrics{
		m: m,
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lightsout_checks_total", Help: "Channel checks run by the monitor, by observed state.",
		}, []string{"state"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lightsout_check_duration_seconds", Help: "Duration of one channel check.",
			Buckets: []float64{.001, .002, .003, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lightsout_monitor_lag_seconds", Help: "How late a check started after it fell due.",
			Buckets: []float64{.001, .01, .1, .5, 1, 5, 15, 60, 300},
		}),
		byState: prometheus.NewDesc("lightsout_channels",
			"OOB channels by declared state.", []string{"kind", "state"}, nil),
	}
}

// Collectors returns the monitor's Prometheus collectors.
func (m *Monitor) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.met.checks, m.met.latency, m.met.lag, m.met}
}

func (x *metrics) Describe(ch chan<- *prometheus.Desc) { ch <- x.byState }

func (x *metrics) Collect(ch chan<- prometheus.Metric) {
	counts := map[state.OOB]int{state.Unknown: 0, state.Connectable: 0, state.NotResponding: 0,
		state.NotAuthenticated: 0, state.Invalid: 0}
	x.m.mu.Lock()
	for _, c := range x.m.chans {
		s := c.ch.State
		if s == "" {
			s = state.Unknown
		}
		counts[s]++
	}
	x.m.mu.Unlock()
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(x.byState, prometheus.GaugeValue, float64(n), "oob", string(s))
	}
}
