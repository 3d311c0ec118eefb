package manager_test

import (
	"context"
	"errors"
	"github.com/lightsout/lightsout/internal/poll"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/server"
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
	// The monitor keeps one session per BMC between checks, no more.
	for _, b := range f.BMCs() {
		if c := b.RedfishCounters(); c.SessionsOpen > 1 {
			t.Fatalf("%s: %d sessions open: %+v", b.Name(), c.SessionsOpen, c)
		}
	}
}

// TestRedfishSessionsKept: a monitor checking every 300 ms logs in once
// per BMC, not once per check, and the server logs out when it stops.
func TestRedfishSessionsKept(t *testing.T) {
	cfg := sim.Config{Count: 3, Seed: 19, Password: "mgr-redfish-pw2", Redfish: true}
	if os.Geteuid() == 0 {
		cfg.BaseAddr = "127.83.0.1"
	} else {
		cfg.BaseAddr, cfg.BasePort = "127.0.0.1", 25000+os.Getpid()%20000
	}
	f, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sch := state.Schedule{Interval: 100 * time.Millisecond, Jitter: 0.1, Confirm: 100 * time.Millisecond,
		MaxBackoff: time.Second, AuthRetry: time.Hour}
	srv, err := server.New(context.Background(), server.Config{DataDir: t.TempDir(), Schedule: sch,
		Damping: state.Damping{Consecutive: 2}, Timeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	importFleet(t, srv, f)
	// Wait (bounded) until every BMC has answered at least 8 requests:
	// several checks each.
	if !poll.Wait(15*time.Second, func() bool {
		for _, b := range f.BMCs() {
			if b.RedfishCounters().Requests < 8*3 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the monitor did not check the BMCs repeatedly within 15 s")
	}
	for _, b := range f.BMCs() {
		if c := b.RedfishCounters(); c.SessionsOpened != 1 || c.SessionsOpen != 1 {
			t.Fatalf("%s: want one session kept over several checks: %+v", b.Name(), c)
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, b := range f.BMCs() {
		if c := b.RedfishCounters(); c.SessionsOpen != 0 || c.SessionsClosed != 1 {
			t.Fatalf("%s: sessions not logged out at shutdown: %+v", b.Name(), c)
		}
	}
}

// TestDiagRedfish: the diagnosis checks Redfish channels afresh over real
// HTTPS with the Redfish prober and the store's pins, and the trees name
// the cause without any IPMI-only step.
func TestDiagRedfish(t *testing.T) {
	ctx := context.Background()
	cfg := sim.Config{Count: 4, Seed: 11, Password: "diag-redfish-pw1", Redfish: true}
	if os.Geteuid() == 0 {
		cfg.BaseAddr = "127.82.0.1"
	} else {
		cfg.BaseAddr, cfg.BasePort = "127.0.0.1", 24000+os.Getpid()%20000
	}
	f, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	srv := fastServer(t, "")
	importFleet(t, srv, f)
	bs := f.BMCs()
	for _, b := range bs {
		waitState(t, srv, b.Name(), state.Connectable) // certificates pinned
	}
	faults := map[string]sim.Faults{bs[1].Name(): {CertReplaced: true}, bs[2].Name(): {WrongPassword: true}, bs[3].Name(): {PortClosed: true}}
	for n, fl := range faults {
		if err := f.SetFaults(n, fl); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for _, b := range bs {
		names = append(names, b.Name())
	}
	res, err := srv.Manager.Diagnose(ctx, operator, manager.DiagRequest{Machines: names}, nil)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]manager.DiagResult{}
	for _, r := range res {
		if r.Error != "" {
			t.Fatalf("%s: %s", r.Machine, r.Error)
		}
		for _, s := range r.Steps {
			switch s {
			case diag.NeedEM, diag.NeedSiblings, diag.NeedBladeView, diag.NeedIdentify, diag.NeedSuites, diag.NeedSuiteTry, diag.NeedSessions:
				t.Fatalf("%s: IPMI-only step %s", r.Machine, s)
			}
		}
		by[r.Machine] = r
	}
	if r := by[bs[0].Name()]; !r.Healthy || r.Diagnosis.Cause != diag.CauseHealthy {
		t.Fatalf("healthy: %+v", r)
	}
	if r := by[bs[1].Name()]; r.State != state.Invalid || r.Diagnosis.Cause != diag.CauseCertChanged ||
		!strings.Contains(r.Diagnosis.Remedy, "lightsout accept-cert "+bs[1].Name()) {
		t.Fatalf("cert replaced: %+v", r)
	}
	if r := by[bs[2].Name()]; r.State != state.NotAuthenticated || r.Diagnosis.Cause != diag.CauseAuthRejected {
		t.Fatalf("wrong password: %+v", r)
	}
	if r := by[bs[3].Name()]; r.State != state.NotResponding || r.Reason != state.ReasonPortRefused ||
		r.Diagnosis.Cause != diag.CauseRedfishDown || !strings.Contains(r.Diagnosis.Summary, "HTTPS") {
		t.Fatalf("port closed: %+v", r)
	}
	// The monitor and the diagnosis share the prober: one session kept
	// per BMC at most.
	for _, b := range bs {
		if c := b.RedfishCounters(); c.SessionsOpen > 1 {
			t.Fatalf("%s: %d sessions open: %+v", b.Name(), c.SessionsOpen, c)
		}
	}
}
