package api_test

import (
	"encoding/json"
	"github.com/lightsout/lightsout/internal/poll"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/incident"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
)

// TestIncidents: a real server over a simulated fleet (real UDP) with a dead
// enclosure, two wrong passwords and a swapped pair; GET /api/v1/incidents
// (validated against openapi.json) groups them into three incidents, each
// raised as incident.opened; the enclosure's return closes its incident
// (incident.closed).
func TestIncidents(t *testing.T) {
	e := apitest.Start(t, apitest.Options{
		// enc-c has two silent blades of three: no dead enclosure (its
		// third blade answers), two silent BMCs.
		Fleet: sim.Config{Count: 12, Seed: 5, Enclosures: []sim.EnclosureConfig{{Name: "enc-b", Blades: 3}, {Name: "enc-c", Blades: 3}}, // bmc-00001..3, bmc-00004..6
			Faults: map[string]sim.Faults{"bmc-00010": {WrongPassword: true}, "bmc-00011": {WrongPassword: true},
				"bmc-00004": {Silent: true}, "bmc-00005": {Silent: true}},
			Swaps: [][]string{{"bmc-00008", "bmc-00009"}}},
		Subnet: 97,
		Configure: func(c *server.Config) {
			c.IncidentEvery, c.IncidentHold, c.IncidentGrace = 200*time.Millisecond, 2*time.Second, 500*time.Millisecond
		},
	})
	if err := e.Fleet.SetEnclosureDown("enc-b", true); err != nil {
		t.Fatal(err)
	}
	e.ImportFleet(t)
	view := e.Client(t, store.RoleViewer)

	want := map[string]string{
		"enclosure:enc-b": "bmc-00001,bmc-00002,bmc-00003",
		"cause:NotAuthenticated/wrong_password/user=admin/group=": "bmc-00010,bmc-00011",
		"cause:NotResponding/silent/group=":                       "bmc-00004,bmc-00005",
		"swap:bmc-00008+bmc-00009":                                "bmc-00008,bmc-00009",
	}
	got := waitIncidents(t, view, func(incs []incident.Incident) bool {
		return matches(incs, want)
	})
	for _, inc := range got {
		sev := store.SeverityCritical
		if inc.Reason == "silent" {
			sev = store.SeverityWarning // two silent BMCs: not a whole enclosure
		}
		if inc.Severity != sev || inc.Remedy == "" || inc.Diagnose == "" || inc.Since.IsZero() {
			t.Errorf("incident %s: %+v", inc.ID, inc)
		}
	}
	if got[0].Kind != incident.KindEnclosure || !strings.Contains(got[0].Title, "enclosure enc-b is unreachable") {
		t.Errorf("worst first should be the dead enclosure (3 members): %+v", got[0])
	}

	// Each opened as an event.
	waitEvents(t, view, events.IncidentOpened, len(want), func(evs []store.Event) bool {
		var srcs []string
		for _, ev := range evs {
			srcs = append(srcs, ev.Source)
			var inc incident.Incident
			if err := json.Unmarshal(ev.Data, &inc); err != nil || "incident:"+inc.ID != ev.Source {
				t.Errorf("event data %s: %v", ev.Data, err)
			}
		}
		for id := range want {
			if !slices.Contains(srcs, "incident:"+id) {
				return false
			}
		}
		return true
	})

	// Alone on SQLite, the server groups incidents from the monitor's
	// broken channels and their enclosures' blades (manager.WholeFleet),
	// not from a listing of the whole fleet: both give the same incidents.
	if wf := e.Server.Manager.WholeFleet; wf == nil || !wf() {
		t.Fatal("a server alone on SQLite does not group from its monitor")
	}
	listing := manager.New(e.Server.Store, e.Server.Monitor, e.Server.Engine, e.Server.Manager.Log)
	listing.Security, listing.Detectors, listing.AgentList = e.Server.Manager.Security, e.Server.Manager.Detectors, e.Server.Manager.AgentList
	var fast, full []incident.Incident
	if !poll.Wait(10*time.Second, func() bool {
		var err1, err2 error
		fast, err1 = e.Server.Manager.Incidents(ctx(t))
		full, err2 = listing.Incidents(ctx(t))
		return err1 == nil && err2 == nil && matches(fast, want) && reflect.DeepEqual(fast, full)
	}) {
		t.Fatalf("from the monitor:\n%+v\nfrom the listing:\n%+v", fast, full)
	}

	// The enclosure comes back: its incident closes after the grace (the
	// monitor re-checks silent BMCs within its back-off).
	if err := e.Fleet.SetEnclosureDown("enc-b", false); err != nil {
		t.Fatal(err)
	}
	delete(want, "enclosure:enc-b")
	waitIncidents(t, view, func(incs []incident.Incident) bool { return matches(incs, want) })
	waitEvents(t, view, events.IncidentClosed, 1, func(evs []store.Event) bool {
		return slices.ContainsFunc(evs, func(ev store.Event) bool {
			return ev.Source == "incident:enclosure:enc-b" && ev.Severity == store.SeverityInfo
		})
	})
}

func matches(incs []incident.Incident, want map[string]string) bool {
	if len(incs) != len(want) {
		return false
	}
	for _, inc := range incs {
		if want[inc.ID] != strings.Join(inc.Members, ",") {
			return false
		}
	}
	return true
}

func waitIncidents(t *testing.T, c *client.Client, ok func([]incident.Incident) bool) []incident.Incident {
	t.Helper()
	var incs []incident.Incident
	var err error
	if !poll.Wait(30*time.Second, func() bool {
		incs, err = c.Incidents(ctx(t))
		return err == nil && ok(incs)
	}) {
		t.Fatalf("incidents never as wanted: %+v %v", incs, err)
	}
	return incs
}

func waitEvents(t *testing.T, c *client.Client, code string, n int, ok func([]store.Event) bool) {
	t.Helper()
	var evs []store.Event
	var err error
	if !poll.Wait(30*time.Second, func() bool {
		evs, err = c.Events(ctx(t), time.Time{}, code, 100)
		return err == nil && len(evs) >= n && ok(evs)
	}) {
		t.Fatalf("%s events never as wanted: %+v %v", code, evs, err)
	}
}
