package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/poll"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/events/figures"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// The diagnosis end to end: a real server, the API over real HTTP, and a
// simulated fleet over real UDP with one fault per tree branch. Each
// subtest breaks its own machines (or its own enclosure), diagnoses them
// through POST /api/v1/diag and checks the cause, the remedy and, for the
// fixes, what autocorrect changed and that the channel works again.

func diagFleet() sim.Config {
	return sim.Config{Count: 40, Seed: 23, Accounts: sim.Accounts{Operator: true},
		Enclosures: []sim.EnclosureConfig{
			{Name: "enc-a", Blades: 3}, // 1-3: the whole enclosure down
			{Name: "enc-b", Blades: 3}, // 4-6: EM card silent, blade 4 silent
			{Name: "enc-c", Blades: 3}, // 7-9: every blade silent, EM fine
			{Name: "enc-d", Blades: 3}, // 10: EM↔BMC link broken; 11: dead BMC
			{Name: "enc-e", Blades: 3}, // 13: LAN side gone, EM sees it
		}}
}

// fakeRates and fakeFleet stand in for internal/events' rate and fleet
// detectors (gather.RateSource, gather.FleetSource).
type fakeRates struct{ r diag.Rates }

func (f fakeRates) ChannelRates(context.Context, int64) (diag.Rates, error) { return f.r, nil }

type fakeFleet struct {
	mu sync.Mutex
	s  []diag.Spread
}

func (f *fakeFleet) Spread(context.Context, int64) ([]diag.Spread, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.s), nil
}

func (f *fakeFleet) set(s ...diag.Spread) {
	f.mu.Lock()
	f.s = s
	f.mu.Unlock()
}

// diagnose runs one diagnosis request and returns the results by machine.
func diagnose(t *testing.T, c *client.Client, req wire.DiagRequest) (map[string]manager.DiagResult, manager.DiagSummary) {
	t.Helper()
	out := map[string]manager.DiagResult{}
	sum, err := c.Diag(ctx(t), req, func(r manager.DiagResult) { out[r.Machine] = r })
	if err != nil {
		t.Fatalf("diag %+v: %v", req, err)
	}
	if sum.Diagnosed != len(out) {
		t.Fatalf("summary %+v for %d results", sum, len(out))
	}
	return out, sum
}

// want checks a result's cause and that its words name what matters.
func want(t *testing.T, r manager.DiagResult, cause diag.Cause, words ...string) {
	t.Helper()
	d := r.Diagnosis
	text := strings.Join(append(append([]string{d.Summary, d.Remedy}, d.Evidence...), d.RuledOut...), "\n")
	if d.Cause != cause {
		t.Fatalf("%s: cause %s (%s/%s, steps %v), want %s\n%s", r.Machine, d.Cause, r.State, r.Reason, r.Steps, cause, text)
	}
	for _, w := range words {
		if !strings.Contains(text, w) {
			t.Errorf("%s: diagnosis lacks %q\n%s", r.Machine, w, text)
		}
	}
}

func waitState(t *testing.T, c *client.Client, name string, ok func(store.ChannelState) bool) store.ChannelState {
	t.Helper()
	var mv manager.MachineView
	var err error
	if !poll.Wait(15*time.Second, func() bool {
		mv, err = c.Machine(ctx(t), name)
		return err == nil && len(mv.Channels) > 0 && ok(mv.Channels[0].State)
	}) {
		t.Fatalf("%s: state never reached: %+v %v", name, mv.Channels, err)
	}
	return mv.Channels[0].State
}

// holdSessions opens n sessions on a BMC from source ("" = this host), one
// engine each, as admin, and leaves them open.
func holdSessions(t *testing.T, e *apitest.Env, bmc, source string, n int) []*ipmi.Session {
	t.Helper()
	b, _ := e.Fleet.BMC(bmc)
	var out []*ipmi.Session
	for i := 0; i < n; i++ {
		cfg := ipmi.Config{Sockets: 1}
		if source != "" {
			cfg.Source = netip.MustParseAddr(source)
		}
		eng, err := ipmi.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { eng.Close() })
		s, err := eng.Open(ctx(t), b.Addr(), ipmi.Credentials{User: sim.AdminUser, Password: []byte(e.Fleet.Password())})
		if err != nil {
			t.Fatalf("holding session %d on %s: %v", i, bmc, err)
		}
		out = append(out, s)
	}
	return out
}

func TestDiagnosisEndToEnd(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, apitest.Options{Subnet: 93, Fleet: diagFleet()})
	e.Server.Manager.Diag.BusyAttempts, e.Server.Manager.Diag.BusyWait = 5, 400*time.Millisecond
	e.ImportFleet(t)
	adm, op, view := e.Client(t, store.RoleAdmin), e.Client(t, store.RoleOperator), e.Client(t, store.RoleViewer)
	f := e.Fleet

	// Everything is checked once while healthy: the history then knows
	// every channel worked.
	var n, total int
	if !poll.Wait(20*time.Second, func() bool {
		ms, err := adm.Machines(ctx(t), client.MachineQuery{})
		if err != nil {
			t.Fatal(err)
		}
		n, total = 0, len(ms.Machines)
		for _, m := range ms.Machines {
			if len(m.Channels) > 0 && m.Channels[0].State.State == state.Connectable {
				n++
			}
		}
		return n == total && n == 40
	}) {
		t.Fatalf("only %d of %d machines Connectable", n, total)
	}
	acct := func(name string) store.Account {
		mv, err := adm.Machine(ctx(t), name)
		if err != nil || len(mv.Channels) == 0 {
			t.Fatalf("%s: %v", name, err)
		}
		return mv.Channels[0].Account
	}
	one := func(t *testing.T, c *client.Client, name string, fix bool) manager.DiagResult {
		t.Helper()
		res, _ := diagnose(t, c, wire.DiagRequest{Machines: []string{name}, Autocorrect: fix})
		return res[name]
	}

	t.Run("Roles", func(t *testing.T) {
		st, b := raw(t, e, store.RoleViewer, "POST", "/api/v1/diag", `{"machines":["bmc-00040"]}`)
		wantError(t, "viewer diag", st, b, 403, "forbidden", "")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/diag", `{"machines":["bmc-00040"],"adopt":true}`)
		wantError(t, "operator adopt", st, b, 403, "forbidden", "")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/diag", `{}`)
		wantError(t, "nothing named", st, b, 400, "invalid_field", "machines")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/diag", `{"all":true,"group":"x"}`)
		wantError(t, "all and a group", st, b, 400, "invalid_field", "all")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/diag", `{"machines":["nope"]}`)
		wantError(t, "unknown machine", st, b, 404, "not_found", "machines")
		st, b = raw(t, e, store.RoleOperator, "POST", "/api/v1/diag", `{"machines":["bmc-00040"],"fix":true}`)
		wantError(t, "unknown field", st, b, 400, "bad_request", "fix")
		_ = view
	})

	t.Run("Healthy", func(t *testing.T) {
		r := one(t, op, "bmc-00040", false)
		want(t, r, diag.CauseHealthy, "nothing to do")
		if !r.Healthy || len(r.Steps) != 0 {
			t.Errorf("healthy: %+v", r)
		}
	})

	t.Run("Trees", func(t *testing.T) {
		t.Run("EnclosureDown", func(t *testing.T) {
			t.Parallel()
			f.SetEnclosureDown("enc-a", true)
			r := one(t, op, "bmc-00001", false)
			want(t, r, diag.CauseEnclosureDown, "EM card", "enclosure tray", "0 of the 2 other blades of enclosure enc-a answer")
			if !slices.Equal(r.Steps, []diag.Need{diag.NeedEM, diag.NeedSiblings}) || r.Healthy {
				t.Errorf("steps %v", r.Steps)
			}
		})
		t.Run("EMCard", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("enc-b", sim.Faults{Silent: true})
			f.SetFaults("bmc-00004", sim.Faults{Silent: true})
			want(t, one(t, op, "bmc-00004", false), diag.CauseEMCard, "does not answer a ping", "2 of the 2 other blades")
		})
		t.Run("EnclosureTray", func(t *testing.T) {
			t.Parallel()
			for _, b := range []string{"bmc-00007", "bmc-00008", "bmc-00009"} {
				f.SetFaults(b, sim.Faults{Silent: true})
			}
			want(t, one(t, op, "bmc-00007", false), diag.CauseEnclosureTray, "answers a ping", "tray")
		})
		t.Run("EMBMCPathAndBMCFailed", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00010", sim.Faults{EMLink: true})
			f.SetFaults("bmc-00011", sim.Faults{Silent: true})
			res, _ := diagnose(t, op, wire.DiagRequest{Machines: []string{"bmc-00010", "bmc-00011"}})
			r := res["bmc-00010"]
			want(t, r, diag.CauseEMBMCPath, "identify lamp lit", "reseat the blade in slot 1")
			if !slices.Equal(r.Steps, []diag.Need{diag.NeedEM, diag.NeedSiblings, diag.NeedBladeView, diag.NeedIdentify}) {
				t.Errorf("steps %v", r.Steps)
			}
			want(t, res["bmc-00011"], diag.CauseBMCFailed, "stayed dark", "cold-reset")
			// The lamps were turned off again, and the test is in the audit log.
			for _, n := range []string{"bmc-00010", "bmc-00011"} {
				b, _ := f.BMC(n)
				if b.Status().Identify {
					t.Errorf("%s: identify lamp left on", n)
				}
			}
			es, err := op.Audit(ctx(t), "bmc-00010", 20)
			if err != nil || !slices.ContainsFunc(es, func(a store.AuditEntry) bool { return a.Action == "diag.identify" }) {
				t.Errorf("no diag.identify audit entry: %v %+v", err, es)
			}
		})
		t.Run("BladeLAN", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00013", sim.Faults{Lossy: 1})
			want(t, one(t, op, "bmc-00013", false), diag.CauseBladeLAN, "talks to this blade's BMC fine", "LAN settings")
		})
		t.Run("PortClosed", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00016", sim.Faults{PortClosed: true})
			want(t, one(t, op, "bmc-00016", false), diag.CausePortClosed, "ICMP port unreachable", "enable IPMI over LAN")
		})
		t.Run("RackSilent", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00017", sim.Faults{Silent: true})
			r := one(t, op, "bmc-00017", false)
			want(t, r, diag.CauseBMCUnreachable, "standby power", "switch port")
			if !slices.Equal(r.Steps, []diag.Need{diag.NeedSubnet}) {
				t.Errorf("steps %v", r.Steps)
			}
		})
		t.Run("Hung", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00026", sim.Faults{Malformed: 1})
			// Garbage is told from silence when it reaches a request; a
			// mangled reply can also just look foreign: ask again until
			// the check saw the garbage.
			for i := 0; ; i++ {
				r := one(t, op, "bmc-00026", false)
				if r.Reason == state.ReasonProtocol || r.Reason == state.ReasonStalled || i == 8 {
					want(t, r, diag.CauseBMCHung, "cold-reset")
					break
				}
			}
		})
		t.Run("PasswordChangedOnBMC", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00018", sim.Faults{WrongPassword: true})
			want(t, one(t, op, "bmc-00018", false), diag.CausePasswordChanged, "was changed on the BMC", "accounts set")
		})
		t.Run("UserRemoved", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00019", sim.Faults{UserRemoved: true})
			want(t, one(t, op, "bmc-00019", false), diag.CauseUserRemoved, `user "admin"`, "re-create user admin")
		})
		t.Run("Locked", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00020", sim.Faults{Locked: true})
			r := one(t, op, "bmc-00020", false)
			want(t, r, diag.CauseAccountLocked, "disabled or locked", "unlock or re-enable user admin")
			if r.Reason != state.ReasonLocked {
				t.Errorf("reason %s", r.Reason)
			}
		})
		t.Run("PrivilegeTooLow", func(t *testing.T) {
			t.Parallel()
			user := sim.OperatorUser
			if _, err := op.UpdateAccount(ctx(t), acct("bmc-00036").ID, manager.AccountInput{User: &user}); err != nil {
				t.Fatal(err)
			}
			want(t, one(t, op, "bmc-00036", false), diag.CausePrivilegeTooLow, "grants user operator operator privilege, not the administrator", "asked for operator: granted", "--privilege operator")
		})
		t.Run("PasswordEditWrong", func(t *testing.T) {
			t.Parallel()
			pw := "not-the-password"
			if _, err := op.UpdateAccount(ctx(t), acct("bmc-00037").ID, manager.AccountInput{Password: &pw}); err != nil {
				t.Fatal(err)
			}
			want(t, one(t, op, "bmc-00037", false), diag.CausePasswordEditWrong, "set in the account at", "back to the BMC's")
		})
		t.Run("CipherSuiteAutocorrect", func(t *testing.T) {
			t.Parallel()
			a := acct("bmc-00021")
			three := 3
			if _, err := op.UpdateAccount(ctx(t), a.ID, manager.AccountInput{CipherSuite: &three}); err != nil {
				t.Fatal(err)
			}
			f.SetFaults("bmc-00021", sim.Faults{CipherSuites: sim.Suites(17)})
			r := one(t, op, "bmc-00021", false)
			want(t, r, diag.CauseSuiteMismatch, "offers cipher suites 17", "a login with suite 17 succeeded")
			if len(r.Changes) != 0 || acct("bmc-00021").CipherSuite != 3 {
				t.Fatalf("changed without --autocorrect: %+v", r.Changes)
			}
			r = one(t, op, "bmc-00021", true)
			if len(r.Changes) != 1 || r.Changes[0].Result != "ok" || !r.Corrected ||
				r.Changes[0].Line != "changed the cipher suite of bmc-00021's account "+fmt.Sprint(a.ID)+" from 3 to 17 because the BMC offers only 17 and a login with 17 succeeded" {
				t.Fatalf("autocorrect: %+v", r)
			}
			if acct("bmc-00021").CipherSuite != 17 || r.After == nil || r.After.State != state.Connectable {
				t.Errorf("after: %+v %+v", acct("bmc-00021"), r.After)
			}
		})
		t.Run("SwapAutocorrect", func(t *testing.T) {
			t.Parallel()
			a22, a23 := acct("bmc-00022"), acct("bmc-00023")
			if err := f.Swap("bmc-00022", "bmc-00023"); err != nil {
				t.Fatal(err)
			}
			// Both machines are diagnosed and both propose the swap: it is
			// applied once.
			res, sum := diagnose(t, op, wire.DiagRequest{Machines: []string{"bmc-00022", "bmc-00023"}, Autocorrect: true})
			applied := 0
			for _, n := range []string{"bmc-00022", "bmc-00023"} {
				r := res[n]
				if r.Healthy {
					// Diagnosed again after the other machine's fix.
					if !r.Corrected || !strings.Contains(r.Diagnosis.Evidence[0], "fixed in this run for ") {
						t.Errorf("%s: %+v", n, r)
					}
					continue
				}
				want(t, r, diag.CauseAddressesSwapped, "are swapped", "swap the two accounts' addresses")
				for _, c := range r.Changes {
					if c.Result == "ok" {
						applied++
						if !strings.HasPrefix(c.Line, "changed the addresses of ") || !strings.Contains(c.Line, " because ") {
							t.Errorf("line %q", c.Line)
						}
					}
				}
			}
			if applied != 1 || sum.Corrected < 1 {
				t.Fatalf("swap applied %d times, summary %+v", applied, sum)
			}
			b22, b23 := acct("bmc-00022"), acct("bmc-00023")
			if b22.Address != a23.Address || b22.Port != a23.Port || b23.Address != a22.Address {
				t.Errorf("addresses after the fix: %s:%d %s:%d", b22.Address, b22.Port, b23.Address, b23.Port)
			}
			waitState(t, op, "bmc-00022", func(s store.ChannelState) bool { return s.State == state.Connectable })
			waitState(t, op, "bmc-00023", func(s store.ChannelState) bool { return s.State == state.Connectable })
			for _, n := range []string{"bmc-00022", "bmc-00023"} {
				es, _ := op.Audit(ctx(t), n, 20)
				if !slices.ContainsFunc(es, func(a store.AuditEntry) bool {
					return a.Action == "diag.swap_addresses" && a.Result == "ok" && strings.Contains(a.Detail, "because")
				}) {
					t.Errorf("%s: swap not audited: %+v", n, es)
				}
			}
		})
		t.Run("AddressReused", func(t *testing.T) {
			t.Parallel()
			f.Swap("bmc-00032", "bmc-00033")
			f.SetFaults("bmc-00032", sim.Faults{Silent: true}) // now at 33's address, silent
			want(t, one(t, op, "bmc-00032", false), diag.CauseAddressReused, "bmc-00033's BMC now answers at bmc-00032's address")
		})
		t.Run("UnknownBMC", func(t *testing.T) {
			t.Parallel()
			if err := adm.DeleteMachine(ctx(t), "bmc-00035"); err != nil {
				t.Fatal(err)
			}
			f.Swap("bmc-00034", "bmc-00035")
			f.SetFaults("bmc-00035", sim.Faults{WrongPassword: true})
			want(t, one(t, op, "bmc-00034", false), diag.CauseUnknownBMC, "not in the inventory", "refuses this machine's credentials")
		})
		t.Run("MotherboardReplacedAdopt", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00024", sim.Faults{GUIDReplaced: true})
			b, _ := f.BMC("bmc-00024")
			newGUID := b.GUID()
			r := one(t, op, "bmc-00024", true)
			want(t, r, diag.CauseMotherboardReplaced, "same model", "lightsout adopt bmc-00024")
			if len(r.Changes) != 0 || r.Corrected {
				t.Fatalf("adopted without --adopt: %+v", r.Changes)
			}
			res, _ := diagnose(t, adm, wire.DiagRequest{Machines: []string{"bmc-00024"}, Adopt: true})
			r = res["bmc-00024"]
			if len(r.Changes) != 1 || r.Changes[0].Result != "ok" || !strings.HasPrefix(r.Changes[0].Line, "changed the System GUID of bmc-00024 from ") {
				t.Fatalf("adopt: %+v", r.Changes)
			}
			mv, _ := adm.Machine(ctx(t), "bmc-00024")
			if !strings.EqualFold(mv.GUID, newGUID.RFC4122()) && mv.GUID != newGUID.String() {
				t.Errorf("GUID %s, want %s", mv.GUID, newGUID)
			}
			waitState(t, op, "bmc-00024", func(s store.ChannelState) bool { return s.State == state.Connectable })
		})
		t.Run("AddressChanged", func(t *testing.T) {
			t.Parallel()
			// bmc-00031's address is freed and its BMC silenced: bmc-00030's
			// account is then pointed there by mistake.
			spare := acct("bmc-00031")
			if err := adm.DeleteMachine(ctx(t), "bmc-00031"); err != nil {
				t.Fatal(err)
			}
			f.SetFaults("bmc-00031", sim.Faults{Silent: true})
			pw := f.Password() // a moved account's password is given again
			if _, err := op.UpdateAccount(ctx(t), acct("bmc-00030").ID, manager.AccountInput{Address: spare.Address, Port: spare.Port, Password: &pw}); err != nil {
				t.Fatal(err)
			}
			r := one(t, op, "bmc-00030", false)
			want(t, r, diag.CauseAddressChanged, "still at its previous address", "set the account's address back")
			if !slices.Equal(r.Steps, []diag.Need{diag.NeedOldAddress}) {
				t.Errorf("steps %v", r.Steps)
			}
		})
		t.Run("CredentialsFixedRecheck", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00038", sim.Faults{WrongPassword: true})
			refused := waitState(t, op, "bmc-00038", func(s store.ChannelState) bool { return s.State == state.NotAuthenticated })
			// The BMC's password is put back and the account re-entered
			// behind the monitor's back (another instance, a script on the
			// database): the monitor still holds the refusal.
			f.ClearFaults("bmc-00038")
			a, err := e.Server.Store.Account(ctx(t), acct("bmc-00038").ID)
			if err != nil {
				t.Fatal(err)
			}
			// The edit comes after the refusal.
			poll.Until(t, time.Second, "the clock passes the refusal", func() bool { return time.Now().After(refused.CheckedAt) })
			a.CredentialsChangedAt = time.Now()
			if err := e.Server.Store.UpdateAccount(ctx(t), &a); err != nil {
				t.Fatal(err)
			}
			r := one(t, op, "bmc-00038", true)
			want(t, r, diag.CauseCredentialsFixed, "works again", "re-check")
			if len(r.Changes) != 1 || r.Changes[0].Result != "ok" || !r.Corrected ||
				!strings.HasPrefix(r.Changes[0].Line, "changed the declared state of bmc-00038 from NotAuthenticated to Connectable because its credentials were edited at") {
				t.Fatalf("recheck: %+v", r)
			}
		})
		t.Run("UserMissingAfterReplacement", func(t *testing.T) {
			t.Parallel()
			// The board is swapped and the new BMC lacks the user; the
			// operator adopts the new GUID from the asset sheet.
			f.SetFaults("bmc-00039", sim.Faults{GUIDReplaced: true, UserRemoved: true})
			waitState(t, op, "bmc-00039", func(s store.ChannelState) bool { return s.Reason == state.ReasonUnknownUser })
			b, _ := f.BMC("bmc-00039")
			if _, err := adm.Adopt(ctx(t), "bmc-00039", b.GUID().String()); err != nil {
				t.Fatal(err)
			}
			want(t, one(t, op, "bmc-00039", false), diag.CauseUserMissingAfterSwap, "the System GUID was adopted", "re-create user admin on the new BMC")
		})
		t.Run("Cipher0Only", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00029", sim.Faults{CipherSuites: sim.Suites(0)})
			r := one(t, op, "bmc-00029", true)
			want(t, r, diag.CauseCipher0Only, "offers cipher suites 0", "only accept cipher suite 0", "enable cipher suite 17 (or 3)")
			if r.Reason != state.ReasonNoCipherSuite || !slices.Equal(r.Steps, []diag.Need{diag.NeedSuites}) || len(r.Changes) != 0 {
				t.Errorf("reason %s, steps %v, changes %+v", r.Reason, r.Steps, r.Changes)
			}
		})
		t.Run("NoCommonSuite", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00014", sim.Faults{CipherSuites: sim.Suites(1, 2)})
			r := one(t, op, "bmc-00014", true)
			want(t, r, diag.CauseNoCommonSuite, "offers cipher suites 1, 2", "enable cipher suite 17")
			if len(r.Changes) != 0 {
				t.Errorf("a weak suite was pinned: %+v", r.Changes)
			}
		})
		t.Run("SessionTableFull", func(t *testing.T) {
			t.Parallel()
			f.SetFaults("bmc-00025", sim.Faults{SlotsFull: true})
			r := one(t, op, "bmc-00025", false)
			want(t, r, diag.CauseSessionTableFull, "5 login attempts", "idle timeout")
		})
		t.Run("StaleOwnSessionsAutocorrect", func(t *testing.T) {
			t.Parallel()
			held := holdSessions(t, e, "bmc-00027", "", 4)
			bmc, _ := f.BMC("bmc-00027")
			refused := bmc.Counters().SessionsRefused
			var r manager.DiagResult
			done := make(chan struct{})
			go func() {
				defer close(done)
				res, _ := diagnose(t, op, wire.DiagRequest{Machines: []string{"bmc-00027"}, Autocorrect: true})
				r = res["bmc-00027"]
			}()
			// The fresh check sees the table full (refused for each allowed
			// suite, 17 then 3: a 0x01 for one suite may mean "not this
			// suite", LAN Auth #28); then one slot frees for the census.
			poll.Until(t, 10*time.Second, "the fresh check refused for both suites", func() bool { return bmc.Counters().SessionsRefused >= refused+2 })
			held[0].Close(ctx(t))
			<-done
			want(t, r, diag.CauseStaleOwnSessions, "left open by this host as admin")
			if len(r.Changes) != 1 || r.Changes[0].Result != "ok" || !strings.Contains(r.Changes[0].Line, "from open to closed because they hold 3 of its 4 session slots") {
				t.Fatalf("close: %+v", r.Changes)
			}
			b, _ := f.BMC("bmc-00027")
			if c := b.Counters(); c.SessionsOpen != 0 {
				t.Errorf("%d sessions still open", c.SessionsOpen)
			}
		})
		t.Run("CompetingConsoles", func(t *testing.T) {
			t.Parallel()
			held := holdSessions(t, e, "bmc-00028", "127.0.0.2", 4)
			bmc, _ := f.BMC("bmc-00028")
			refused := bmc.Counters().SessionsRefused
			var r manager.DiagResult
			done := make(chan struct{})
			go func() {
				defer close(done)
				res, _ := diagnose(t, op, wire.DiagRequest{Machines: []string{"bmc-00028"}, Autocorrect: true})
				r = res["bmc-00028"]
			}()
			poll.Until(t, 10*time.Second, "the fresh check refused for both suites", func() bool { return bmc.Counters().SessionsRefused >= refused+2 })
			held[0].Close(ctx(t))
			<-done
			want(t, r, diag.CauseCompetingConsoles, "held by another console", "127.0.0.2")
			if len(r.Changes) != 0 {
				t.Errorf("another console's sessions were touched: %+v", r.Changes)
			}
		})
	})
}

// TestDiagnosisNetworkSegment: most of a subnet silent is the network's
// fault, not the BMC's.
func TestDiagnosisNetworkSegment(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, apitest.Options{Subnet: 94, Fleet: sim.Config{Count: 5, Seed: 4}})
	e.ImportFleet(t)
	op := e.Client(t, store.RoleOperator)
	for _, n := range []string{"bmc-00001", "bmc-00002", "bmc-00003", "bmc-00004", "bmc-00005"} {
		waitState(t, op, n, func(s store.ChannelState) bool { return s.State == state.Connectable })
	}
	for _, n := range []string{"bmc-00001", "bmc-00002", "bmc-00003", "bmc-00004"} {
		e.Fleet.SetFaults(n, sim.Faults{Silent: true})
	}
	for _, n := range []string{"bmc-00002", "bmc-00003", "bmc-00004"} {
		waitState(t, op, n, func(s store.ChannelState) bool { return s.State == state.NotResponding })
	}
	res, sum := diagnose(t, op, wire.DiagRequest{Machines: []string{"bmc-00001"}})
	want(t, res["bmc-00001"], diag.CauseNetworkSegment, "3 of the 4 other channels", "VLAN")
	if sum.Failing != 1 {
		t.Errorf("summary %+v", sum)
	}
}

// TestDiagnosisDegraded: a lossy BMC, with the rate and fleet figures
// coming from stand-in sources (the server's own are the event detectors':
// TestDiagnosisDegradedFleet).
func TestDiagnosisDegraded(t *testing.T) {
	t.Parallel()
	e := apitest.Start(t, apitest.Options{Subnet: 95, Fleet: sim.Config{Count: 3, Seed: 6}})
	// A silence limit above the handshake's 1 s retransmission, so a lossy
	// BMC is Degraded rather than stalled.
	e.Server.Manager.Diag.Timeout = 2500 * time.Millisecond
	fl := &fakeFleet{}
	e.Server.Manager.Diag.Fleet = fl
	e.Server.Manager.Diag.Rates = fakeRates{diag.Rates{Window: time.Hour, Requests: 60, Timeouts: 12, Retransmits: 40, Source: "the last hour of checks"}}
	e.ImportFleet(t)
	op := e.Client(t, store.RoleOperator)
	f := e.Fleet
	one := func(name string) manager.DiagResult {
		res, _ := diagnose(t, op, wire.DiagRequest{Machines: []string{name}})
		return res[name]
	}
	waitState(t, op, "bmc-00002", func(s store.ChannelState) bool { return s.State == state.Connectable })
	// Loss makes the BMC answer after retries (Degraded); too much makes
	// its handshake stall: the check is repeated until it is Degraded.
	f.SetFaults("bmc-00002", sim.Faults{Lossy: 0.15})
	degraded := map[diag.Cause]bool{diag.CauseBMCOverloaded: true, diag.CauseFirmwareWide: true}
	try := func(spread ...diag.Spread) manager.DiagResult {
		fl.set(spread...)
		for i := 0; ; i++ {
			r := one("bmc-00002")
			if degraded[r.Diagnosis.Cause] || i == 12 {
				return r
			}
		}
	}
	r := try()
	want(t, r, diag.CauseBMCOverloaded, "the last hour of checks: 60 requests, 12 timeouts (20%)", "cold-reset")
	r = try(diag.Spread{Dimension: "firmware", Value: "Dell 4.40", Peers: 6, Affected: 5})
	want(t, r, diag.CauseFirmwareWide, "5 of the 6 other machines in firmware Dell 4.40")
}

// TestDiagnosisDegradedFleet: the Degraded tree's rates and fleet
// comparison from the server's real sources — the event detectors over
// the monitor's checks (events.Recorder as gather.RateSource and
// gather.FleetSource). The three blades of one enclosure lose packets, and
// so do half the BMCs of one firmware revision: the diagnosis of a blade
// names the enclosure, that of a rack server the firmware, each with the
// monitor's own figures for the BMC.
func TestDiagnosisDegradedFleet(t *testing.T) {
	t.Parallel()
	began := time.Now()
	e := apitest.Start(t, apitest.Options{Subnet: 96,
		Fleet: sim.Config{Count: 20, Seed: 31, Enclosures: []sim.EnclosureConfig{{Name: "enc-l", Blades: 3}},
			Vendors: []sim.Vendor{
				{Name: "dell", ManufacturerID: 674, ProductID: 0x0100, Firmware: "4.40", Weight: 1},
				{Name: "hpe", ManufacturerID: 47196, ProductID: 0x2000, Firmware: "2.72", Weight: 2}}},
		// Checks every second, and a short flood window: a lossy BMC
		// floods at its first lost request and stays flooding, and its
		// rates cover its last few checks.
		Configure: func(c *server.Config) {
			c.Schedule = state.Schedule{Interval: time.Second, Jitter: 0.1, Confirm: 500 * time.Millisecond, MaxBackoff: 2 * time.Second, AuthRetry: 10 * time.Minute}
			c.Events.Flood = events.FloodConfig{Window: 10 * time.Second, Threshold: 6}
		}})
	// A silence limit above the handshake's 1 s retransmission, so a lossy
	// BMC is Degraded rather than stalled.
	e.Server.Manager.Diag.Timeout = 2500 * time.Millisecond
	e.ImportFleet(t)
	op := e.Client(t, store.RoleOperator)
	f := e.Fleet

	// The firmware group: the rack servers running Dell 4.40; the first
	// is diagnosed, and as many others as make half the group lose packets
	// with it (the blades lose packets for the enclosure case).
	const fw = "Dell 4.40"
	var group, lossy []string
	blades := []string{"bmc-00001", "bmc-00002", "bmc-00003"}
	for _, b := range f.BMCs() {
		if b.Enclosure() == "" && events.FirmwareOf(probe.Manufacturer(b.Vendor().ManufacturerID), b.Vendor().Firmware) == fw {
			group = append(group, b.Name())
		}
	}
	if len(group) < 4 {
		t.Fatalf("seed: only %d rack servers run %s: %v", len(group), fw, group)
	}
	target := group[0]
	others := len(group) - 1
	lossy = append(slices.Clone(blades), group[:1+(others+1)/2]...)
	// The subnet (the whole fleet here) must stay below half affected, or
	// the subnet would be blamed first.
	if 2*(len(lossy)-1) >= 19 {
		t.Fatalf("seed: %d lossy BMCs are half the subnet", len(lossy))
	}
	for _, n := range append(blades, target) {
		waitState(t, op, n, func(s store.ChannelState) bool { return s.State == state.Connectable })
	}
	for _, n := range lossy {
		f.SetFaults(n, sim.Faults{Lossy: 0.2})
	}
	acct := func(t *testing.T, name string) int64 {
		t.Helper()
		mv, err := op.Machine(ctx(t), name)
		if err != nil || len(mv.Channels) == 0 {
			t.Fatalf("%s: %v", name, err)
		}
		return mv.Channels[0].Account.ID
	}
	// Bounded wait: the detectors see the trouble spread (every lossy
	// BMC degraded, flooding or not responding by the monitor's checks).
	spread := func(t *testing.T, name, dim string, affected int) diag.Spread {
		t.Helper()
		id := acct(t, name)
		var ss []diag.Spread
		var err error
		var got diag.Spread
		if !poll.Wait(10*time.Second, func() bool {
			ss, err = figures.Source{Recorder: e.Server.Events}.Spread(ctx(t), id)
			for _, s := range ss {
				if s.Dimension == dim && s.Affected >= affected {
					got = s
					return true
				}
			}
			return false
		}) {
			t.Fatalf("%s: %s spread never reached %d affected: %+v %v", name, dim, affected, ss, err)
		}
		return got
	}
	degradedCauses := map[diag.Cause]bool{diag.CauseEnclosureWide: true, diag.CauseSubnetWide: true, diag.CauseFirmwareWide: true,
		diag.CauseCompetingPollers: true, diag.CauseBMCOverloaded: true, diag.CauseOccasionalRetry: true}
	// A lossy BMC's own check is Degraded most of the time, clean or
	// stalled otherwise: diagnose until it is Degraded (bounded).
	degraded := func(t *testing.T, name string) manager.DiagResult {
		t.Helper()
		for i := 0; ; i++ {
			res, _ := diagnose(t, op, wire.DiagRequest{Machines: []string{name}})
			r := res[name]
			if degradedCauses[r.Diagnosis.Cause] || i == 10 {
				return r
			}
		}
	}

	t.Run("Enclosure", func(t *testing.T) {
		t.Parallel()
		s := spread(t, "bmc-00001", "enclosure", 2)
		if s.Value != "enc-l" || s.Peers != 2 {
			t.Fatalf("spread %+v", s)
		}
		r := degraded(t, "bmc-00001")
		want(t, r, diag.CauseEnclosureWide, "2 of the 2 other machines in enclosure enc-l are degraded or not responding too",
			"the monitor's checks over the last 10s", "EM card")
		if !slices.Equal(r.Steps, []diag.Need{diag.NeedRates, diag.NeedFleet}) {
			t.Errorf("steps %v", r.Steps)
		}
	})
	t.Run("Firmware", func(t *testing.T) {
		t.Parallel()
		s := spread(t, target, "firmware", (others+1)/2)
		if s.Value != fw || s.Peers != others {
			t.Fatalf("spread %+v", s)
		}
		r := degraded(t, target)
		want(t, r, diag.CauseFirmwareWide, fmt.Sprintf("of the %d other machines in firmware %s are degraded or not responding too", others, fw),
			"the monitor's checks over the last 10s", "the subnet ", "update or roll back the firmware")
		// The rates are the monitor's, not a sample taken now.
		if strings.Contains(strings.Join(r.Diagnosis.Evidence, "\n"), "sampled now") {
			t.Errorf("rates sampled instead of the monitor's: %v", r.Diagnosis.Evidence)
		}
	})
	t.Cleanup(func() {
		t.Logf("%d lossy BMCs (firmware group %v); %s", len(lossy), group, time.Since(began).Round(time.Millisecond))
	})
}

// TestDiagnosisFromStoredState: what the monitor holds against what a
// fresh check finds, made deterministic by a long check interval (the
// monitor does not check again during the test): a fault cleared right
// before the diagnosis gives recovered and busy_cleared. And a blade whose
// enclosure manager has no credentials in the inventory, so it cannot be
// asked: blade_bmc, with the remedy to finish the test by hand.
func TestDiagnosisFromStoredState(t *testing.T) {
	t.Parallel()
	began := time.Now()
	e := apitest.Start(t, apitest.Options{Subnet: 99,
		Fleet: sim.Config{Count: 5, Seed: 8, Enclosures: []sim.EnclosureConfig{{Name: "enc-s", Blades: 3}}},
		Configure: func(c *server.Config) {
			c.Schedule = state.Schedule{Interval: 10 * time.Minute, Confirm: 10 * time.Minute, MaxBackoff: 10 * time.Minute, AuthRetry: 10 * time.Minute}
		}})
	e.ImportFleet(t)
	op := e.Client(t, store.RoleOperator)
	f := e.Fleet
	// Imported channels are first checked over one interval: check them now.
	all := []string{"bmc-00001", "bmc-00002", "bmc-00003", "bmc-00004", "bmc-00005"}
	if res, err := op.Check(ctx(t), all, ""); err != nil || len(res) != len(all) {
		t.Fatalf("check: %+v %v", res, err)
	}
	for _, n := range all {
		waitState(t, op, n, func(s store.ChannelState) bool { return s.State == state.Connectable })
	}
	checkNow := func(t *testing.T, name string) store.ChannelState {
		t.Helper()
		res, err := op.Check(ctx(t), []string{name}, "")
		if err != nil || len(res) != 1 || res[0].Skipped != "" {
			t.Fatalf("check %s: %+v %v", name, res, err)
		}
		return res[0].State
	}
	one := func(t *testing.T, name string) manager.DiagResult {
		t.Helper()
		res, _ := diagnose(t, op, wire.DiagRequest{Machines: []string{name}})
		return res[name]
	}

	t.Run("Recovered", func(t *testing.T) {
		t.Parallel()
		f.SetFaults("bmc-00004", sim.Faults{Silent: true})
		if st := checkNow(t, "bmc-00004"); st.State != state.NotResponding {
			t.Fatalf("held %+v", st)
		}
		f.ClearFaults("bmc-00004")
		r := one(t, "bmc-00004")
		want(t, r, diag.CauseRecovered, "the monitor declared it NotResponding", "a check now succeeds", "lightsout history bmc-00004")
		if !r.Healthy || len(r.Steps) != 0 {
			t.Errorf("recovered: %+v", r)
		}
	})
	t.Run("BusyCleared", func(t *testing.T) {
		t.Parallel()
		f.SetFaults("bmc-00005", sim.Faults{SlotsFull: true})
		if st := checkNow(t, "bmc-00005"); st.State != state.Connectable || !slices.Contains(st.Conditions, state.Busy) {
			t.Fatalf("held %+v", st)
		}
		f.ClearFaults("bmc-00005")
		r := one(t, "bmc-00005")
		want(t, r, diag.CauseBusyCleared, "the monitor saw the BMC without a free session slot", "slots are free again", "diagnose again while it is busy")
		if !r.Healthy || !slices.Equal(r.Steps, []diag.Need{diag.NeedSessions}) {
			t.Errorf("busy cleared: %+v", r)
		}
	})
	t.Run("EnclosureManagerWithoutCredentials", func(t *testing.T) {
		t.Parallel()
		en, err := e.Server.Store.Enclosure(ctx(t), "enc-s")
		if err != nil {
			t.Fatal(err)
		}
		en.User, en.Password = "", nil
		if err := e.Server.Store.UpdateEnclosure(ctx(t), &en); err != nil {
			t.Fatal(err)
		}
		f.SetFaults("bmc-00001", sim.Faults{EMLink: true})
		r := one(t, "bmc-00001")
		want(t, r, diag.CauseBladeBMC, "answers a ping", "2 of the 2 other blades of enclosure enc-s answer",
			"holds no user and password for enclosure enc-s", "lightsout enclosures set enc-s", "press its identify button")
		if r.Diagnosis.Confidence != diag.Low || !slices.Equal(r.Steps, []diag.Need{diag.NeedEM, diag.NeedSiblings, diag.NeedBladeView}) {
			t.Errorf("confidence %s, steps %v", r.Diagnosis.Confidence, r.Steps)
		}
	})
	t.Cleanup(func() { t.Logf("%s", time.Since(began).Round(time.Millisecond)) })
}

// importFleetExcept imports the fleet's inventory without the named BMCs:
// they are racked and answer, but nobody has added them yet.
func importFleetExcept(t *testing.T, e *apitest.Env, skip ...string) {
	t.Helper()
	inv := e.Fleet.Inventory("fleet.password")
	inv.Machines = slices.DeleteFunc(inv.Machines, func(m inventory.Machine) bool { return slices.Contains(skip, m.Name) })
	var buf bytes.Buffer
	if err := inventory.WriteYAML(&buf, inv); err != nil {
		t.Fatal(err)
	}
	req := wire.ImportRequest{Format: "yaml", Content: buf.String(), Source: "fleet.yaml",
		Passwords: map[string]string{}, EnclosurePasswords: map[string]string{}}
	for _, m := range inv.Machines {
		req.Passwords[m.Name] = e.Fleet.Password()
	}
	if _, err := e.Client(t, store.RoleAdmin).Import(ctx(t), req); err != nil {
		t.Fatalf("import: %v", err)
	}
}

// TestDiagnosisInventoryHistory: the NotAuthenticated causes decided by the
// inventory's history, each produced for real. A machine added with a
// wrong password (password_never_worked) or a user name the BMC does not
// have (user_name_wrong, never logged in); a working account whose user is
// edited to a misspelt one (user_name_wrong, after the edit); a board swap
// whose new BMC refuses the password, adopted from the asset sheet
// (credentials_after_replacement); and a BMC that refuses without a
// telling status: a BMC key (K_G) the manager does not have makes RAKP 4's
// integrity check fail after the password verified (auth_rejected).
func TestDiagnosisInventoryHistory(t *testing.T) {
	t.Parallel()
	began := time.Now()
	e := apitest.Start(t, apitest.Options{Subnet: 90, Fleet: sim.Config{Count: 5, Seed: 41}})
	f := e.Fleet
	importFleetExcept(t, e, "bmc-00004", "bmc-00005")
	adm, op := e.Client(t, store.RoleAdmin), e.Client(t, store.RoleOperator)
	for _, n := range []string{"bmc-00001", "bmc-00002", "bmc-00003"} {
		waitState(t, op, n, func(s store.ChannelState) bool { return s.State == state.Connectable })
	}
	one := func(t *testing.T, name string) manager.DiagResult {
		t.Helper()
		res, _ := diagnose(t, op, wire.DiagRequest{Machines: []string{name}})
		return res[name]
	}
	refused := func(reason state.Reason) func(store.ChannelState) bool {
		return func(s store.ChannelState) bool { return s.State == state.NotAuthenticated && s.Reason == reason }
	}
	// add registers a racked BMC under a new name, as an operator would.
	add := func(t *testing.T, name, bmc, user, password string) {
		t.Helper()
		b, _ := f.BMC(bmc)
		a := b.Addr()
		if _, err := adm.AddMachine(ctx(t), manager.MachineInput{Name: name, Account: &manager.AccountInput{
			Protocol: "ipmi", Address: a.Addr().String(), Port: int(a.Port()), User: &user, Password: &password}}); err != nil {
			t.Fatal(err)
		}
	}
	confidence := func(t *testing.T, r manager.DiagResult, c diag.Confidence) {
		t.Helper()
		if r.Diagnosis.Confidence != c {
			t.Errorf("%s: confidence %s, want %s", r.Machine, r.Diagnosis.Confidence, c)
		}
	}

	// The subtests share the fleet but not its machines; each is short, so
	// they run in turn.
	t.Run("PasswordNeverWorked", func(t *testing.T) {
		add(t, "rack-04", "bmc-00004", sim.AdminUser, "not-the-bmc-password")
		waitState(t, op, "rack-04", refused(state.ReasonWrongPassword))
		r := one(t, "rack-04")
		want(t, r, diag.CausePasswordNeverWorked, "refuses the password of user admin, and this account never logged in",
			"it has never logged in", "set the account's password to the BMC's")
		confidence(t, r, diag.Medium)
	})
	t.Run("UserNameWrongNeverWorked", func(t *testing.T) {
		// The vendor's usual name typed for a BMC whose user is admin.
		add(t, "rack-05", "bmc-00005", "ADMIN", f.Password())
		waitState(t, op, "rack-05", refused(state.ReasonUnknownUser))
		r := one(t, "rack-05")
		want(t, r, diag.CauseUserNameWrong, "does not know user ADMIN, and this account never logged in",
			"it has never logged in", "or create user ADMIN on the BMC")
		confidence(t, r, diag.Medium)
	})
	t.Run("UserNameWrongAfterEdit", func(t *testing.T) {
		mv, err := op.Machine(ctx(t), "bmc-00001")
		if err != nil || len(mv.Channels) == 0 {
			t.Fatalf("bmc-00001: %v", err)
		}
		user := "admn"
		if _, err := op.UpdateAccount(ctx(t), mv.Channels[0].Account.ID, manager.AccountInput{User: &user}); err != nil {
			t.Fatal(err)
		}
		waitState(t, op, "bmc-00001", refused(state.ReasonUnknownUser))
		r := one(t, "bmc-00001")
		want(t, r, diag.CauseUserNameWrong, "does not know user admn, set in the account at", "it last logged in at",
			"the account's credentials were edited at", "correct the user name")
		confidence(t, r, diag.High)
	})
	t.Run("CredentialsAfterReplacement", func(t *testing.T) {
		// The board is swapped and the new BMC came with other credentials:
		// the address answers with a GUID nobody owns and refuses the
		// password, which cannot be told from a stranger at the address
		// until the swap is confirmed.
		f.SetFaults("bmc-00002", sim.Faults{GUIDReplaced: true, WrongPassword: true})
		waitState(t, op, "bmc-00002", func(s store.ChannelState) bool { return s.State == state.Invalid })
		want(t, one(t, "bmc-00002"), diag.CauseUnknownBMC, "refuses this machine's credentials")
		// The operator adopts the new GUID from the asset sheet.
		b, _ := f.BMC("bmc-00002")
		if _, err := adm.Adopt(ctx(t), "bmc-00002", b.GUID().String()); err != nil {
			t.Fatal(err)
		}
		waitState(t, op, "bmc-00002", refused(state.ReasonWrongPassword))
		r := one(t, "bmc-00002")
		want(t, r, diag.CauseReplacedCredentials, "since the hardware was changed (the System GUID was adopted at",
			"the BMC has other credentials", "set user admin's password on the new BMC")
		confidence(t, r, diag.High)
	})
	t.Run("AuthRejected", func(t *testing.T) {
		f.SetFaults("bmc-00003", sim.Faults{BMCKey: true})
		waitState(t, op, "bmc-00003", refused(state.ReasonAuthRejected))
		r := one(t, "bmc-00003")
		want(t, r, diag.CauseAuthRejected, "refused the login of user admin without saying why", "it last logged in at",
			"check user admin on the BMC")
		confidence(t, r, diag.Low)
	})
	t.Cleanup(func() { t.Logf("%s", time.Since(began).Round(time.Millisecond)) })
}

// degradedTree are the Degraded tree's causes.
var degradedTree = map[diag.Cause]bool{diag.CauseEnclosureWide: true, diag.CauseSubnetWide: true, diag.CauseFirmwareWide: true,
	diag.CauseCompetingPollers: true, diag.CauseBMCOverloaded: true, diag.CauseOccasionalRetry: true}

// diagnoseDegraded diagnoses lossy BMCs, all at once, until each went
// down the Degraded tree (bounded): its fresh check, or the monitor's last
// one, needed retries; otherwise the check was clean (or, rarely,
// stalled), and it is diagnosed again.
func diagnoseDegraded(t *testing.T, c *client.Client, names ...string) map[string]manager.DiagResult {
	t.Helper()
	out := map[string]manager.DiagResult{}
	pending := slices.Clone(names)
	for i := 1; len(pending) > 0; i++ {
		res, _ := diagnose(t, c, wire.DiagRequest{Machines: pending})
		var again []string
		for _, n := range pending {
			out[n] = res[n]
			if !degradedTree[res[n].Diagnosis.Cause] && i < 12 {
				again = append(again, n)
			}
		}
		if len(again) < len(pending) {
			t.Logf("%d diagnoses: %d of %v Degraded", i, len(names)-len(again), names)
		}
		pending = again
	}
	return out
}

// degradedConfig checks every second (a lossy BMC's retries show quickly)
// with a silence limit above the handshake's 1 s retransmission, so a
// lossy BMC is Degraded rather than stalled.
func degradedConfig(c *server.Config) {
	c.Schedule = state.Schedule{Interval: time.Second, Jitter: 0.1, Confirm: 500 * time.Millisecond, MaxBackoff: 2 * time.Second, AuthRetry: 10 * time.Minute}
	c.Timeout = 2500 * time.Millisecond
}

// poller is another console polling a BMC: its own engine bound to
// source, logged in as user, reading the chassis status every 100 ms until
// the test ends. It returns the number of polls answered so far.
func poller(t *testing.T, addr netip.AddrPort, source, user, password string) func() int64 {
	t.Helper()
	eng, err := ipmi.New(ipmi.Config{Sockets: 1, Source: netip.MustParseAddr(source)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := eng.Open(ctx(t), addr, ipmi.Credentials{User: user, Password: []byte(password), Privilege: ipmi.PrivilegeOperator})
	if err != nil {
		eng.Close()
		t.Fatalf("poller at %s: %v", source, err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var polls atomic.Int64
	go func() {
		defer close(done)
		for pctx.Err() == nil {
			cctx, stop := context.WithTimeout(pctx, 2*time.Second)
			if _, err := s.ChassisStatus(cctx); err == nil {
				polls.Add(1)
			}
			stop()
			select {
			case <-pctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Close(context.Background())
		eng.Close()
	})
	return polls.Load
}

// TestDiagnosisDegradedAlone: a Degraded BMC whose neighbours are fine (one
// firmware, one subnet, no enclosure), with the server's own rate and
// fleet sources. One is polled by another console at the same time — a
// second manager on 127.0.0.2 logged in as operator (competing_pollers);
// the other only loses a few packets (occasional_retries: the monitor's
// figures stay below the overload thresholds). The loss stands in for the
// slowness of an overloaded BMC: the simulator answers as fast with two
// pollers as with one.
func TestDiagnosisDegradedAlone(t *testing.T) {
	t.Parallel()
	began := time.Now()
	e := apitest.Start(t, apitest.Options{Subnet: 89,
		Fleet: sim.Config{Count: 6, Seed: 43, Accounts: sim.Accounts{Operator: true},
			Vendors: []sim.Vendor{{Name: "dell", ManufacturerID: 674, ProductID: 0x0100, Firmware: "4.40"}}},
		Configure: degradedConfig})
	e.ImportFleet(t)
	op := e.Client(t, store.RoleOperator)
	f := e.Fleet
	for _, n := range []string{"bmc-00001", "bmc-00002", "bmc-00003", "bmc-00004", "bmc-00005", "bmc-00006"} {
		waitState(t, op, n, func(s store.ChannelState) bool { return s.State == state.Connectable })
	}

	// Both are diagnosed in the same runs (they share no group that could
	// be blamed: one of the five peers of each is degraded).
	b, _ := f.BMC("bmc-00002")
	polls := poller(t, b.Addr(), "127.0.0.2", sim.OperatorUser, f.Password())
	f.SetFaults("bmc-00002", sim.Faults{Lossy: 0.15})
	f.SetFaults("bmc-00004", sim.Faults{Lossy: 0.15})
	res := diagnoseDegraded(t, op, "bmc-00002", "bmc-00004")

	t.Run("CompetingPollers", func(t *testing.T) {
		r := res["bmc-00002"]
		want(t, r, diag.CauseCompetingPollers, "other consoles are logged in to the BMC at the same time",
			"held by another console: user operator, operator privilege, from 127.0.0.2:",
			"find the tools at 127.0.0.2", "poll less often", "the monitor's checks over the last")
		if !slices.Equal(r.Steps, []diag.Need{diag.NeedRates, diag.NeedFleet, diag.NeedSessions}) {
			t.Errorf("steps %v", r.Steps)
		}
		if polls() == 0 {
			t.Errorf("the other console never polled")
		}
	})
	t.Run("OccasionalRetries", func(t *testing.T) {
		want(t, res["bmc-00004"], diag.CauseOccasionalRetry, "the BMC answers, with occasional retries", "nothing urgent",
			"the monitor's checks over the last", "competing pollers: no other session is open on the BMC",
			"the subnet ", "the firmware Dell 4.40 as a whole")
	})
	t.Cleanup(func() { t.Logf("%s", time.Since(began).Round(time.Millisecond)) })
}

// TestDiagnosisDegradedSubnet: most BMCs of one /24 lose packets (the
// switch serving it), two stay clean: a lossy rack server's diagnosis
// blames the subnet, with the monitor's figures through the event
// detectors. (The test fleet is one /24 — apitest lays the BMCs out from
// 127.S.N.1, or on 127.0.0.1's ports without root.)
func TestDiagnosisDegradedSubnet(t *testing.T) {
	t.Parallel()
	began := time.Now()
	e := apitest.Start(t, apitest.Options{Subnet: 88, Fleet: sim.Config{Count: 6, Seed: 47},
		Configure: func(c *server.Config) {
			degradedConfig(c)
			// A short flood window: a lossy BMC floods at its first lost
			// request and stays flooding.
			c.Events.Flood = events.FloodConfig{Window: 10 * time.Second, Threshold: 6}
		}})
	e.ImportFleet(t)
	op := e.Client(t, store.RoleOperator)
	f := e.Fleet
	lossy := []string{"bmc-00001", "bmc-00002", "bmc-00003", "bmc-00004"}
	for _, n := range lossy {
		waitState(t, op, n, func(s store.ChannelState) bool { return s.State == state.Connectable })
	}
	for _, n := range lossy {
		f.SetFaults(n, sim.Faults{Lossy: 0.2})
	}
	target, _ := f.BMC("bmc-00001")
	subnet := events.SubnetOf(target.Addr().String())
	mv, err := op.Machine(ctx(t), "bmc-00001")
	if err != nil || len(mv.Channels) == 0 {
		t.Fatalf("bmc-00001: %v", err)
	}
	// Bounded wait: the detectors see the three other lossy BMCs degraded,
	// flooding or not responding.
	var ss []diag.Spread
	if !poll.Wait(15*time.Second, func() bool {
		ss, err = figures.Source{Recorder: e.Server.Events}.Spread(ctx(t), mv.Channels[0].Account.ID)
		if i := slices.IndexFunc(ss, func(s diag.Spread) bool { return s.Dimension == "subnet" }); i >= 0 && ss[i].Affected >= 3 {
			if ss[i].Value != subnet || ss[i].Peers != 5 {
				t.Fatalf("spread %+v, want subnet %s of 5 peers", ss[i], subnet)
			}
			return true
		}
		return false
	}) {
		t.Fatalf("the subnet spread never reached 3 affected: %+v %v", ss, err)
	}
	r := diagnoseDegraded(t, op, "bmc-00001")["bmc-00001"]
	want(t, r, diag.CauseSubnetWide, "the whole subnet "+subnet+" is degraded",
		fmt.Sprintf("of the 5 other machines in subnet %s are degraded or not responding too", subnet),
		"the monitor's checks over the last 10s", "the management network serving that subnet")
	if !slices.Equal(r.Steps, []diag.Need{diag.NeedRates, diag.NeedFleet}) {
		t.Errorf("steps %v", r.Steps)
	}
	t.Cleanup(func() { t.Logf("%s", time.Since(began).Round(time.Millisecond)) })
}
