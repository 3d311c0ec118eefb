package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collectors are the hub's Prometheus metrics, computed at scrape time from
// the agents' states (no per-agent series: a fleet has thousands):
// lightsout_agents{state}, lightsout_agent_links{state} (as the agents
// last reported them; "none" when an agent reported no link) and
// lightsout_agent_certs_expiring (agents whose certificate expires within
// 30 days, expired ones included).
func (h *Hub) Collectors() []prometheus.Collector { return []prometheus.Collector{hubMetrics{h}} }

var (
	agentsDesc = prometheus.NewDesc("lightsout_agents", "Host agents by state (Up, Down, PendingUp), unplaced PendingUp peers included.",
		[]string{"state"}, nil)
	linksDesc = prometheus.NewDesc("lightsout_agent_links", "Enrolled agents by the state of their host link as last reported (none: not reported).",
		[]string{"state"}, nil)
	expiringDesc = prometheus.NewDesc("lightsout_agent_certs_expiring", "Agents whose certificate expires within 30 days (or has expired).",
		nil, nil)
)

type hubMetrics struct{ h *Hub }

func (m hubMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- agentsDesc
	ch <- linksDesc
	ch <- expiringDesc
}

func (m hubMetrics) Collect(ch chan<- prometheus.Metric) {
	states := map[string]int{Up: 0, Down: 0, PendingUp: 0}
	links := map[string]int{LinkUp: 0, LinkDown: 0, LinkCertExpired: 0, LinkNotTrusted: 0, LinkDisabled: 0, LinkUnknown: 0, "none": 0}
	expiring := 0
	soon := m.h.now().Add(30 * 24 * time.Hour)
	m.h.mu.Lock()
	for _, n := range m.h.nodes {
		states[n.st.State]++
		if n.st.Link == nil {
			links["none"]++
		} else {
			links[n.st.Link.State]++
		}
		if !n.st.CertNotAfter.IsZero() && n.st.CertNotAfter.Before(soon) {
			expiring++
		}
	}
	for _, n := range m.h.unknown {
		states[n.st.State]++
	}
	m.h.mu.Unlock()
	for s, v := range states {
		ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(v), s)
	}
	for s, v := range links {
		ch <- prometheus.MustNewConstMetric(linksDesc, prometheus.GaugeValue, float64(v), s)
	}
	ch <- prometheus.MustNewConstMetric(expiringDesc, prometheus.GaugeValue, float64(expiring))
}
