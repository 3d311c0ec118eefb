package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/sim/simtest"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/pgtest"
)

// TestStateChangesSurviveOutage: a real PostgreSQL is stopped under a
// running instance. Within the part of its lease still valid the instance
// keeps checking; the state changes it declares then (three BMCs going
// silent) are kept in memory; when PostgreSQL is started again they are
// written — states and transitions, with the time they were declared —
// at the heartbeat that renews its lease.
func TestStateChangesSurviveOutage(t *testing.T) {
	dsn := pgtest.DSN(t)
	cfg := sim.Config{Count: 8, Seed: 23, Password: "outage-pass1", SessionSlots: 4}
	f := simtest.Start(t, cfg, 72)
	// A lease long enough that the outage below stays within its valid
	// part: the instance fences itself lease − fence = 15 s after its
	// last renewal.
	c := &scaleCluster{t: t, dsn: dsn, interval: time.Second, lease: 20 * time.Second, fence: 5 * time.Second, clients: map[*server.Server]*client.Client{}}
	s := c.start(1)
	importInto(t, s, f)
	ctx := context.Background()
	stored := func(name string) store.ChannelState {
		m, err := s.Store.Machine(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		as, err := s.Store.AccountsOf(ctx, m.ID)
		if err != nil || len(as) != 1 {
			t.Fatalf("%s: accounts %v %v", name, as, err)
		}
		st, err := s.Store.StatesOf(ctx, []int64{as[0].ID})
		if err != nil {
			t.Fatal(err)
		}
		return st[as[0].ID]
	}
	bmcs := f.BMCs()
	until(t, 30*time.Second, func() bool {
		for _, b := range bmcs {
			if stored(b.Name()).State != state.Connectable {
				return false
			}
		}
		return true
	}, func() string { return "the fleet was not stored Connectable" })

	if err := pgtest.Pause(); err != nil {
		t.Skip(err) // an external PostgreSQL (LIGHTSOUT_TEST_POSTGRES) cannot be stopped here
	}
	paused := time.Now()
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			pgtest.Resume()
		}
	})
	silent := bmcs[:3]
	for _, b := range silent {
		if err := b.SetFaults(sim.Faults{Silent: true}); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]uint64{}
	for _, b := range bmcs[3:] {
		before[b.Name()] = b.Counters().SessionsOpened
	}
	// It keeps checking the others meanwhile, and buffers what it
	// declares of the silent ones.
	unchecked := func() []string {
		var out []string
		for _, b := range bmcs[3:] {
			if b.Counters().SessionsOpened <= before[b.Name()] {
				out = append(out, b.Name())
			}
		}
		return out
	}
	declared := func() int {
		n := 0
		for _, tr := range s.Node.BufferedTransitions() {
			for _, b := range silent {
				if tr.Machine == b.Name() && tr.To == state.NotResponding {
					n++
				}
			}
		}
		return n
	}
	until(t, 10*time.Second, func() bool { return declared() == len(silent) && len(unchecked()) == 0 },
		func() string {
			return fmt.Sprintf("%d of %d silent BMCs declared NotResponding in the buffer (%d changes buffered); not checked during the outage: %v",
				declared(), len(silent), s.Node.Buffered(), unchecked())
		})
	if err := pgtest.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	back := time.Now()
	until(t, 30*time.Second, func() bool { return s.Node.Buffered() == 0 },
		func() string { return fmt.Sprintf("%d state changes still buffered", s.Node.Buffered()) })
	for _, b := range silent {
		cs := stored(b.Name())
		if cs.State != state.NotResponding {
			t.Errorf("%s stored %s after the outage, want NotResponding", b.Name(), cs.State)
		}
		h, err := s.Store.History(ctx, cs.AccountID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, tr := range h {
			if tr.To == state.NotResponding && tr.From == state.Connectable && tr.At.After(paused) && tr.At.Before(back) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no Connectable → NotResponding transition declared during the outage in its history: %+v", b.Name(), h)
		}
	}
}
