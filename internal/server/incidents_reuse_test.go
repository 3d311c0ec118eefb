package server

import (
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/incident"
)

// TestIncidentRegroup: the incident watcher reads the fleet again only when
// something a grouping is made from changed — a channel (the monitor's
// change count), a fleet finding or flood, an agent — or the last grouping
// is incidentReuse old; a steady fleet of 100,000 channels is not read
// from the store every 15 s.
func TestIncidentRegroup(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	base := incidentKey{gen: 7, flooding: []string{"bmc-1"}, agents: []incident.Agent{{Name: "h1", State: "Up"}}}
	same := incidentKey{gen: 7, flooding: []string{"bmc-1"}, agents: []incident.Agent{{Name: "h1", State: "Up"}}}
	for _, c := range []struct {
		name   string
		lastAt time.Time
		now    time.Time
		cur    incidentKey
		want   bool
	}{
		{"never grouped", time.Time{}, t0, same, true},
		{"nothing changed", t0, t0.Add(45 * time.Second), same, false},
		{"a channel changed", t0, t0.Add(15 * time.Second), incidentKey{gen: 8, flooding: same.flooding, agents: same.agents}, true},
		{"a flood ended", t0, t0.Add(15 * time.Second), incidentKey{gen: 7, agents: same.agents}, true},
		{"a finding", t0, t0.Add(15 * time.Second), incidentKey{gen: 7, flooding: same.flooding, agents: same.agents,
			findings: []events.ActiveFinding{{Code: "oob.not_responding"}}}, true},
		{"an agent changed", t0, t0.Add(15 * time.Second), incidentKey{gen: 7, flooding: same.flooding,
			agents: []incident.Agent{{Name: "h1", State: "Down"}}}, true},
		{"audit findings changed", t0, t0.Add(15 * time.Second), incidentKey{gen: 7, audit: 1, flooding: same.flooding, agents: same.agents}, true},
		{"too old", t0, t0.Add(incidentReuse), same, true},
	} {
		if got := regroup(c.lastAt, c.now, base, c.cur, incidentReuse); got != c.want {
			t.Errorf("%s: regroup %v, want %v", c.name, got, c.want)
		}
	}
}
