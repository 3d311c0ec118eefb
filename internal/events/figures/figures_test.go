package figures

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/diag/gather"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

var t0 = time.Date(2025, 3, 2, 10, 0, 0, 0, time.UTC)

// TestRecorderDiagSources: the Recorder answers the diagnosis by account,
// from the checks the monitor reported.
func TestRecorderDiagSources(t *testing.T) {
	box, err := secret.NewRandomBox()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlstore.Open(context.Background(), sqlstore.Options{DSN: filepath.Join(t.TempDir(), "f.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setClock := func(at time.Time) { mu.Lock(); now = at; mu.Unlock() }
	rec, err := events.New(events.Config{Store: db, Now: clock, Flood: events.FloodConfig{Window: time.Minute, Threshold: 10}})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	r := Source{Recorder: rec}
	ctx := context.Background()
	for _, f := range []func() error{
		func() error { _, err := r.ChannelRates(ctx, 7); return err },
		func() error { _, err := r.Spread(ctx, 7); return err },
	} {
		if err := f(); !errors.Is(err, gather.ErrNoFigures) {
			t.Fatalf("unknown channel: %v", err)
		}
	}
	check := func(acct int64, machine, encl string, at time.Time, declared state.OOB, ev probe.Evidence, conds ...state.Condition) {
		st := declared
		if st == state.Connectable && len(conds) == 0 && ev.Retransmits >= 2 {
			conds = []state.Condition{state.Degraded}
		}
		rec.Checked(context.Background(), monitor.Outcome{AccountID: acct, Machine: machine, Enclosure: encl, Address: "10.0.0.1", Declared: declared,
			Observation: probe.Observation{Host: fmt.Sprintf("10.0.0.%d:623", acct), State: st, At: at, Conditions: conds, Evidence: ev}})
	}
	fw := func(ev probe.Evidence) probe.Evidence { ev.Manufacturer, ev.Firmware = "Dell", "4.40"; return ev }
	// Blades 1-3 of enclosure E; 2 and 3 lossy, 3 declared not responding.
	check(1, "blade-1", "E", t0, state.Connectable, fw(probe.Evidence{Requests: 9, Retransmits: 3, Timeouts: 1}))
	check(1, "blade-1", "E", t0.Add(20*time.Second), state.Connectable, fw(probe.Evidence{Requests: 9}))
	check(2, "blade-2", "E", t0, state.Connectable, fw(probe.Evidence{Requests: 9, Retransmits: 4}))
	check(3, "blade-3", "E", t0, state.NotResponding, probe.Evidence{Requests: 2, Timeouts: 2})
	check(4, "rack-4", "", t0, state.Connectable, probe.Evidence{Requests: 9, Manufacturer: "HPE", Firmware: "2.72"})
	setClock(t0.Add(30 * time.Second))

	rt, err := r.ChannelRates(ctx, 1)
	if err != nil || rt.Window != time.Minute || rt.Requests != 18 || rt.Retransmits != 3 || rt.Timeouts != 1 ||
		!strings.HasPrefix(rt.Source, "the monitor's checks over the last 1m0s (2 checks, 4.0 unanswered requests a minute)") {
		t.Fatalf("rates %+v %v", rt, err)
	}
	sp, err := r.Spread(ctx, 1)
	want := []diag.Spread{
		{Dimension: "firmware", Value: "Dell 4.40", Peers: 1, Affected: 1},
		{Dimension: "enclosure", Value: "E", Peers: 2, Affected: 2},
		{Dimension: "subnet", Value: "10.0.0.0/24", Peers: 3, Affected: 2},
	}
	if err != nil || !slices.Equal(sp, want) {
		t.Fatalf("spread\n got %+v\nwant %+v (%v)", sp, want, err)
	}
	// blade-3 never reported a firmware: no firmware group for it.
	if sp, _ := r.Spread(ctx, 3); len(sp) != 2 || sp[0].Dimension != "enclosure" || sp[0].Affected != 1 {
		t.Fatalf("blade-3: %+v", sp)
	}
	// Out of the window: no figures, the executor measures itself.
	setClock(t0.Add(3 * time.Minute))
	if _, err := r.ChannelRates(ctx, 1); !errors.Is(err, gather.ErrNoFigures) {
		t.Fatalf("after the window: %v", err)
	}
}
