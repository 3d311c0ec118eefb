package monitor

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// TestRedfishLearnedAuthSurvivesRestart: the monitor checks a simulated
// Redfish BMC that offers no sessions with the real prober over HTTPS; the
// HTTP Basic it learns is stored with the BMC's profile, and a monitor
// started afresh on the same store (a new prober and transport that know
// nothing) starts from it: Basic, said to be kept with the profile, no
// session opened although the service offers sessions again. When Basic
// is then refused the learned choice is forgotten in the store, and the
// next check learns sessions.
func TestRedfishLearnedAuthSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	// Free ports from the kernel: UDP for the BMC's IPMI, TCP for its
	// Redfish; another process may take one meanwhile, so a few tries.
	var fleet *sim.Fleet
	for try := 0; fleet == nil; try++ {
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		udp, tcp := u.LocalAddr().(*net.UDPAddr).Port, l.Addr().(*net.TCPAddr).Port
		u.Close()
		l.Close()
		fleet, err = sim.New(sim.Config{Count: 1, Seed: 5, Password: "mon-rf-pass-1", BaseAddr: "127.0.0.1", BasePort: udp,
			Redfish: true, RedfishBasePort: tcp, Faults: map[string]sim.Faults{"bmc-00001": {RedfishNoSessions: true}}})
		if err != nil && try == 2 {
			t.Fatalf("simulator: %v", err)
		}
	}
	defer fleet.Close()
	b := fleet.BMCs()[0]

	box, _ := secret.NewRandomBox()
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "m.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mc := store.Machine{Name: "rf-basic", GUID: b.RegisteredGUID().String()}
	mustOK(t, st.AddMachine(ctx, &mc))
	a := store.Account{MachineID: mc.ID, Protocol: "redfish", Address: "127.0.0.1", Port: int(b.RedfishAddr().Port()),
		User: sim.AdminUser, Password: []byte("mon-rf-pass-1")}
	mustOK(t, st.AddAccount(ctx, &a))

	// checkWith is one check by a monitor, prober and transport made
	// afresh on the store: a restart.
	checkWith := func() probe.Observation {
		tr := probe.NewRedfishTransport()
		defer tr.CloseIdleConnections()
		pr := probe.NewRedfishProber(tr, st)
		pr.KeepSessions = true
		defer pr.Close(ctx)
		var got probe.Observation
		sch := state.DefaultSchedule
		sch.AuthRetry = time.Millisecond // the lockout guard would hold the login after a refusal
		m := New(st, Config{Schedule: sch, Timeout: 2 * time.Second, Probers: map[string]probe.Prober{"redfish": func(ctx context.Context, tg probe.Target) probe.Observation {
			got = pr.Check(ctx, tg)
			return got
		}}})
		mustOK(t, m.Load(ctx))
		if res, err := m.CheckNow(ctx, []int64{a.ID}); err != nil || len(res) != 1 {
			t.Fatalf("check now: %v %v", res, err)
		}
		return got
	}
	learned := func() string {
		t.Helper()
		ps, err := st.Profiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ps[a.ID].RedfishAuth
	}

	o := checkWith()
	if ev := o.Evidence.Redfish; o.State != state.Connectable || ev.Auth != "basic" || !strings.Contains(ev.AuthWhy, "no SessionService") {
		t.Fatalf("first check: %s/%s auth %q (%s): %s", o.State, o.Reason, ev.Auth, ev.AuthWhy, o.Message)
	}
	if l := learned(); l != "basic" {
		t.Fatalf("stored learned authentication %q, want basic", l)
	}

	// Restart, with sessions offered again: the stored choice holds.
	mustOK(t, fleet.ClearFaults(b.Name()))
	o = checkWith()
	if ev := o.Evidence.Redfish; o.State != state.Connectable || ev.Auth != "basic" || !strings.Contains(ev.AuthWhy, "kept with the BMC's profile") {
		t.Fatalf("after restart: %s/%s auth %q (%s): %s", o.State, o.Reason, ev.Auth, ev.AuthWhy, o.Message)
	}
	if n := b.RedfishCounters().SessionsOpened; n != 0 {
		t.Fatalf("%d sessions opened: the stored Basic was not used", n)
	}

	// Basic refused: the check fails and the learned choice is forgotten,
	// in the store too; the next (restarted) check learns sessions.
	mustOK(t, fleet.SetFaults(b.Name(), sim.Faults{RedfishNoBasic: true}))
	o = checkWith()
	if o.State != state.NotAuthenticated {
		t.Fatalf("Basic refused: %s/%s: %s", o.State, o.Reason, o.Message)
	}
	if l := learned(); l != "" {
		t.Fatalf("after the refusal the store still holds %q", l)
	}
	o = checkWith()
	if ev := o.Evidence.Redfish; o.State != state.Connectable || ev.Auth != "session" || !strings.Contains(ev.AuthWhy, "links a SessionService") {
		t.Fatalf("re-learned: %s/%s auth %q (%s): %s", o.State, o.Reason, ev.Auth, ev.AuthWhy, o.Message)
	}
	if l := learned(); l != "session" {
		t.Fatalf("stored learned authentication %q, want session", l)
	}
}
