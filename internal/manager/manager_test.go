package manager_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/lightsout/lightsout/internal/poll"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/sim/simtest"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

var (
	admin    = manager.Actor{Name: "test-admin", Role: store.RoleAdmin}
	operator = manager.Actor{Name: "test-operator", Role: store.RoleOperator}
	viewer   = manager.Actor{Name: "test-viewer", Role: store.RoleViewer}
)

// fleet starts n simulated BMCs on loopback: one address each on port 623
// as root, consecutive ports otherwise (simtest: a range no other test
// binary holds).
func fleet(t *testing.T, n int) *sim.Fleet {
	t.Helper()
	return simtest.Start(t, sim.Config{Count: n, Seed: 7, Password: "mgr-test-pass1"}, 79)
}

// fastServer starts a server whose monitor checks every 300 ms, confirms
// in 2 observations and guards refused accounts for an hour.
func fastServer(t *testing.T, db string) *server.Server {
	t.Helper()
	sch := state.Schedule{Interval: 300 * time.Millisecond, Jitter: 0.1, Confirm: 100 * time.Millisecond,
		MaxBackoff: time.Second, AuthRetry: time.Hour}
	srv, err := server.New(context.Background(), server.Config{DataDir: t.TempDir(), DB: db, Schedule: sch,
		Damping: state.Damping{Consecutive: 2}, Timeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func importFleet(t *testing.T, srv *server.Server, f *sim.Fleet) {
	t.Helper()
	inv := f.Inventory("")
	pw := map[string][]byte{}
	for _, m := range inv.Machines {
		pw[m.Name] = []byte(f.Password())
	}
	if _, err := srv.Manager.Import(context.Background(), admin, inv, pw, nil, false); err != nil {
		t.Fatalf("import: %v", err)
	}
}

// waitState polls (bounded) until machine's first channel is in want.
func waitState(t *testing.T, srv *server.Server, machine string, want state.OOB) manager.ChannelView {
	t.Helper()
	var last manager.ChannelView
	if !poll.Wait(10*time.Second, func() bool {
		mv, err := srv.Manager.Machine(context.Background(), machine)
		if err != nil {
			t.Fatal(err)
		}
		if len(mv.Channels) > 0 {
			last = mv.Channels[0]
			return last.State.State == want
		}
		return false
	}) {
		t.Fatalf("%s: state %s (%s), want %s", machine, last.State.State, last.State.Reason, want)
	}
	return last
}

// monitorRounds waits (bounded) until the monitor has checked machine, a
// healthy one, n more times: n intervals have passed for every channel.
func monitorRounds(t *testing.T, srv *server.Server, machine string, n int) {
	t.Helper()
	var last time.Time
	seen := -1
	poll.Until(t, 10*time.Second, fmt.Sprintf("%d more checks of %s", n, machine), func() bool {
		mv, err := srv.Manager.Machine(context.Background(), machine)
		if err != nil {
			t.Fatal(err)
		}
		if len(mv.Channels) > 0 && !mv.Channels[0].State.CheckedAt.Equal(last) {
			last = mv.Channels[0].State.CheckedAt
			seen++
		}
		return seen >= n
	})
}

func TestManagerSQLite(t *testing.T) { testManager(t, "") }

// testManager drives the manager end to end over real UDP against the
// simulator: monitor, damping, history, power with refusals, the lockout
// guard, registration, adoption and replacement, and the one-session rule.
func testManager(t *testing.T, db string) {
	ctx := context.Background()
	f := fleet(t, 8)
	srv := fastServer(t, db)
	m := srv.Manager
	importFleet(t, srv, f)
	for _, b := range f.BMCs() {
		waitState(t, srv, b.Name(), state.Connectable)
	}

	t.Run("silence is declared, stored with history and an event", func(t *testing.T) {
		if err := f.SetFaults("bmc-00002", sim.Faults{Silent: true}); err != nil {
			t.Fatal(err)
		}
		cv := waitState(t, srv, "bmc-00002", state.NotResponding)
		if cv.State.Reason != state.ReasonSilent || cv.Remedy == "" {
			t.Fatalf("%+v", cv)
		}
		h, err := m.History(ctx, "bmc-00002", 0, 10)
		if err != nil || len(h) < 2 {
			t.Fatalf("history %v %v", h, err)
		}
		if h[0].From != state.Connectable || h[0].To != state.NotResponding || len(h[0].Evidence) == 0 {
			t.Fatalf("newest transition %+v", h[0])
		}
		if h[len(h)-1].From != state.Unknown {
			t.Fatalf("oldest transition %+v", h[len(h)-1])
		}
		// The monitor stores the state first and records its event just
		// after, so the event may trail the state waitState saw.
		found, n := false, 0
		poll.Wait(5*time.Second, func() bool {
			evs, err := srv.Store.Events(ctx, time.Time{}, "oob.state_changed", 100)
			if err != nil {
				t.Fatal(err)
			}
			n = len(evs)
			for _, e := range evs {
				found = found || (e.Source == "bmc-00002" && strings.Contains(e.Message, "NotResponding"))
			}
			return found
		})
		if !found {
			t.Fatalf("no state_changed event for bmc-00002 in %d events", n)
		}
	})

	t.Run("power is refused on a channel that is not Connectable", func(t *testing.T) {
		res, err := m.Power(ctx, operator, manager.PowerRequest{Action: power.Off, Machines: []string{"bmc-00002"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := res[0]
		if r.Result != power.ResultRefused || !strings.Contains(r.Message, "NotResponding (silent) since") || !strings.Contains(r.Message, "UDP 623") {
			t.Fatalf("%+v", r)
		}
		if !f.BMCs()[1].PowerOn() {
			t.Fatal("refused power off turned the machine off")
		}
		log, _ := srv.Store.AuditLog(ctx, "bmc-00002", 10)
		if len(log) == 0 || log[0].Action != "power.off" || log[0].Result != "refused" || log[0].Actor != operator.Name {
			t.Fatalf("audit %+v", log)
		}
	})

	t.Run("power off and on a Connectable machine in batches", func(t *testing.T) {
		if _, err := m.Power(ctx, viewer, manager.PowerRequest{Action: power.Off, Machines: []string{"bmc-00001"}}, nil); !errors.Is(err, manager.ErrForbidden) {
			t.Fatalf("viewer power off: %v", err)
		}
		var progress int
		res, err := m.Power(ctx, operator, manager.PowerRequest{Action: power.Off, Machines: []string{"bmc-00001", "bmc-00003"},
			Stagger: power.Stagger{Batch: 1, Interval: 50 * time.Millisecond}}, func(power.Result) { progress++ })
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Result != power.ResultOK || r.Power != "off" || r.Batch != i+1 {
				t.Fatalf("%+v", r)
			}
		}
		if progress != 2 || f.BMCs()[0].PowerOn() || f.BMCs()[2].PowerOn() {
			t.Fatalf("progress %d, power %v %v", progress, f.BMCs()[0].PowerOn(), f.BMCs()[2].PowerOn())
		}
		res, _ = m.Power(ctx, viewer, manager.PowerRequest{Action: power.Status, Machines: []string{"bmc-00001"}}, nil)
		if res[0].Result != power.ResultOK || res[0].Power != "off" {
			t.Fatalf("status %+v", res[0])
		}
		res, _ = m.Power(ctx, operator, manager.PowerRequest{Action: power.IdentifyOn, Machines: []string{"bmc-00001"}}, nil)
		if res[0].Result != power.ResultOK {
			t.Fatalf("identify %+v", res[0])
		}
	})

	t.Run("a refused account is not retried until its credentials change", func(t *testing.T) {
		if err := f.SetFaults("bmc-00004", sim.Faults{WrongPassword: true}); err != nil {
			t.Fatal(err)
		}
		cv := waitState(t, srv, "bmc-00004", state.NotAuthenticated)
		b, _ := f.BMC("bmc-00004")
		attempts := b.Counters().AuthAttempts
		res, err := m.CheckNow(ctx, operator, []string{"bmc-00004"}, "")
		if err != nil || len(res) != 1 || !strings.Contains(res[0].Skipped, "lockout") {
			t.Fatalf("check now: %+v %v", res, err)
		}
		monitorRounds(t, srv, "bmc-00006", 3) // three monitor intervals
		if n := b.Counters().AuthAttempts; n != attempts {
			t.Fatalf("%d more authentication attempts on a refused account", n-attempts)
		}
		// Fix the BMC; re-entering the same credentials is no change:
		// no login (the lockout guard counts edits).
		if err := f.ClearFaults("bmc-00004"); err != nil {
			t.Fatal(err)
		}
		pw := f.Password()
		if _, err := m.UpdateAccount(ctx, operator, cv.Account.ID, manager.AccountInput{Password: &pw}); err != nil {
			t.Fatal(err)
		}
		if res, _ := m.CheckNow(ctx, operator, []string{"bmc-00004"}, ""); len(res) != 1 || res[0].Skipped == "" {
			t.Fatalf("check now after an edit that changed nothing: %+v", res)
		}
		if n := b.Counters().AuthAttempts; n != attempts {
			t.Fatalf("%d authentication attempts after an edit that changed nothing", n-attempts)
		}
		// A changed password is tried at once.
		wrong, right := "not-"+pw, pw
		if _, err := m.UpdateAccount(ctx, operator, cv.Account.ID, manager.AccountInput{Password: &wrong}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return b.Counters().AuthAttempts > attempts })
		// … once per guard interval: the next change waits, and says so.
		if _, err := m.UpdateAccount(ctx, operator, cv.Account.ID, manager.AccountInput{Password: &right}); err != nil {
			t.Fatal(err)
		}
		if next, held := m.Monitor.EditHeld(cv.Account.ID); !held || next.Before(time.Now().Add(time.Minute)) {
			t.Fatalf("second credentials edit: held %v until %v, want held for the guard interval", held, next)
		}
	})

	t.Run("registration pins the GUID of the first Connectable check", func(t *testing.T) {
		b := f.BMCs()[5]
		user := "admin"
		pw := f.Password()
		addr := b.Addr()
		mv, err := m.AddMachine(ctx, operator, manager.MachineInput{Name: "new-node", Group: "web",
			Account: &manager.AccountInput{Address: addr.Addr().String(), Port: int(addr.Port()), User: &user, Password: &pw}})
		if err != nil {
			// The fleet's bmc-00006 already owns that address in the inventory.
			if !errors.Is(err, store.ErrConflict) {
				t.Fatal(err)
			}
			if err := m.DeleteMachine(ctx, admin, b.Name()); err != nil {
				t.Fatal(err)
			}
			mv, err = m.AddMachine(ctx, operator, manager.MachineInput{Name: "new-node", Group: "web",
				Account: &manager.AccountInput{Address: addr.Addr().String(), Port: int(addr.Port()), User: &user, Password: &pw}})
			if err != nil {
				t.Fatal(err)
			}
		}
		// The monitor checks a new account at once: by the time AddMachine
		// reads the machine back its GUID may be pinned already.
		if !mv.Registering && mv.GUID == "" {
			t.Fatalf("neither registering nor pinned: %+v", mv.Machine)
		}
		waitState(t, srv, "new-node", state.Connectable)
		got, err := srv.Store.Machine(ctx, "new-node")
		if err != nil {
			t.Fatal(err)
		}
		g, err := guid.Parse(got.GUID)
		if err != nil || got.Registering || !b.GUID().Matches(g) {
			t.Fatalf("pinned %q (registering %v), BMC has %s", got.GUID, got.Registering, b.GUID())
		}
		log, _ := srv.Store.AuditLog(ctx, "new-node", 10)
		if !hasAudit(log, "machine.register", "monitor") {
			t.Fatalf("no registration audit: %+v", log)
		}
	})

	t.Run("a motherboard swap is Invalid at once; only an admin adopts", func(t *testing.T) {
		if err := f.SetFaults("bmc-00007", sim.Faults{GUIDReplaced: true}); err != nil {
			t.Fatal(err)
		}
		waitState(t, srv, "bmc-00007", state.Invalid)
		res, _ := m.Power(ctx, operator, manager.PowerRequest{Action: power.Reset, Machines: []string{"bmc-00007"}}, nil)
		if res[0].Result != power.ResultRefused || !strings.Contains(res[0].Message, "adopt") {
			t.Fatalf("%+v", res[0])
		}
		if err := m.Adopt(ctx, operator, "bmc-00007", ""); !errors.Is(err, manager.ErrForbidden) {
			t.Fatalf("operator adopt: %v", err)
		}
		if err := m.Adopt(ctx, admin, "bmc-00007", ""); err != nil {
			t.Fatal(err)
		}
		// Adopt's re-check is declared at once: when it returns the
		// machine no longer reads Invalid (no confirming check needed).
		if mv, err := m.Machine(ctx, "bmc-00007"); err != nil || len(mv.Channels) == 0 || mv.Channels[0].State.State != state.Connectable {
			t.Fatalf("right after adopt: %+v %v", mv.Channels, err)
		}
		waitState(t, srv, "bmc-00007", state.Connectable)
		b, _ := f.BMC("bmc-00007")
		got, _ := srv.Store.Machine(ctx, "bmc-00007")
		g, _ := guid.Parse(got.GUID)
		if !b.GUID().Matches(g) {
			t.Fatalf("adopted %s, BMC has %s", got.GUID, b.GUID())
		}
		log, _ := srv.Store.AuditLog(ctx, "bmc-00007", 10)
		if !hasAudit(log, "machine.adopt", admin.Name) {
			t.Fatalf("no adopt audit: %+v", log)
		}
	})

	t.Run("adopt never gives one machine another's identity, whatever the layout", func(t *testing.T) {
		other, _ := f.BMC("bmc-00002")
		raw := other.RegisteredGUID()
		before, _ := srv.Store.Machine(ctx, "bmc-00003")
		for _, spelled := range []string{raw.RFC4122(), raw.SMBIOS(), strings.ToUpper(strings.ReplaceAll(raw.IPMI(), "-", "")), "{" + raw.IPMI() + "}"} {
			err := m.Adopt(ctx, admin, "bmc-00003", spelled)
			var fe *store.FieldError
			if !errors.As(err, &fe) || fe.Field != "guid" || !strings.Contains(fe.Reason, "registered to machine bmc-00002") {
				t.Fatalf("adopting bmc-00002's GUID spelled %s: %v", spelled, err)
			}
		}
		after, _ := srv.Store.Machine(ctx, "bmc-00003")
		if after.GUID != before.GUID {
			t.Fatalf("GUID changed from %s to %s", before.GUID, after.GUID)
		}
	})

	t.Run("a spare replaces a machine and takes its role", func(t *testing.T) {
		web := "web"
		role := "frontend-1"
		if _, err := m.UpdateMachine(ctx, operator, "bmc-00005", manager.MachinePatch{Group: &web, Role: &role}); err != nil {
			t.Fatal(err)
		}
		if err := m.Replace(ctx, operator, "bmc-00005", "bmc-00008"); err == nil || !strings.Contains(err.Error(), "spare") {
			t.Fatalf("replace by a non-spare: %v", err)
		}
		yes := true
		if _, err := m.UpdateMachine(ctx, operator, "bmc-00008", manager.MachinePatch{Spare: &yes}); err != nil {
			t.Fatal(err)
		}
		if err := m.Replace(ctx, operator, "bmc-00005", "bmc-00008"); err != nil {
			t.Fatal(err)
		}
		old, _ := srv.Store.Machine(ctx, "bmc-00005")
		sp, _ := srv.Store.Machine(ctx, "bmc-00008")
		if sp.Group != "web" || sp.Role != "frontend-1" || sp.Spare || old.Group != "" || old.Role != "" {
			t.Fatalf("old %+v spare %+v", old, sp)
		}
		if h, _ := m.History(ctx, "bmc-00005", 0, 10); len(h) == 0 {
			t.Fatal("old machine lost its history")
		}
	})

	t.Run("allocate assigns a group and powers on, refusing per machine", func(t *testing.T) {
		res, err := m.Allocate(ctx, operator, "batch", []string{"bmc-00001", "bmc-00002"}, power.Stagger{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Result != power.ResultOK || res[0].Power != "on" || res[1].Result != power.ResultRefused {
			t.Fatalf("%+v", res)
		}
		got, _ := srv.Store.Machine(ctx, "bmc-00001")
		if got.Group != "batch" {
			t.Fatalf("group %q", got.Group)
		}
		if g2, _ := srv.Store.Machine(ctx, "bmc-00002"); g2.Group == "batch" {
			t.Fatal("refused machine was allocated")
		}
	})

	t.Run("bad input names the field and changes nothing", func(t *testing.T) {
		before, _ := srv.Store.Machines(ctx, store.MachineFilter{}, store.Page{})
		cases := []struct {
			in    manager.MachineInput
			field string
		}{
			{manager.MachineInput{Name: "bad name!"}, "name"},
			{manager.MachineInput{Name: "x1", GUID: "not-a-guid"}, "guid"},
			{manager.MachineInput{Name: "x2", Account: &manager.AccountInput{Address: "300.1.1.1"}}, "address"},
			{manager.MachineInput{Name: "x3", Account: &manager.AccountInput{Address: "127.0.0.1", Privilege: "root"}}, "privilege"},
			{manager.MachineInput{Name: "bmc-00001"}, "name"},
		}
		for _, c := range cases {
			_, err := m.AddMachine(ctx, operator, c.in)
			var fe *store.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Errorf("%+v: %v, want a field error on %q", c.in, err, c.field)
			}
		}
		after, _ := srv.Store.Machines(ctx, store.MachineFilter{}, store.Page{})
		if len(after) != len(before) {
			t.Fatalf("%d machines before, %d after", len(before), len(after))
		}
	})

	// Never more than one session at a time from us on any BMC.
	for _, b := range f.BMCs() {
		if c := b.Counters(); c.MaxSessionsPerClient > 1 {
			t.Errorf("%s saw %d concurrent sessions from us", b.Name(), c.MaxSessionsPerClient)
		}
	}
}

func hasAudit(log []store.AuditEntry, action, actor string) bool {
	for _, e := range log {
		if e.Action == action && e.Actor == actor && e.Result == "ok" {
			return true
		}
	}
	return false
}

func TestRestartKeepsStates(t *testing.T) {
	ctx := context.Background()
	f := fleet(t, 3)
	dir := t.TempDir()
	sch := state.Schedule{Interval: 300 * time.Millisecond, Confirm: 100 * time.Millisecond, MaxBackoff: time.Second, AuthRetry: time.Hour}
	srv, err := server.New(ctx, server.Config{DataDir: dir, Schedule: sch, Timeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	importFleet(t, srv, f)
	waitState(t, srv, "bmc-00001", state.Connectable)
	if err := f.SetFaults("bmc-00003", sim.Faults{WrongPassword: true}); err != nil {
		t.Fatal(err)
	}
	waitState(t, srv, "bmc-00003", state.NotAuthenticated)
	srv.Close()

	b, _ := f.BMC("bmc-00003")
	attempts := b.Counters().AuthAttempts
	srv2, err := server.New(ctx, server.Config{DataDir: dir, Schedule: sch, Timeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	if srv2.AdminTokenFile != "" {
		t.Fatal("second start created another admin token")
	}
	mv, _ := srv2.Manager.Machine(ctx, "bmc-00003")
	if got := mv.Channels[0].State.State; got != state.NotAuthenticated {
		t.Fatalf("after restart %s, want the stored NotAuthenticated", got)
	}
	monitorRounds(t, srv2, "bmc-00001", 3) // three monitor intervals
	if n := b.Counters().AuthAttempts; n != attempts {
		t.Fatalf("restart retried a refused account (%d attempts): the lockout guard must survive restarts", n-attempts)
	}
}

// waitFor waits (bounded) until cond holds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	if !poll.Wait(10*time.Second, cond) {
		t.Fatal("condition not met within 10s")
	}
}
