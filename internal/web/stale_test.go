package web_test

import (
	"context"
	"github.com/lightsout/lightsout/internal/poll"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/cluster"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
)

// TestStaleZoneShown: a machine moved to a zone no live instance serves is
// shown "stale since" in the machine table and on its page, and the
// server raised fleet.zone_unwatched.
func TestStaleZoneShown(t *testing.T) {
	e := apitest.Start(t, apitest.Options{Subnet: 98, Fleet: sim.Config{Count: 2, Seed: 3},
		Configure: func(c *server.Config) {
			c.Cluster = cluster.Config{Name: "web-1", Lease: 600 * time.Millisecond, Every: 100 * time.Millisecond, Fence: 300 * time.Millisecond,
				MaxCheck: 150 * time.Millisecond}
		}})
	ctx := context.Background()
	e.ImportFleet(t)
	z := "dc9"
	if _, err := e.Server.Manager.UpdateMachine(ctx, manager.Actor{Name: "t", Role: store.RoleOperator}, "bmc-00002", manager.MachinePatch{Zone: &z}); err != nil {
		t.Fatal(err)
	}
	// The only instance does not serve dc9: it stops checking it.
	accts, _ := e.Server.Store.AccountsOf(ctx, mustMachine(t, e, "bmc-00002").ID)
	if _, ok := e.Server.Monitor.Get(accts[0].ID); ok {
		t.Error("bmc-00002 (zone dc9) is still checked by an instance serving only the default zone")
	}
	b := login(t, e, store.RoleViewer)
	var table string
	if !poll.Wait(10*time.Second, func() bool {
		_, table = b.get("/machines")
		_, page := b.get("/machines/bmc-00002")
		_, other := b.get("/machines/bmc-00001")
		return strings.Contains(table, "stale since") && strings.Contains(page, "stale since") && !strings.Contains(other, "stale since")
	}) {
		t.Fatalf("no stale marker for bmc-00002 (or one on bmc-00001):\n%s", table)
	}
	// The zone filter: a select of the zones there are, one zone's machines.
	_, zoned := b.get("/machines?zone=dc9")
	if !strings.Contains(zoned, `<select name="zone">`) || !strings.Contains(zoned, "/machines/bmc-00002") || strings.Contains(zoned, "/machines/bmc-00001") {
		t.Errorf("/machines?zone=dc9 lists other zones' machines or has no zone select:\n%s", zoned)
	}
	_, def := b.get("/machines?zone=" + store.DefaultZone)
	if !strings.Contains(def, "/machines/bmc-00001") || strings.Contains(def, "/machines/bmc-00002") {
		t.Errorf("/machines?zone=default:\n%s", def)
	}
	evs, err := e.Server.Store.Events(ctx, time.Time{}, "fleet.zone_unwatched", 10)
	if err != nil || len(evs) != 1 || evs[0].Source != "zone:dc9" {
		t.Errorf("fleet.zone_unwatched: %+v %v", evs, err)
	}
}

func mustMachine(t *testing.T, e *apitest.Env, name string) store.Machine {
	t.Helper()
	m, err := e.Server.Store.Machine(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
