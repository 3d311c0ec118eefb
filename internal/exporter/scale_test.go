package exporter

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lightsout/lightsout/internal/incident"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// fleetLister is a fleet of n machines with one channel each that counts
// how often it is listed (each listing is a read of the whole fleet from
// the store in the server).
type fleetLister struct {
	mvs       []manager.MachineView
	listed    atomic.Int32
	incidents atomic.Int32
}

func newFleet(n int) *fleetLister {
	f := &fleetLister{mvs: make([]manager.MachineView, n)}
	for i := range f.mvs {
		f.mvs[i] = manager.MachineView{Machine: store.Machine{Name: "bmc-" + strconv.Itoa(i)},
			Channels: []manager.ChannelView{{Account: store.Account{ID: int64(i + 1), Protocol: "ipmi"},
				State: store.ChannelState{State: state.Connectable}}}}
	}
	return f
}

func (f *fleetLister) Machines(context.Context, store.MachineFilter, store.Page) ([]manager.MachineView, error) {
	f.listed.Add(1)
	return f.mvs, nil
}

func (f *fleetLister) Incidents(context.Context) ([]incident.Incident, error) {
	f.incidents.Add(1)
	// What manager.Incidents does: every channel is looked at.
	down := 0
	for _, mv := range f.mvs {
		for _, cv := range mv.Channels {
			if cv.State.State != state.Connectable {
				down++
			}
		}
	}
	return []incident.Incident{{ID: "firmware:x", Kind: "firmware", Severity: store.SeverityWarning, Members: make([]string, down+2)}}, nil
}

// TestScrapeAtScale: at 100,000 channels a scrape of the exporter's
// collectors reads no fleet: the per-channel series are off by the
// monitor's count (no listing), and the incidents are grouped at most once
// per MaxAge, shared by the scrapes in between, or not at all when the
// server published a fresh grouping. /metrics timed out at 100,000 BMCs
// when each scrape listed the fleet twice.
func TestScrapeAtScale(t *testing.T) {
	const n = 100_000
	f := newFleet(n)
	ch := NewChannels(f, 0, nil)
	ch.Count = func() int { return n }
	inc := NewIncidents(f)
	var gen atomic.Uint64 // the monitor's Changes
	inc.Changes = gen.Load
	now := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	inc.now = func() time.Time { return now }
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(ch, inc)
	scrape := func() {
		t.Helper()
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 { // a minute of scrapes every 10 s
		scrape()
		now = now.Add(5 * time.Second)
	}
	if l := f.listed.Load(); l != 0 {
		t.Errorf("6 scrapes of %d channels (limit %d) listed the fleet %d times, want 0", n, DefaultMaxChannels, l)
	}
	if g := f.incidents.Load(); g != 1 {
		t.Errorf("6 scrapes within %v grouped the incidents %d times, want 1", DefaultIncidentsMaxAge, g)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`# HELP lightsout_channel_series_enabled 1 if per-channel series are served, 0 when the channels outnumber lightsout_channel_series_limit (or the limit is negative).
# TYPE lightsout_channel_series_enabled gauge
lightsout_channel_series_enabled 0
# HELP lightsout_incident_open An open incident (docs/incidents.md), valued by its number of members; id is stable while it lasts, so alerts route and silence per incident.
# TYPE lightsout_incident_open gauge
lightsout_incident_open{id="firmware:x",kind="firmware",severity="warning"} 2
`), "lightsout_channel_series_enabled", "lightsout_incident_open"); err != nil {
		t.Error(err)
	}
	// A channel changed: the next scrape groups again, and sees it.
	f.mvs[7].Channels[0].State.State = state.NotResponding
	gen.Add(1)
	scrape()
	scrape()
	if g := f.incidents.Load(); g != 2 {
		t.Errorf("two scrapes after a change: %d groupings, want 2", g)
	}
	if v, err := testutil.GatherAndCount(reg, "lightsout_incident_open"); err != nil || v != 1 {
		t.Fatal(v, err)
	}
	// Past MaxAge (something the monitor does not count may have
	// changed: an audit's finding, an agent) the next scrape groups again.
	now = now.Add(DefaultIncidentsMaxAge + time.Second)
	scrape()
	if g := f.incidents.Load(); g != 3 {
		t.Errorf("a scrape past MaxAge: %d groupings, want 3", g)
	}
	// The server's own regrouping, published, serves the scrapes.
	now = now.Add(2 * DefaultIncidentsMaxAge)
	gen.Add(1)
	inc.Publish([]incident.Incident{{ID: "enclosure:e1", Kind: "enclosure", Severity: store.SeverityCritical, Members: []string{"a", "b"}}}, now, gen.Load())
	scrape()
	if g := f.incidents.Load(); g != 3 {
		t.Errorf("a scrape after Publish grouped again (%d groupings, want 3)", g)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`# HELP lightsout_incident_open An open incident (docs/incidents.md), valued by its number of members; id is stable while it lasts, so alerts route and silence per incident.
# TYPE lightsout_incident_open gauge
lightsout_incident_open{id="enclosure:e1",kind="enclosure",severity="critical"} 2
`), "lightsout_incident_open"); err != nil {
		t.Error(err)
	}
	// Within the limit the listing decides, as before: a count that is
	// only a lower bound (a scale-out instance's share) never hides series.
	small := newFleet(3)
	ch2 := NewChannels(small, 5, nil)
	ch2.Count = func() int { return 1 }
	reg2 := prometheus.NewPedanticRegistry()
	reg2.MustRegister(ch2)
	if got, err := testutil.GatherAndCount(reg2, "lightsout_channel_up"); err != nil || got != 3 || small.listed.Load() != 1 {
		t.Errorf("within the limit: %d lightsout_channel_up series (err %v), %d listings; want 3 and 1", got, err, small.listed.Load())
	}
}

// BenchmarkScrape100k: one scrape of the exporter's collectors over
// 100,000 channels, with the monitor's count (Count) and without (every
// scrape lists the fleet: the listing here is in memory; the server's
// reads every machine and account from the store).
func BenchmarkScrape100k(b *testing.B) {
	for _, withCount := range []bool{false, true} {
		name := "list"
		if withCount {
			name = "count"
		}
		b.Run(name, func(b *testing.B) {
			f := newFleet(100_000)
			ch := NewChannels(f, 0, nil)
			if withCount {
				ch.Count = func() int { return 100_000 }
			}
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(ch)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
