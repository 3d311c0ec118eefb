package exporter

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lightsout/lightsout/internal/incident"
)

// IncidentLister lists the open incidents (manager.Manager).
type IncidentLister interface {
	Incidents(ctx context.Context) ([]incident.Incident, error)
}

var descIncident = prometheus.NewDesc("lightsout_incident_open",
	"An open incident (docs/incidents.md), valued by its number of members; id is stable while it lasts, so alerts route and silence per incident.",
	[]string{"id", "kind", "severity"}, nil)

// Incidents is the collector of lightsout_incident_open.
type Incidents struct {
	src     IncidentLister
	Timeout time.Duration
}

// NewIncidents returns the collector.
func NewIncidents(src IncidentLister) *Incidents {
	return &Incidents{src: src, Timeout: 10 * time.Second}
}

func (c *Incidents) Describe(ch chan<- *prometheus.Desc) { ch <- descIncident }

func (c *Incidents) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	incs, err := c.src.Incidents(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descIncident, err)
		return
	}
	for _, inc := range incs {
		ch <- prometheus.MustNewConstMetric(descIncident, prometheus.GaugeValue, float64(len(inc.Members)), inc.ID, inc.Kind, string(inc.Severity))
	}
}
