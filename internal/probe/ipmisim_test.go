package probe

import (
	"context"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/peertest"
	"github.com/lightsout/lightsout/internal/state"
)

// ipmiSimGUID is the raw GUID configured below (lan.conf "guid" is the raw
// 16 bytes in wire order).
var ipmiSimGUID = guid.GUID{0xa1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe}

const ipmiSimPass = "interop-pw-1"

// startIPMISim runs OpenIPMI's ipmi_sim on a free loopback port and stops
// it (by PID) when the test ends.
func startIPMISim(t *testing.T) (netip.AddrPort, *os.Process) {
	t.Helper()
	lan := `    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid ` + ipmiSimGUID.Hex() + `
  endlan
  user 2 true "admin" "` + ipmiSimPass + `" admin 10 md5
`
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nsel_enable 0x20 1000 0x0a\nmc_enable 0x20\n"
	sim := peertest.StartIPMISim(t, "lightsout-interop", lan, emu, pingable(newEngine(t)))
	return sim.Addr, sim.Process
}

// pingable is a readiness probe: addr answers a presence ping.
func pingable(eng *ipmi.Engine) func(netip.AddrPort) bool {
	return func(addr netip.AddrPort) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := eng.Ping(ctx, addr)
		return err == nil
	}
}

func TestInteropOpenIPMISim(t *testing.T) {
	addr, proc := startIPMISim(t)
	eng := newEngine(t)
	check := IPMI(eng)
	ctx := context.Background()
	tg := func(pass string, expected string, suite int) Target {
		t := Target{Name: "ipmi-sim", Addr: addr, User: "admin", Password: []byte(pass), CipherSuite: suite, Timeout: 2 * time.Second}
		if expected != "" {
			t.Expected, _ = guid.Parse(expected)
		}
		return t
	}

	o := check(ctx, tg(ipmiSimPass, ipmiSimGUID.IPMI(), 3))
	if o.State != state.Connectable || o.Evidence.CipherSuite != 3 || o.GUID != ipmiSimGUID.String() {
		t.Fatalf("cipher 3: %s/%s %s evidence %+v", o.State, o.Reason, o.Message, o.Evidence)
	}
	if o.Evidence.Firmware != "9.08" || o.Evidence.Power == "" {
		t.Errorf("device evidence: %+v", o.Evidence)
	}
	// Default suite order (17, then 3) must land on a suite ipmi_sim takes.
	if o := check(ctx, tg(ipmiSimPass, "", 0)); o.State != state.Connectable {
		t.Errorf("default suites: %s/%s %s", o.State, o.Reason, o.Message)
	}
	if o := check(ctx, tg("wrong-password", "", 3)); o.State != state.NotAuthenticated {
		t.Errorf("wrong password: %s/%s %s", o.State, o.Reason, o.Message)
	}
	if o := check(ctx, tg(ipmiSimPass, "01020304-0506-0708-090a-0b0c0d0e0f10", 3)); o.State != state.Invalid || o.Reason != state.ReasonGUIDMismatch {
		t.Errorf("wrong GUID: %s/%s %s", o.State, o.Reason, o.Message)
	}

	// Stopped (SIGSTOP): the socket stays, nothing answers.
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	o = check(ctx, tg(ipmiSimPass, "", 3))
	if o.State != state.NotResponding || o.Reason != state.ReasonSilent {
		t.Errorf("stopped: %s/%s %s", o.State, o.Reason, o.Message)
	}
	proc.Signal(syscall.SIGCONT)

	// Every session we opened was closed: a fresh check still gets a slot
	// and the engine holds none.
	if st := eng.Stats(); st.SessionsOpen != 0 || st.SessionsOpened != st.SessionsClosed {
		t.Errorf("engine sessions: %+v", st)
	}
}
