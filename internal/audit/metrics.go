package audit

import "github.com/prometheus/client_golang/prometheus"

var (
	descAudits = prometheus.NewDesc("lightsout_security_audits_total",
		"BMC security audits run since the server started.", nil, nil)
	descFindings = prometheus.NewDesc("lightsout_security_findings",
		"OOB channels whose latest complete security audit has a finding of this code.", []string{"code"}, nil)
)

// Collectors export the audit's counters: audits run, and channels with
// each finding code (computed at scrape time).
func (a *Auditor) Collectors() []prometheus.Collector { return []prometheus.Collector{collector{a}} }

type collector struct{ a *Auditor }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAudits
	ch <- descFindings
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descAudits, prometheus.CounterValue, float64(c.a.Runs()))
	n := map[Code]int{}
	c.a.mu.Lock()
	for _, e := range c.a.accts {
		seen := map[Code]bool{}
		for _, f := range e.findings {
			if !seen[f.Code] {
				seen[f.Code] = true
				n[f.Code]++
			}
		}
	}
	c.a.mu.Unlock()
	for _, code := range Codes {
		ch <- prometheus.MustNewConstMetric(descFindings, prometheus.GaugeValue, float64(n[code]), string(code))
	}
}
