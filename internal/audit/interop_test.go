package audit

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/peertest"
	"github.com/lightsout/lightsout/internal/probe"
)

// TestInteropOpenIPMISim audits OpenIPMI's ipmi_sim, a BMC not written by
// us, configured with IPMI 1.5 auth types none and straight password and a
// second account left at the generic (Supermicro) default ADMIN/ADMIN. The
// account pins cipher suite 3, as an inventory must for ipmi_sim: it
// answers an Open Session for suite 17 with a 2-byte error the engine
// takes for garbage. (ipmi_sim also accepts cipher suite 0 here; that is
// logged, not required, as it may differ between OpenIPMI versions.)
func TestInteropOpenIPMISim(t *testing.T) {
	t.Parallel()
	addr, eng := startIPMISimForTest(t)
	r := Run(context.Background(), eng, probe.Target{Name: "ipmi-sim", Addr: addr, User: "admin", Password: []byte("audit-pw-1"),
		CipherSuite: 3, Timeout: 2 * time.Second})
	t.Logf("findings %v; checks %+v; error %q", Keys(r.Findings), r.Checks, r.Error)
	if !r.Complete {
		t.Fatalf("incomplete: %s", r.Error)
	}
	for _, k := range []string{"weak_auth:none", "weak_auth:straight_password", "default_password:ADMIN"} {
		if !slices.Contains(Keys(r.Findings), k) {
			t.Errorf("finding %s missing: %v", k, Keys(r.Findings))
		}
	}
	if st := eng.Stats(); st.SessionsOpen != 0 || st.SessionsOpened != st.SessionsClosed {
		t.Errorf("engine sessions: %+v", st)
	}
}

// startIPMISimForTest runs ipmi_sim on a free loopback port (stopped by
// PID when the test ends) and returns its address and an engine.
func startIPMISimForTest(t *testing.T) (netip.AddrPort, *ipmi.Engine) {
	t.Helper()
	lan := `    priv_limit admin
    allowed_auths_callback none md5 straight
    allowed_auths_user none md5 straight
    allowed_auths_operator none md5 straight
    allowed_auths_admin none md5 straight
    guid a123456789abcdef1032547698badcfe
  endlan
  user 2 true "admin" "audit-pw-1" admin 10 md5 none straight
  user 3 true "ADMIN" "ADMIN" admin 10 md5
`
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n"
	eng := newEngine(t)
	sim := peertest.StartIPMISim(t, "lightsout-audit", lan, emu, func(addr netip.AddrPort) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := eng.Ping(ctx, addr)
		return err == nil
	})
	return sim.Addr, eng
}
