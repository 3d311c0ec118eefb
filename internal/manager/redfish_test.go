package manager_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
)

// TestManagerRedfish: the monitor drives Redfish accounts (imported from
// the simulator's inventory), pins their certificates in the store, sees
// faults, and power runs over Redfish.
func TestManagerRedfish(t *testing.T) {
	ctx := context.Background()
	cfg := sim.Config{Count: 3, Seed: 9, Password: "mgr-redfish-pw1", Redfish: true}
	if os.Geteuid() == 0 {
		cfg.BaseAddr = "127.81.0.1"
	} else {
		cfg.BaseAddr, cfg.BasePort = "127.0.0.1", 23000+os.Getpid()%20000
	}
	f, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	srv := fastServer(t, "")
	importFleet(t, srv, f)
	for _, b := range f.BMCs() {
		cv := waitState(t, srv, b.Name(), state.Connectable)
		if cv.Account.Protocol != "redfish" {
			t.Fatalf("%s: protocol %q", b.Name(), cv.Account.Protocol)
		}
		if fp, err := srv.Store.CertPin(ctx, b.Name()); err != nil || len(fp) != 64 {
			t.Fatalf("%s: pin %q, %v", b.Name(), fp, err)
		}
	}
	b := f.BMCs()[0]
	b.SetPower(true)
	res, err := srv.Manager.Power(ctx, operator, manager.PowerRequest{Action: power.Off, Machines: []string{b.Name()}}, nil)
	if err != nil || res[0].Result != power.ResultOK || b.PowerOn() {
		t.Fatalf("power off over Redfish: %+v, %v, sim power %v", res, err, b.PowerOn())
	}
	if err := f.SetFaults(f.BMCs()[1].Name(), sim.Faults{CertReplaced: true}); err != nil {
		t.Fatal(err)
	}
	cv := waitState(t, srv, f.BMCs()[1].Name(), state.Invalid)
	if cv.State.Reason != state.ReasonCertChanged {
		t.Fatalf("%+v", cv.State)
	}
	// Accepting the new certificate is an admin's (audited) decision.
	name := f.BMCs()[1].Name()
	if err := srv.Manager.AcceptCertificate(ctx, operator, name, ""); !errors.Is(err, manager.ErrForbidden) {
		t.Fatalf("operator accept: %v", err)
	}
	if err := srv.Manager.AcceptCertificate(ctx, admin, name, ""); err != nil {
		t.Fatalf("admin accept: %v", err)
	}
	waitState(t, srv, name, state.Connectable)
	if log, err := srv.Store.AuditLog(ctx, name, 5); err != nil || len(log) == 0 || log[0].Action != "machine.accept_certificate" ||
		log[0].Result != "ok" || !strings.Contains(log[0].Detail, "because an admin accepted it") {
		t.Fatalf("audit: %+v %v", log, err)
	}
	if err := f.SetFaults(f.BMCs()[2].Name(), sim.Faults{Silent: true}); err != nil {
		t.Fatal(err)
	}
	waitState(t, srv, f.BMCs()[2].Name(), state.NotResponding)
	for _, b := range f.BMCs() {
		if c := b.RedfishCounters(); c.SessionsOpened != c.SessionsClosed {
			t.Fatalf("%s: sessions leaked: %+v", b.Name(), c)
		}
	}
}
