package events

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestFloodTotals(t *testing.T) {
	f := NewFlood(FloodConfig{Window: time.Minute, Threshold: 10})
	if _, ok := f.Totals("a", t0); ok {
		t.Fatal("an unknown source has totals")
	}
	f.ObserveCheck("a", sec(0), Check{Requests: 9})
	f.ObserveCheck("a", sec(20), Check{Lost: 3, Requests: 10, Retransmits: 2, Timeouts: 1})
	f.ObserveCheck("a", sec(10), Check{Lost: 1, Requests: 9, Retransmits: 1}) // out of order
	f.Observe("a", sec(30), 0)                                                // no counters: not a sample
	got, ok := f.Totals("a", sec(30))
	want := Totals{Window: time.Minute, Checks: 3, Lost: 4, Rate: 4, Requests: 28, Retransmits: 3, Timeouts: 1}
	if !ok || got != want {
		t.Fatalf("totals %+v, want %+v", got, want)
	}
	// The first check leaves the window (its start is exclusive).
	if got, _ := f.Totals("a", sec(60)); got.Checks != 2 || got.Requests != 19 || got.Lost != 4 {
		t.Fatalf("after 60s: %+v", got)
	}
	// A flood shows in the totals; a quiet source is forgotten after a window.
	f.ObserveCheck("a", sec(61), Check{Lost: 9, Requests: 12, Retransmits: 9})
	if got, _ := f.Totals("a", sec(61)); !got.Flooding || got.Rate != 13 {
		t.Fatalf("flood: %+v", got)
	}
	f.Tick(sec(200))
	f.Tick(sec(300))
	if _, ok := f.Totals("a", sec(300)); ok {
		t.Fatal("an idle source is still known")
	}
}

func TestCorrelatorSpread(t *testing.T) {
	c := NewCorrelator(CorrelateConfig{Window: time.Minute})
	// Firmware X on a-1..a-4, all in enclosure E except a-4; b-1 alone on Y.
	for i := 1; i <= 4; i++ {
		m := Member{Firmware: "X 1.0", Subnet: "10.0.0.0/24"}
		if i < 4 {
			m.Enclosure = "E"
		}
		c.SetMember(fmt.Sprintf("a-%d", i), m, t0)
	}
	c.SetMember("b-1", Member{Firmware: "Y 2.0", Subnet: "10.0.1.0/24"}, t0)
	c.Hold(OOBDegraded, "a-1", true, t0)
	c.Hold(OOBTimeoutFlood, "a-2", true, t0)
	c.Hold(OOBNotResponding, "a-2", true, t0) // counted once
	c.Hold(OOBDegraded, "a-4", true, t0)
	c.Raise(AuditWeakAuth, "a-3", t0) // not asked about
	c.Raise(OOBDegraded, "a-3", t0)   // one-shot: counts for the window only

	got, ok := c.Spread("a-1", TroubleCodes, sec(30))
	want := []GroupSpread{
		{Factor: FactorFirmware, Value: "X 1.0", Peers: 3, Affected: []string{"a-2", "a-3", "a-4"}},
		{Factor: FactorEnclosure, Value: "E", Peers: 2, Affected: []string{"a-2", "a-3"}},
		{Factor: FactorSubnet, Value: "10.0.0.0/24", Peers: 3, Affected: []string{"a-2", "a-3", "a-4"}},
	}
	if !ok || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("spread\n got %+v\nwant %+v", got, want)
	}
	// After the window the one-shot raise no longer counts.
	got, _ = c.Spread("a-1", TroubleCodes, sec(90))
	if len(got) != 3 || !slices.Equal(got[1].Affected, []string{"a-2"}) {
		t.Fatalf("after the window: %+v", got)
	}
	// A group of one is no comparison; an unknown source is not ok.
	if got, ok := c.Spread("b-1", TroubleCodes, t0); !ok || len(got) != 0 {
		t.Fatalf("b-1: %+v %v", got, ok)
	}
	if _, ok := c.Spread("nobody", TroubleCodes, t0); ok {
		t.Fatal("unknown source")
	}
}
