package audit

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
	bin := peertest.Need(t, "ipmi_sim")[0]
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().(*net.UDPAddr).AddrPort()
	c.Close()
	dir := t.TempDir()
	conf := `name "lightsout-audit"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ` + strconv.Itoa(int(addr.Port())) + `
    priv_limit admin
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
	os.WriteFile(filepath.Join(dir, "lan.conf"), []byte(conf), 0o600)
	os.WriteFile(filepath.Join(dir, "sim.emu"), []byte(emu), 0o600)
	os.MkdirAll(filepath.Join(dir, "state"), 0o700)
	cmd := exec.Command(bin, "-n", "-c", "lan.conf", "-f", "sim.emu", "-s", filepath.Join(dir, "state"))
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	eng := newEngine(t)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := eng.Ping(ctx, addr)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ipmi_sim did not answer within 5s")
		}
	}
	return addr, eng
}
