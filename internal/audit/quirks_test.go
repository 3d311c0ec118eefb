package audit

import (
	"context"
	"slices"
	"testing"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/sim"
)

// TestRunQuirks: the audit against BMCs with the quirks that concern it,
// over real UDP.
//   - unlisted_usable (FreeIPMI bugs doc LAN Auth #15: a disabled suite is
//     still usable): suite 0 is not in Get Channel Cipher Suites, yet a
//     session with it opens; the audit tries it, whatever the list says,
//     and finds cipher0_enabled.
//   - icv_cipher0 (FreeIPMI "integritycheckvalue"): a suite 0 RAKP 4 with
//     an integrity check value where none belongs; the session is taken
//     (FreeIPMI fails "k_g invalid" without -W), cipher0_enabled is found
//     and the quirk is named in the learned profile.
//   - authcap: capabilities that deny IPMI 2.0 do not stop the audit; the
//     own login decides.
func TestRunQuirks(t *testing.T) {
	t.Parallel()
	f := startFleet(t, sim.Config{Count: 3, Seed: 7, Faults: map[string]sim.Faults{
		"bmc-00001": {Cipher0: true, Quirk: sim.QuirkUnlistedUsable},
		"bmc-00002": {Cipher0: true, Quirk: sim.QuirkICVCipher0},
		"bmc-00003": {Quirk: sim.QuirkAuthCaps},
	}})
	eng := newEngine(t)
	bmcs := f.BMCs()
	listed, err := eng.CipherSuites(context.Background(), bmcs[0].Addr())
	if err != nil || slices.Contains(listed, 0) || len(listed) == 0 {
		t.Fatalf("unlisted_usable lists %v (%v): want suites without 0", listed, err)
	}
	reports := auditAll(t, eng, f, Options{})
	for i, want := range [][]Code{{Cipher0Enabled}, {Cipher0Enabled}, nil} {
		r := reports[bmcs[i].Name()]
		if !r.Complete || !slices.Equal(codes(r.Findings), want) {
			t.Errorf("%s (%v): complete %v %s, findings %v, want %v", bmcs[i].Name(), bmcs[i].Faults().Quirk, r.Complete, r.Error, Keys(r.Findings), want)
		}
	}
	if p := eng.Profile(bmcs[1].Addr()); p.Quirks&ipmi.QuirkICVCipher0 == 0 {
		t.Errorf("icv_cipher0 not named: profile %v", p)
	}
	for _, b := range bmcs {
		if n := b.Counters().SessionsOpen; n != 0 {
			t.Errorf("%s: %d sessions left open", b.Name(), n)
		}
	}
}
