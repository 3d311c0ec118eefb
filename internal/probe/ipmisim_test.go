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

// TestInteropLightGUID: the light check's GUID against OpenIPMI's
// ipmi_sim and pyghmi. Whatever RAKP 2 carries, the verdict is the one
// Get System GUID's answer gives: Connectable for the registered GUID,
// Invalid for another. ipmi_sim answers Get System GUID, and its RAKP 2
// carries the same bytes: the full check learns it and a light check sends
// 5 datagrams — 6 when the GUID in RAKP 2 is not the registered one (it
// asks before Invalid). pyghmi does not implement the command: the GUID comes
// from RAKP 2 (learned no_get_system_guid), on light checks too.
func TestInteropLightGUID(t *testing.T) {
	ctx := context.Background()
	wrong, _ := guid.Parse("01020304-0506-0708-090a-0b0c0d0e0f10")
	t.Run("ipmi_sim", func(t *testing.T) {
		addr, _ := startIPMISim(t)
		eng := newEngine(t)
		check := IPMI(eng)
		tg := Target{Name: "ipmi-sim", Addr: addr, User: "admin", Password: []byte(ipmiSimPass), CipherSuite: 3, Timeout: 2 * time.Second}
		tg.Expected, _ = guid.Parse(ipmiSimGUID.IPMI())
		o := check(ctx, tg)
		if o.State != state.Connectable || o.Evidence.GUIDSource != "get_system_guid" {
			t.Fatalf("full check: %s/%s source %s: %s", o.State, o.Reason, o.Evidence.GUIDSource, o.Message)
		}
		if !learnedRAKP2GUID(o) {
			t.Errorf("RAKP 2's GUID not learned equal to Get System GUID's answer: %v", o.Evidence.Quirks)
		}
		want, source := uint64(5), "rakp2"
		tg.Light = true
		before := eng.Stats().Sent
		o = check(ctx, tg)
		if sent := eng.Stats().Sent - before; o.State != state.Connectable || sent != want || o.Evidence.GUIDSource != source || o.GUID != ipmiSimGUID.String() {
			t.Errorf("light check: %s/%s, %d datagrams (want %d), source %s (want %s), guid %s: %s", o.State, o.Reason, sent, want, o.Evidence.GUIDSource, source, o.GUID, o.Message)
		}
		tg.Expected = wrong
		before = eng.Stats().Sent
		o = check(ctx, tg)
		if sent := eng.Stats().Sent - before; o.State != state.Invalid || o.Reason != state.ReasonGUIDMismatch || sent != 6 || o.Evidence.GUIDSource != "get_system_guid" {
			t.Errorf("light check, another GUID registered: %s/%s, %d datagrams (want 6: asked before Invalid), source %s: %s", o.State, o.Reason, sent, o.Evidence.GUIDSource, o.Message)
		}
	})
	t.Run("pyghmi", func(t *testing.T) {
		const pyGUID = "6b0bfe2d-5e2a-4b6e-9a53-0c6f7bd1e2a4"
		bmc := peertest.StartPyghmi(t, "admin", ipmiSimPass, pyGUID)
		eng := newEngine(t)
		check := IPMI(eng)
		tg := Target{Name: "pyghmi", Addr: bmc.Addr, User: "admin", Password: []byte(ipmiSimPass), Timeout: 2 * time.Second}
		tg.Expected, _ = guid.Parse(pyGUID)
		o := check(ctx, tg)
		if o.State != state.Connectable || o.Evidence.GUIDSource != "rakp2" || !hasQuirk(o, "no_get_system_guid") || learnedRAKP2GUID(o) {
			t.Fatalf("full check: %s/%s source %s quirks %v: %s", o.State, o.Reason, o.Evidence.GUIDSource, o.Evidence.Quirks, o.Message)
		}
		tg.Light = true
		if o := check(ctx, tg); o.State != state.Connectable || o.Evidence.GUIDSource != "rakp2" || o.GUID != pyGUID {
			t.Errorf("light check: %s/%s source %s guid %s: %s", o.State, o.Reason, o.Evidence.GUIDSource, o.GUID, o.Message)
		}
		tg.Expected = wrong
		if o := check(ctx, tg); o.State != state.Invalid || o.Reason != state.ReasonGUIDMismatch {
			t.Errorf("light check, another GUID registered: %s/%s: %s", o.State, o.Reason, o.Message)
		}
	})
}
