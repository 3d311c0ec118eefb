package events

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// TestSharedDigestsCorrelateAcrossInstances: two instances each check
// half of an enclosure's four blades, and one blade of each half stops
// answering. Neither half alone is a fleet pattern (two blades: under
// MinGroup); once each shares its digests with the other (TakeDigests,
// MarshalDigests, Remote — what the heartbeat carries), the whole
// enclosure is seen: two of four, fleet.correlated. Only the leader
// records it. A timeout flood on a blade the follower checks is in the
// leader's flooding list; an unchanged digest is not shared again.
func TestSharedDigestsCorrelateAcrossInstances(t *testing.T) {
	cc := CorrelateConfig{Share: 0.5, MinGroup: 3, MinMembers: 2}
	leader, ldb, lclk := newRecorder(t, Config{Correlate: cc, Flood: FloodConfig{Window: time.Minute, Threshold: 6}, Leader: func() bool { return true }})
	follower, fdb, fclk := newRecorder(t, Config{Correlate: cc, Flood: FloodConfig{Window: time.Minute, Threshold: 6}, Leader: func() bool { return false }})
	leader.ShareDigests(true)
	follower.ShareDigests(true)
	check := func(r *Recorder, name string, declared state.OOB, at time.Time, retrans uint32) {
		r.Checked(context.Background(), monitor.Outcome{Machine: name, Enclosure: "enc1", Address: "10.0." + name[len(name)-1:] + ".9",
			Declared: declared, Observation: probe.Observation{State: declared, At: at, Evidence: probe.Evidence{Retransmits: retrans}}})
	}
	// a1, a2 are the follower's; b1, b2 the leader's.
	check(follower, "a1", state.NotResponding, t0, 0)
	check(follower, "a2", state.Connectable, t0, 0)
	check(leader, "b1", state.NotResponding, t0, 0)
	check(leader, "b2", state.Connectable, t0, 0)
	for _, r := range []*Recorder{leader, follower} {
		if fs, _, _ := r.Fleet(); len(fs) != 0 {
			t.Fatalf("half an enclosure is a finding: %+v", fs)
		}
	}
	exchange := func() (sent int) {
		for _, p := range [][2]*Recorder{{follower, leader}, {leader, follower}} {
			ds := p[0].TakeDigests()
			sent += len(ds)
			for _, b := range MarshalDigests(ds, 7900) {
				got, err := UnmarshalDigests(b)
				if err != nil {
					t.Fatal(err)
				}
				p[1].Remote(got)
			}
		}
		return sent
	}
	if n := exchange(); n != 4 {
		t.Fatalf("%d digests shared, want one per blade", n)
	}
	for _, r := range []*Recorder{leader, follower} {
		fs, _, _ := r.Fleet()
		if len(fs) != 1 || fs[0].Factor != FactorEnclosure || fs[0].Value != "enc1" || fs[0].GroupSize < 3 || fmt.Sprint(fs[0].Members) != "[a1 b1]" {
			t.Fatalf("findings over the whole enclosure: %+v", fs)
		}
	}
	leader.Start(context.Background())
	follower.Start(context.Background())
	poll.Until(t, 5*time.Second, "the leader's fleet.correlated", func() bool {
		evs, _ := ldb.ListEvents(context.Background(), store.EventFilter{Code: FleetCorrelated})
		return len(evs) == 1
	})
	// A check that changes nothing shares nothing.
	check(follower, "a2", state.Connectable, t0.Add(10*time.Second), 0)
	if n := exchange(); n != 0 {
		t.Fatalf("%d unchanged digests shared again", n)
	}
	// a2 floods (retransmissions at every check): the leader lists it.
	for i := range 3 {
		at := t0.Add(time.Duration(20+i*5) * time.Second)
		fclk.Set(at)
		lclk.Set(at)
		check(follower, "a2", state.Connectable, at, 4)
	}
	exchange()
	if _, flooding, since := leader.Fleet(); fmt.Sprint(flooding) != "[a2]" || since.IsZero() {
		t.Fatalf("the leader's flooding list: %v since %v", flooding, since)
	}
	// Nothing fleet-wide was recorded by the follower.
	follower.Close()
	if evs, _ := fdb.ListEvents(context.Background(), store.EventFilter{Code: FleetCorrelated}); len(evs) != 0 {
		t.Fatalf("the follower recorded %d fleet findings", len(evs))
	}
}
