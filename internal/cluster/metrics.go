package cluster

import "github.com/prometheus/client_golang/prometheus"

var (
	descInstances = prometheus.NewDesc("lightsout_instances", "Server instances sharing the database, by state (live: lease not lapsed).", []string{"state"}, nil)
	descHeld      = prometheus.NewDesc("lightsout_instance_machines", "Machines this instance checks (its share of the fleet).", nil, nil)
	descChecks    = prometheus.NewDesc("lightsout_instance_checks_total", "Checks this instance made.", nil, nil)
	descUnwatched = prometheus.NewDesc("lightsout_zone_unwatched", "1 for a zone with machines that no live instance serves: its channels are not checked (stale).", []string{"zone"}, nil)
	descBuffered  = prometheus.NewDesc("lightsout_instance_buffered_changes", "State changes kept in memory while the database is unreachable, to be written when it is back.", nil, nil)
	descBufDrop   = prometheus.NewDesc("lightsout_instance_buffer_dropped_total", "State changes refused because the database was unreachable and the buffer full.", nil, nil)
	descFenced    = prometheus.NewDesc("lightsout_instance_fenced", "1 while this instance could not renew its lease and checks nothing.", nil, nil)
)

// Collector exports the membership as this instance last read it.
func (n *Node) Collector() prometheus.Collector { return collector{n} }

type collector struct{ n *Node }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descInstances
	ch <- descHeld
	ch <- descChecks
	ch <- descFenced
	ch <- descUnwatched
	ch <- descBuffered
	ch <- descBufDrop
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	n.mu.Lock()
	live, dead := 0, 0
	for _, in := range n.members.All {
		if in.Live {
			live++
		} else {
			dead++
		}
	}
	held, fenced := len(n.active), 0.0
	var unwatched []string
	for z := range n.unwatched {
		unwatched = append(unwatched, z)
	}
	if n.fenced {
		fenced = 1
	}
	n.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descInstances, prometheus.GaugeValue, float64(live), "live")
	ch <- prometheus.MustNewConstMetric(descInstances, prometheus.GaugeValue, float64(dead), "dead")
	ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, float64(held))
	ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(n.checks.Load()))
	ch <- prometheus.MustNewConstMetric(descFenced, prometheus.GaugeValue, fenced)
	n.buf.mu.Lock()
	buffered, dropped := len(n.buf.entries), n.buf.dropped
	n.buf.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descBuffered, prometheus.GaugeValue, float64(buffered))
	ch <- prometheus.MustNewConstMetric(descBufDrop, prometheus.CounterValue, float64(dropped))
	for _, z := range unwatched {
		ch <- prometheus.MustNewConstMetric(descUnwatched, prometheus.GaugeValue, 1, z)
	}
}
