package power

import (
	"context"
	"testing"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/sim/simtest"
)

var _ Channel = Redfish{}

func TestResetTypeFor(t *testing.T) {
	all := []schemas.ResetType{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "PowerCycle"}
	for a, want := range map[Action]schemas.ResetType{On: "On", Off: "ForceOff", SoftOff: "GracefulShutdown", Cycle: "PowerCycle", Reset: "ForceRestart"} {
		if got, err := ResetTypeFor(a, all); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", a, got, err, want)
		}
	}
	if got, _ := ResetTypeFor(Cycle, []schemas.ResetType{"ForceRestart"}); got != "ForceRestart" {
		t.Errorf("cycle fallback: %q", got)
	}
	if _, err := ResetTypeFor(SoftOff, []schemas.ResetType{"ForceOff"}); err == nil {
		t.Error("soft off allowed without GracefulShutdown or PushPowerButton")
	}
	if got, _ := ResetTypeFor(Off, nil); got != "ForceOff" {
		t.Errorf("no allowable values: %q", got)
	}
}

func TestRedfishPowerSim(t *testing.T) {
	cfg := sim.Config{Count: 2, Seed: 5, Password: "power-rf-pass1", Redfish: true}
	f := simtest.Start(t, cfg, 76)
	b := f.BMCs()[0]
	b.SetPower(true)
	tr := probe.NewRedfishTransport()
	defer tr.CloseIdleConnections()
	ch := Redfish{Transport: tr, Addr: b.RedfishAddr(), User: sim.AdminUser, Password: []byte(f.Password()), Timeout: 2 * time.Second}
	ctx := context.Background()
	if p, err := ch.PowerState(ctx); err != nil || p != "on" {
		t.Fatalf("power state %q, %v", p, err)
	}
	if err := ch.SetPower(ctx, Off); err != nil {
		t.Fatal(err)
	}
	if b.PowerOn() {
		t.Fatal("ForceOff did not power the simulated system off")
	}
	if err := ch.SetPower(ctx, On); err != nil || !b.PowerOn() {
		t.Fatalf("on: %v, power %v", err, b.PowerOn())
	}
	if err := ch.Identify(ctx, true); err != nil {
		t.Fatal(err)
	}
	if id, err := ch.IdentifyState(ctx); err != nil || id != "on" {
		t.Fatalf("identify state after identify on: %q %v", id, err)
	}
	if err := ch.Identify(ctx, false); err != nil {
		t.Fatal(err)
	}
	if id, err := ch.IdentifyState(ctx); err != nil || id != "off" {
		t.Fatalf("identify state after identify off: %q %v", id, err)
	}
	if p, _ := ch.PowerState(ctx); p != "on" {
		t.Fatalf("power %q", p)
	}
	c := b.RedfishCounters()
	if c.SessionsOpen != 0 || c.SessionsOpened != c.SessionsClosed || c.SessionsOpened < 8 {
		t.Fatalf("sessions: %+v", c)
	}
	bad := ch
	bad.Password = []byte("wrong-password-1")
	if err := bad.SetPower(ctx, Off); err == nil || !b.PowerOn() {
		t.Fatalf("wrong password: %v", err)
	}
}
