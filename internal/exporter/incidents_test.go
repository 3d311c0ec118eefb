package exporter

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lightsout/lightsout/internal/incident"
	"github.com/lightsout/lightsout/internal/store"
)

// flakyIncidents groups once, then fails (a store read past its timeout).
type flakyIncidents struct {
	incs []incident.Incident
	fail bool
}

func (f *flakyIncidents) Incidents(context.Context) ([]incident.Incident, error) {
	if f.fail {
		return nil, errors.New("listing machines: context deadline exceeded")
	}
	return f.incs, nil
}

// TestIncidentsGroupingFails: a grouping that fails does not fail the
// scrape (before, the collector sent an invalid metric and promhttp
// answered the whole /metrics with 500, seen in bench/scaleout at 30,000
// BMCs while shares moved): with no grouping yet the series is absent,
// after one the last grouping stands.
func TestIncidentsGroupingFails(t *testing.T) {
	src := &flakyIncidents{fail: true}
	c := NewIncidents(src)
	c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := time.Unix(1_800_000_000, 0)
	c.now = func() time.Time { return clock }
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	if n, err := testutil.GatherAndCount(reg, "lightsout_incident_open"); err != nil || n != 0 {
		t.Fatalf("no grouping yet and it fails: %d series, err %v; want 0, nil", n, err)
	}

	src.fail = false
	src.incs = []incident.Incident{{ID: "enclosure:e1", Kind: incident.KindEnclosure, Severity: store.SeverityCritical, Members: []string{"b1", "b2", "b3"}}}
	clock = clock.Add(time.Minute)
	if n, err := testutil.GatherAndCount(reg, "lightsout_incident_open"); err != nil || n != 1 {
		t.Fatalf("grouped: %d series, err %v; want 1, nil", n, err)
	}

	src.fail = true
	clock = clock.Add(time.Hour) // the grouping is stale: the scrape regroups, and that fails
	if n, err := testutil.GatherAndCount(reg, "lightsout_incident_open"); err != nil || n != 1 {
		t.Fatalf("regrouping fails: %d series, err %v; want the last grouping's 1, nil", n, err)
	}
}
