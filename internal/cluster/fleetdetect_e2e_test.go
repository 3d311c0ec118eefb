package cluster_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/pgtest"
)

// TestFleetCorrelationAcrossInstances: two instances on PostgreSQL; an
// enclosure of four machines, two checked by each, and one of each pair
// stops answering. Neither instance's share shows a pattern (two
// machines of the enclosure: under the correlator's least group of
// three); the whole fleet does — two of four — and the leader records one
// fleet.correlated naming the enclosure and both machines, from the
// digests the instances share at their heartbeats.
func TestFleetCorrelationAcrossInstances(t *testing.T) {
	c := &scaleCluster{t: t, dsn: pgtest.DSN(t), interval: time.Second, lease: e2eLease, clients: map[*server.Server]*client.Client{}}
	f := scaleFleet(t, 24)
	s1, s2 := c.start(1), c.start(2)
	until(t, 10*time.Second, func() bool { return len(s1.Node.Members().Live()) == 2 && len(s2.Node.Members().Live()) == 2 },
		func() string { return fmt.Sprint(s1.Node.Members().Live()) })
	importInto(t, s1, f)
	ctx := context.Background()
	// Two machines of each instance into enclosure encx.
	byOwner := map[string][]string{}
	for _, b := range f.BMCs() {
		mc, err := s1.Store.Machine(ctx, b.Name())
		if err != nil {
			t.Fatal(err)
		}
		o, _ := s1.Node.OwnerOf(mc.ID, store.ZoneOf(mc))
		byOwner[o.Name] = append(byOwner[o.Name], b.Name())
	}
	if len(byOwner["i1"]) < 2 || len(byOwner["i2"]) < 2 {
		t.Fatalf("shares: %v", byOwner)
	}
	encl := "encx"
	if _, err := s1.Manager.AddEnclosure(ctx, scaleAdmin, manager.EnclosureInput{Name: encl, Address: "127.0.0.1", Slots: 8}); err != nil {
		t.Fatal(err)
	}
	members := []string{byOwner["i1"][0], byOwner["i1"][1], byOwner["i2"][0], byOwner["i2"][1]}
	for _, name := range members {
		if _, err := s1.Manager.UpdateMachine(ctx, scaleAdmin, name, manager.MachinePatch{Enclosure: &encl}); err != nil {
			t.Fatal(err)
		}
	}
	// Every machine checked since, so the correlators know the enclosure.
	base := sources(f)
	checkedAgain(t, f, base, members, netip.Addr{}, 2, 20*time.Second)
	silent := []string{byOwner["i1"][0], byOwner["i2"][0]}
	for _, name := range silent {
		b, _ := f.BMC(name)
		if err := b.SetFaults(sim.Faults{Silent: true}); err != nil {
			t.Fatal(err)
		}
	}
	leader := s1
	if !leader.Node.Leader() {
		leader = s2
	}
	var evs []store.Event
	until(t, 30*time.Second, func() bool {
		var err error
		evs, err = leader.Store.ListEvents(ctx, store.EventFilter{Code: events.FleetCorrelated})
		if err != nil {
			return false
		}
		for _, e := range evs {
			if strings.Contains(e.Source, "enclosure="+encl) {
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("no fleet.correlated for %s: %+v", encl, evs) })
	for _, e := range evs {
		if strings.Contains(e.Source, "enclosure="+encl) {
			for _, name := range silent {
				if !strings.Contains(e.Message, name) {
					t.Errorf("the finding does not name %s: %s", name, e.Message)
				}
			}
			t.Logf("%s: %s", e.Source, e.Message)
		}
	}
	// Each instance's correlator comes to hold the whole-fleet finding
	// (the leader's own digest reaches the follower at its next
	// heartbeat), so whichever leads has it for incidents.
	for _, s := range []*server.Server{s1, s2} {
		holds := func() bool {
			fs, _, _ := s.Events.Fleet()
			for _, fd := range fs {
				if fd.Factor == events.FactorEnclosure && fd.Value == encl {
					return true
				}
			}
			return false
		}
		until(t, 10*time.Second, holds, func() string {
			fs, _, _ := s.Events.Fleet()
			return fmt.Sprintf("%s's detectors do not hold the enclosure finding: %+v", s.Node.Name(), fs)
		})
	}
}
