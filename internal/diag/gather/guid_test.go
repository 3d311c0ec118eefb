package gather

import (
	"context"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
)

// spellings write a raw GUID the ways operators copy it: from ipmitool
// (its three layouts), from dmidecode (SMBIOS), upper case, without dashes,
// in braces.
var spellings = map[string]func(guid.GUID) string{
	"rfc4122":          guid.GUID.RFC4122,
	"smbios":           guid.GUID.SMBIOS,
	"ipmi":             guid.GUID.IPMI,
	"ipmi-upper-bare":  func(g guid.GUID) string { return strings.ToUpper(strings.ReplaceAll(g.IPMI(), "-", "")) },
	"smbios-braces-up": func(g guid.GUID) string { return "{" + strings.ToUpper(g.SMBIOS()) + "}" },
	"rfc4122-bare":     func(g guid.GUID) string { return strings.ReplaceAll(g.RFC4122(), "-", "") },
}

// register re-pins machine name's GUID to its BMC's GUID spelled by how,
// stored as the manager stores a registration (the spelling, lower case
// and dashed).
func (e *env) register(t *testing.T, name, how string) {
	t.Helper()
	ctx := context.Background()
	b, ok := e.fleet.BMC(name)
	if !ok {
		t.Fatalf("no BMC %s", name)
	}
	g, err := guid.Parse(spellings[how](b.RegisteredGUID()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.st.Machine(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	m.GUID = g.Spelling()
	if err := e.st.UpdateMachine(ctx, &m); err != nil {
		t.Fatal(err)
	}
}

// TestExecutorGUIDLayouts: the Invalid tree's owner lookup and swap check
// find a registered machine whatever layout (and case, dashes, braces) its
// GUID and the stranger's were written in — over real UDP against the
// simulator, for a swap, an address reuse and a motherboard replacement —
// and adoption is proposed only for a GUID nobody owns.
func TestExecutorGUIDLayouts(t *testing.T) {
	pairs := [][2]string{
		{"rfc4122", "rfc4122"},
		{"smbios", "ipmi"}, // the case: an SMBIOS spelling against an IPMI one
		{"ipmi", "smbios"},
		{"ipmi-upper-bare", "rfc4122"},
		{"smbios-braces-up", "ipmi-upper-bare"},
		{"rfc4122-bare", "smbios"},
	}
	for _, p := range pairs {
		t.Run(p[0]+"/"+p[1], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := context.Background()
			e.register(t, "bmc-00001", p[0])
			e.register(t, "bmc-00002", p[1])
			e.register(t, "bmc-00003", p[0])
			e.register(t, "bmc-00004", p[1])
			m1, a1 := e.machine(t, "bmc-00001")
			m2, a2 := e.machine(t, "bmc-00002")
			m3, a3 := e.machine(t, "bmc-00003")

			// Registered this way, the channel is healthy: the check
			// matches the layout.
			if d := e.x.Run(ctx, m1, a1).Diagnosis; d.Cause != CauseHealthy {
				t.Fatalf("before any fault: %s: %s", d.Cause, d.Summary)
			}

			// A swap: each address answers with the other's GUID.
			if err := e.fleet.Swap("bmc-00001", "bmc-00002"); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				m     store.Machine
				a     store.Account
				other store.Account
				owner string
			}{{m1, a1, a2, "bmc-00002"}, {m2, a2, a1, "bmc-00001"}} {
				rep := e.x.Run(ctx, c.m, c.a)
				d := rep.Diagnosis
				if d.Cause != CauseAddressesSwapped || d.Confidence != High || rep.Facts.Owner == nil || rep.Facts.Owner.Name != c.owner {
					t.Fatalf("%s swapped: %s (%s) owner %+v: %s\n%s", c.m.Name, d.Cause, d.Confidence, rep.Facts.Owner, d.Summary, strings.Join(d.Evidence, "\n"))
				}
				if len(d.Actions) != 1 || d.Actions[0].Kind != ActSwapAddresses || d.Actions[0].OtherAccountID != c.other.ID {
					t.Errorf("%s swapped: actions %+v", c.m.Name, d.Actions)
				}
			}

			// An address reuse: bmc-00002's BMC answers at bmc-00001's
			// address, bmc-00001's BMC (now at bmc-00002's) is silent.
			if err := e.fleet.SetFaults("bmc-00001", sim.Faults{Silent: true}); err != nil {
				t.Fatal(err)
			}
			rep := e.x.Run(ctx, m1, a1)
			d := rep.Diagnosis
			if d.Cause != CauseAddressReused || d.Confidence != High || !strings.Contains(d.Summary, "bmc-00002's BMC now answers at bmc-00001's address") {
				t.Fatalf("reused: %s (%s): %s\n%s", d.Cause, d.Confidence, d.Summary, strings.Join(d.Evidence, "\n"))
			}
			if len(d.Actions) != 0 {
				t.Errorf("reused: actions %+v (adoption would give bmc-00001 bmc-00002's identity)", d.Actions)
			}
			e.fleet.ClearFaults("bmc-00001")
			if err := e.fleet.Swap("bmc-00001", "bmc-00002"); err != nil {
				t.Fatal(err)
			}

			// A motherboard replacement: a GUID nobody owns, adopted only
			// with --adopt, and it is the BMC's new one.
			if err := e.fleet.SetFaults("bmc-00003", sim.Faults{GUIDReplaced: true}); err != nil {
				t.Fatal(err)
			}
			rep = e.x.Run(ctx, m3, a3)
			d = rep.Diagnosis
			if d.Cause != CauseMotherboardReplaced || d.Confidence != Medium || len(d.Actions) != 1 || d.Actions[0].Kind != ActAdopt || !d.Actions[0].NeedsAdopt {
				t.Fatalf("replaced: %s (%s) %+v: %s\n%s", d.Cause, d.Confidence, d.Actions, d.Summary, strings.Join(d.Evidence, "\n"))
			}
			b3, _ := e.fleet.BMC("bmc-00003")
			ng, err := guid.Parse(d.Actions[0].GUID)
			if err != nil || !b3.GUID().Matches(ng) {
				t.Errorf("adopts %q, the BMC reports %s", d.Actions[0].GUID, b3.GUID())
			}
			for _, n := range []string{"bmc-00001", "bmc-00002", "bmc-00004"} {
				o, _ := e.fleet.BMC(n)
				if guid.Same(ng, guid.GUID(o.RegisteredGUID())) {
					t.Errorf("the adopted GUID %s is %s's", d.Actions[0].GUID, n)
				}
			}
			e.fleet.ClearFaults("bmc-00003")

			// The replaced board of bmc-00003 turns out to be bmc-00004's
			// (the boards were swapped between the two servers): that is
			// a reuse of bmc-00004's identity, never an adoption.
			if err := e.fleet.Swap("bmc-00003", "bmc-00004"); err != nil {
				t.Fatal(err)
			}
			if err := e.fleet.SetFaults("bmc-00003", sim.Faults{Silent: true}); err != nil {
				t.Fatal(err)
			}
			d = e.x.Run(ctx, m3, a3).Diagnosis
			if d.Cause != CauseAddressReused || len(d.Actions) != 0 {
				t.Fatalf("bmc-00004's board at bmc-00003: %s %+v", d.Cause, d.Actions)
			}
		})
	}
}
