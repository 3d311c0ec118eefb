package events_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/ipmi/ipmitest"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// A host on the path answers every RAKP 1 of the monitor with a forged
// "unknown user" before the BMC's own RAKP 2 arrives. The server keeps
// the genuine verdict (Connectable, never NotAuthenticated, so no lockout
// guard and no refused power) and raises oob.conflicting_replies naming
// the stage and the addresses.
func TestForgedRefusalRaisesConflictNotAVerdict(t *testing.T) {
	e := apitest.Start(t, apitest.Options{Subnet: 95, Fleet: sim.Config{Count: 1, Seed: 5},
		Configure: func(c *server.Config) { c.Events = events.Config{Tick: 200 * time.Millisecond} }})
	b := e.Fleet.BMCs()[0]
	f := ipmitest.StartForger(t, b.Addr())
	f.Arm(ipmitest.ForgeOn(ipmitest.RAKP1, ipmitest.RAKP2, 0x0d), nil, false)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := e.Client(t, store.RoleAdmin)
	user, pw := sim.AdminUser, e.Fleet.Password()
	if _, err := admin.AddMachine(ctx, manager.MachineInput{Name: "forged-1", GUID: b.GUID().RFC4122(),
		Account: &manager.AccountInput{Address: f.Addr().Addr().String(), Port: int(f.Addr().Port()), User: &user, Password: &pw}}); err != nil {
		t.Fatal(err)
	}
	var evs []store.Event
	poll.Until(t, 20*time.Second, "oob.conflicting_replies", func() bool {
		var err error
		evs, err = admin.ListEvents(ctx, client.EventQuery{Code: events.OOBConflictingReplies, Source: "forged-1"})
		return err == nil && len(evs) > 0
	})
	if f.Forged() == 0 {
		t.Fatal("the forger sent nothing")
	}
	ev := evs[0]
	var d struct {
		Conflicts []ipmi.Conflict `json:"conflicts"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil || len(d.Conflicts) == 0 || d.Conflicts[0].Stage != ipmi.StageRAKP1 ||
		d.Conflicts[0].From != f.Addr() || ev.Severity != store.SeverityCritical {
		t.Fatalf("event %+v (%v)", ev, err)
	}
	mv, err := admin.Machine(ctx, "forged-1")
	if err != nil || len(mv.Channels) != 1 || mv.Channels[0].State.State != state.Connectable {
		t.Fatalf("forged-1: %+v %v", mv.Channels, err)
	}
	if refused, _ := admin.ListEvents(ctx, client.EventQuery{Code: events.OOBAuthRefused, Source: "forged-1"}); len(refused) != 0 {
		t.Errorf("a forged refusal was declared: %+v", refused)
	}
}
