package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/pgtest"
)

// TestGenerationMovesOnlyOnChange: beside another instance, the leader
// regroups incidents only when its node's Generation moved. While the
// fleet is idle it stands still over many heartbeats (no fleet read every
// 15 s); a state change stored by the follower moves it (announced at the
// follower's next heartbeat, after the write), and by then the database
// already holds the change, so the regrouping that follows sees it.
func TestGenerationMovesOnlyOnChange(t *testing.T) {
	c := &scaleCluster{t: t, dsn: pgtest.DSN(t), interval: time.Second, lease: e2eLease, clients: map[*server.Server]*client.Client{}}
	f := scaleFleet(t, 30)
	s1, s2 := c.start(1), c.start(2)
	until(t, 10*time.Second, func() bool { return len(s1.Node.Members().Live()) == 2 && len(s2.Node.Members().Live()) == 2 },
		func() string { return fmt.Sprint(s1.Node.Members().Live()) })
	importInto(t, s1, f)
	ctx := context.Background()
	connectable := func(s *server.Server) bool {
		mvs, err := s.Manager.Machines(ctx, store.MachineFilter{}, store.Page{})
		if err != nil || len(mvs) != 30 {
			return false
		}
		for _, mv := range mvs {
			for _, cv := range mv.Channels {
				if cv.State.State != state.Connectable {
					return false
				}
			}
		}
		return true
	}
	until(t, 30*time.Second, func() bool { return connectable(s1) }, func() string { return "the fleet is not all Connectable" })
	leader, follower := s1, s2
	if !s1.Node.Leader() {
		leader, follower = s2, s1
	}

	// Idle: the leader's Generation stands still for 8 heartbeats of both.
	var last uint64
	var since time.Time
	still := 8 * e2eEvery
	until(t, 30*time.Second, func() bool {
		g := leader.Node.Generation()
		if g != last || since.IsZero() {
			last, since = g, time.Now()
			return false
		}
		return time.Since(since) >= still
	}, func() string { return fmt.Sprintf("the leader's generation kept moving on an idle fleet (%d)", last) })

	// A BMC the follower checks goes silent.
	var victim *sim.BMC
	var acct int64
	for _, b := range f.BMCs() {
		mc, err := leader.Store.Machine(ctx, b.Name())
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := leader.Node.OwnerOf(mc.ID, store.ZoneOf(mc)); o.Name == follower.Node.Name() {
			as, err := leader.Store.AccountsOf(ctx, mc.ID)
			if err != nil || len(as) != 1 {
				t.Fatal(as, err)
			}
			victim, acct = b, as[0].ID
			break
		}
	}
	if victim == nil {
		t.Fatal("the follower checks no BMC")
	}
	g0 := leader.Node.Generation()
	if err := victim.SetFaults(sim.Faults{Silent: true}); err != nil {
		t.Fatal(err)
	}
	until(t, 20*time.Second, func() bool { return leader.Node.Generation() != g0 },
		func() string { return "the follower's state change never moved the leader's generation" })
	// Announced after the write: the database holds it already.
	cs, err := leader.Store.State(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if cs.State != state.NotResponding {
		t.Fatalf("the leader's generation moved before the follower's change was stored: %s holds %s", victim.Name(), cs.State)
	}
	t.Logf("%s went silent; the leader's generation moved %d -> %d with the change stored", victim.Name(), g0, leader.Node.Generation())
}
