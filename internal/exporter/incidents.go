package exporter

import (
	"context"
	"log/slog"
	"sync"
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

// DefaultIncidentsMaxAge is how old the incidents a scrape reports may be
// (the server regroups them every 15 s and hands them over: Publish).
const DefaultIncidentsMaxAge = 30 * time.Second

// Incidents is the collector of lightsout_incident_open. Grouping the
// fleet's channels into incidents reads every channel, so a scrape does
// not do it while nothing changed: it reports the latest grouping
// (Publish, or its own, shared by concurrent scrapes) as long as Changes
// stands still and it is no older than MaxAge.
type Incidents struct {
	src     IncidentLister
	Timeout time.Duration
	// MaxAge: a grouping older than this is made again by the next
	// scrape (default DefaultIncidentsMaxAge).
	MaxAge time.Duration
	// Changes, when set, moves whenever a channel's stored state changes
	// (monitor.Monitor.Changes): a grouping made before is stale. Without
	// it only MaxAge bounds a grouping's age.
	Changes func() uint64
	// Log receives a grouping that failed (nil: slog.Default()).
	Log *slog.Logger
	// now is the clock (tests).
	now func() time.Time

	mu   sync.Mutex // held while grouping: one grouping at a time
	incs []incident.Incident
	at   time.Time // when incs was grouped (zero: never)
	gen  uint64    // Changes before it was grouped
}

// NewIncidents returns the collector.
func NewIncidents(src IncidentLister) *Incidents {
	return &Incidents{src: src, Timeout: 10 * time.Second, MaxAge: DefaultIncidentsMaxAge, now: time.Now}
}

// Publish hands over a grouping made at at (the server's periodic
// regrouping), gen being Changes read before it was made, so scrapes need
// not make their own.
func (c *Incidents) Publish(incs []incident.Incident, at time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.at) {
		c.incs, c.at, c.gen = incs, at, gen
	}
}

func (c *Incidents) changes() uint64 {
	if c.Changes == nil {
		return 0
	}
	return c.Changes()
}

// current returns the latest grouping while nothing changed and it is no
// older than MaxAge, else a new one (the latest again, stale, when a new
// one fails; nil when there is none).
func (c *Incidents) current() []incident.Incident {
	c.mu.Lock()
	defer c.mu.Unlock()
	now, gen := c.now(), c.changes()
	if !c.at.IsZero() && gen == c.gen && now.Sub(c.at) <= c.MaxAge {
		return c.incs
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	incs, err := c.src.Incidents(ctx)
	if err != nil {
		// A grouping that failed (a store read past Timeout on a loaded
		// server) does not fail the scrape: the last grouping stands,
		// stale, until one succeeds; with none yet the series is absent.
		log := c.Log
		if log == nil {
			log = slog.Default()
		}
		log.Warn("metrics: grouping incidents failed; the scrape reports the last grouping",
			"err", err, "grouped_at", c.at, "remedy", "look at the server's load and its database")
		return c.incs
	}
	c.incs, c.at, c.gen = incs, now, gen
	return incs
}

func (c *Incidents) Describe(ch chan<- *prometheus.Desc) { ch <- descIncident }

func (c *Incidents) Collect(ch chan<- prometheus.Metric) {
	incs := c.current()
	for _, inc := range incs {
		ch <- prometheus.MustNewConstMetric(descIncident, prometheus.GaugeValue, float64(len(inc.Members)), inc.ID, inc.Kind, string(inc.Severity))
	}
}
