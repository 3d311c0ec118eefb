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

// Collect reads the monitor's running counts: O(1) in the fleet's size.
func (x *metrics) Collect(ch chan<- prometheus.Metric) {
	counts := x.m.StateCounts()
	for _, s := range countedStates {
		ch <- prometheus.MustNewConstMetric(x.byState, prometheus.GaugeValue, float64(counts[s]), "oob", string(s))
	}
}

// countedStates are the declared states lightsout_channels counts;
// stateIndex maps a state to its place ("" and anything unknown count as
// Unknown).
var countedStates = [...]state.OOB{state.Unknown, state.Connectable, state.NotResponding, state.NotAuthenticated, state.Invalid}

func stateIndex(s state.OOB) int {
	switch s {
	case state.Connectable:
		return 1
	case state.NotResponding:
		return 2
	case state.NotAuthenticated:
		return 3
	case state.Invalid:
		return 4
	}
	return 0
}

// StateCounts returns how many channels are in each declared state (every
// state present, "" counted as Unknown). It reads counts the monitor keeps
// as channels change: O(1), whatever the fleet's size.
func (m *Monitor) StateCounts() map[state.OOB]int {
	m.mu.Lock()
	n := m.byState
	m.mu.Unlock()
	out := make(map[state.OOB]int, len(countedStates))
	for i, s := range countedStates {
		out[s] = n[i]
	}
	return out
}

// Len returns how many channels the monitor watches (O(1)).
func (m *Monitor) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.chans)
}

// Changes is a number that moves whenever the state of some channel as the
// store holds it changes (state, reason, conditions, power, GUID, message
// of a change) or a channel comes or goes; a steady fleet leaves it still.
// Readers of fleet-wide aggregates (the incidents on /metrics) keep theirs
// while it stands.
func (m *Monitor) Changes() uint64 { return m.changes.Load() }

// Roster is a number that moves whenever a channel comes or goes (not
// when one changes state): readers of the set of channels (the scale-out
// node's reconcile, the security audit's listing) keep theirs while it
// stands.
func (m *Monitor) Roster() uint64 { return m.roster.Load() }
