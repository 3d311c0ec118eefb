package cluster_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/cluster"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/state"
)

// TestZoneSourceAddress: an instance serving two zones, one of them with
// its own source address (--source-address dca=ADDR over the zone's
// --zone-rule subnet), reaches that zone's BMCs from that address and the
// others from its own — the monitor's checks and a power status alike
// (the simulator's per-source session counters).
func TestZoneSourceAddress(t *testing.T) {
	f := scaleFleet(t, 12)
	bmcs := f.BMCs()
	if bmcs[0].Addr().Addr() == bmcs[len(bmcs)-1].Addr().Addr() {
		t.Skip("needs one loopback address per BMC (root): the routes go by BMC address")
	}
	// dca: the BMCs in the /29 of the first one's address.
	first := bmcs[0].Addr().Addr()
	pfx := netip.PrefixFrom(first, 29).Masked()
	rules, err := cluster.ParseZoneRules([]string{pfx.String() + "=dca"})
	if err != nil {
		t.Fatal(err)
	}
	own, zoneSrc := netip.MustParseAddr("127.0.7.1"), netip.MustParseAddr("127.0.8.1")
	routes, err := cluster.SourceRoutes(rules, map[string]netip.Addr{"dca": zoneSrc})
	if err != nil {
		t.Fatal(err)
	}
	sch := state.Schedule{Interval: time.Second, Jitter: 0.1, Confirm: time.Second / 4, MaxBackoff: 2 * time.Second, AuthRetry: time.Hour}
	s, err := server.New(context.Background(), server.Config{DataDir: t.TempDir(), Schedule: sch, Timeout: 500 * time.Millisecond,
		Damping: state.Damping{Consecutive: 1}, Engine: ipmi.Config{Source: own, Routes: routes},
		Cluster: cluster.Config{Name: "z", Zones: []string{"dca", "default"}, ZoneRules: rules, PeerAddress: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	importInto(t, s, f)
	ctx := context.Background()
	inZone := map[string]bool{}
	for _, b := range bmcs {
		mc, err := s.Store.Machine(ctx, b.Name())
		if err != nil {
			t.Fatal(err)
		}
		inZone[b.Name()] = pfx.Contains(b.Addr().Addr())
		if want := map[bool]string{true: "dca", false: ""}[inZone[b.Name()]]; mc.Zone != want {
			t.Fatalf("%s at %v: zone %q, want %q", b.Name(), b.Addr(), mc.Zone, want)
		}
	}
	n := 0
	for _, in := range inZone {
		if in {
			n++
		}
	}
	if n == 0 || n == len(bmcs) {
		t.Fatalf("%d of %d BMCs in %v: the test needs both kinds", n, len(bmcs), pfx)
	}
	var names []string
	for _, b := range bmcs {
		names = append(names, b.Name())
	}
	checkedAgain(t, f, sources(f), names, netip.Addr{}, 2, 20*time.Second)
	var target string
	for _, b := range bmcs {
		if inZone[b.Name()] {
			target = b.Name()
			break
		}
	}
	tb, _ := f.BMC(target)
	was := tb.SessionsBySource()[zoneSrc]
	res, err := s.Manager.Power(ctx, scaleAdmin, manager.PowerRequest{Action: power.Status, Machines: []string{target}}, nil)
	if err != nil || len(res) != 1 || res[0].Result != "ok" {
		t.Fatalf("power status of %s: %+v %v", target, res, err)
	}
	if now := tb.SessionsBySource()[zoneSrc]; now <= was {
		t.Errorf("power status of %s did not come from the zone's address %v", target, zoneSrc)
	}
	for _, b := range bmcs {
		by := b.SessionsBySource()
		want, other := own, zoneSrc
		if inZone[b.Name()] {
			want, other = zoneSrc, own
		}
		if by[want] == 0 || by[other] != 0 || len(by) != 1 {
			t.Errorf("%s (in dca: %v): sessions by source %v, want all from %v", b.Name(), inZone[b.Name()], fmt.Sprint(by), want)
		}
	}
}
