package sim

// Interop tests: real third-party peers (ipmitool, FreeIPMI) against the
// simulator over real UDP, with the tools' default settings: no cipher
// suite pinned, no workaround flags. FreeIPMI defaults to IPMI 1.5; its
// -D LAN_2_0 runs are extra. As root the BMCs have one loopback address
// each on port 623 (the deployment the tools see in the field); otherwise
// they share one address with consecutive ports (ipmitool -p, FreeIPMI
// -h HOST:PORT).

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/peertest"
)

// peer runs a peer program with a deadline and returns its combined output.
func peer(t *testing.T, limit time.Duration, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %v:\n%s", name, strings.Join(args, " "), limit, out.String())
	}
	return out.String(), err
}

// ipmitool runs ipmitool over lanplus as admin against addr, the password
// in IPMI_PASSWORD (-E).
func ipmitool(t *testing.T, addr netip.AddrPort, password string, args ...string) (string, error) {
	t.Helper()
	full := []string{"-I", "lanplus", "-H", addr.Addr().String(), "-U", AdminUser, "-E"}
	if addr.Port() != IPMIPort {
		full = append(full, "-p", strconv.Itoa(int(addr.Port())))
	}
	full = append(full, args...)
	return peer(t, 30*time.Second, []string{"IPMI_PASSWORD=" + password}, "ipmitool", full...)
}

// freeipmiHost is addr as FreeIPMI's -h takes it (HOST or HOST:PORT).
func freeipmiHost(addr netip.AddrPort) string {
	if addr.Port() == IPMIPort {
		return addr.Addr().String()
	}
	return addr.String()
}

var (
	ipmitoolGUID = regexp.MustCompile(`System GUID\s*:\s*([0-9a-fA-F-]{36})`)
	anyGUID      = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
)

// guidIn finds the GUID re captures in out and checks it names want in one
// of the renderings.
func guidIn(t *testing.T, tool, out string, re *regexp.Regexp, want guid.GUID) {
	t.Helper()
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: no GUID in output:\n%s", tool, out)
	}
	s := m[len(m)-1]
	spelled, err := guid.Parse(s)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if !want.Matches(spelled) {
		t.Fatalf("%s: GUID %s does not match %s (renderings %+v)", tool, s, want.Hex(), want.Renderings())
	}
}

func powerWord(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func TestInteropIpmitool(t *testing.T) {
	peertest.Need(t, "ipmitool")
	f := newTestFleet(t, Config{Count: 3, Seed: 11, Password: "Sim-Pass-11"}, true)
	pw := f.Password()
	for _, b := range f.BMCs() {
		addr := b.Addr()
		out, err := ipmitool(t, addr, pw, "chassis", "power", "status")
		if err != nil {
			t.Fatalf("%s: chassis power status: %v\n%s", b.Name(), err, out)
		}
		if want := "Chassis Power is " + powerWord(b.PowerOn()); !strings.Contains(out, want) {
			t.Errorf("%s: got %q, want %q", b.Name(), strings.TrimSpace(out), want)
		}
		out, err = ipmitool(t, addr, pw, "mc", "guid")
		if err != nil {
			t.Fatalf("%s: mc guid: %v\n%s", b.Name(), err, out)
		}
		guidIn(t, "ipmitool mc guid", out, ipmitoolGUID, b.GUID())
	}

	b := f.BMCs()[0]
	addr := b.Addr()
	if out, err := ipmitool(t, addr, pw, "chassis", "power", "off"); err != nil {
		t.Fatalf("power off: %v\n%s", err, out)
	}
	out, _ := ipmitool(t, addr, pw, "chassis", "power", "status")
	if !strings.Contains(out, "Chassis Power is off") || b.PowerOn() {
		t.Errorf("after power off: %q, sim says on=%v", out, b.PowerOn())
	}
	if out, err := ipmitool(t, addr, pw, "chassis", "power", "on"); err != nil || !b.PowerOn() {
		t.Errorf("power on: %v, sim says on=%v\n%s", err, b.PowerOn(), out)
	}
	if out, err := ipmitool(t, addr, pw, "chassis", "identify", "10"); err != nil || b.identifyState() != 1 {
		t.Errorf("identify: %v state %d\n%s", err, b.identifyState(), out)
	}
	// The rest of what a console reads: SEL, sensors, device ID.
	if out, err := ipmitool(t, addr, pw, "sel", "list"); err != nil || strings.Count(out, "\n") != b.selCount() {
		t.Errorf("sel list (%d entries expected): %v\n%s", b.selCount(), err, out)
	}
	if out, err := ipmitool(t, addr, pw, "sdr", "list"); err != nil || !strings.Contains(out, "Inlet Temp") || !strings.Contains(out, "degrees C") {
		t.Errorf("sdr list: %v\n%s", err, out)
	}
	if out, err := ipmitool(t, addr, pw, "mc", "info"); err != nil || !strings.Contains(out, "Firmware Revision         : "+b.Vendor().Firmware) {
		t.Errorf("mc info (firmware %s): %v\n%s", b.Vendor().Firmware, err, out)
	}

	if out, err := ipmitool(t, addr, "not-the-password", "-R", "1", "-N", "1", "chassis", "power", "status"); err == nil {
		t.Errorf("wrong password accepted:\n%s", out)
	}

	c := b.Counters()
	if c.SessionsOpened < 8 || c.SessionsOpen != 0 || c.MaxSessionsPerClient != 1 || c.AuthAttempts <= c.SessionsOpened {
		t.Errorf("counters after ipmitool runs: %+v", c)
	}
}

func TestInteropFreeIPMI(t *testing.T) {
	peertest.Need(t, "ipmipower", "bmc-info")
	f := newTestFleet(t, Config{Count: 2, Seed: 12, Password: "Sim-Pass-12"}, true)
	pw := f.Password()
	for _, driver := range [][]string{nil, {"-D", "LAN_2_0"}} {
		for _, b := range f.BMCs() {
			addr := b.Addr().Addr().String()
			args := append(append([]string{}, driver...), "-h", freeipmiHost(b.Addr()), "-u", AdminUser, "-p", pw)
			out, err := peer(t, 30*time.Second, nil, "ipmipower", append(args, "--stat")...)
			if err != nil {
				t.Fatalf("%v ipmipower --stat: %v\n%s", driver, err, out)
			}
			if want := addr + ": " + powerWord(b.PowerOn()); strings.TrimSpace(out) != want {
				t.Errorf("%v ipmipower --stat: %q, want %q", driver, strings.TrimSpace(out), want)
			}
			out, err = peer(t, 30*time.Second, nil, "bmc-info", append(args, "--get-system-guid")...)
			if err != nil {
				t.Fatalf("%v bmc-info --get-system-guid: %v\n%s", driver, err, out)
			}
			guidIn(t, "bmc-info", out, anyGUID, b.GUID())
		}
	}

	b := f.BMCs()[1]
	addr := b.Addr().Addr().String()
	args := []string{"-h", freeipmiHost(b.Addr()), "-u", AdminUser, "-p", pw}
	if out, err := peer(t, 30*time.Second, nil, "ipmipower", append(args, "--off")...); err != nil {
		t.Fatalf("ipmipower --off: %v\n%s", err, out)
	}
	out, _ := peer(t, 30*time.Second, nil, "ipmipower", append(args, "--stat")...)
	if strings.TrimSpace(out) != addr+": off" || b.PowerOn() {
		t.Errorf("after --off: %q, sim on=%v", out, b.PowerOn())
	}
	if out, err := peer(t, 30*time.Second, nil, "ipmipower", append(args, "--on")...); err != nil || !b.PowerOn() {
		t.Errorf("ipmipower --on: %v, sim on=%v\n%s", err, b.PowerOn(), out)
	}

	// A wrong password fails. Over IPMI 1.5 (FreeIPMI's default) the BMC's
	// reply cannot be authenticated with the wrong password, so FreeIPMI
	// waits out its session timeout: shortened here (not a workaround flag).
	bad := []string{"-h", freeipmiHost(b.Addr()), "-u", AdminUser, "-p", "not-the-password", "--session-timeout", "3000"}
	if out, err := peer(t, 30*time.Second, nil, "ipmipower", append(bad, "--stat")...); err == nil && !strings.Contains(out, "password") {
		t.Errorf("ipmipower with a wrong password: %v\n%s", err, out)
	} else if !strings.Contains(out, "password") {
		t.Errorf("ipmipower with a wrong password says: %s", out)
	}
	if out, err := peer(t, 30*time.Second, nil, "bmc-info", append(bad, "--get-system-guid")...); err == nil {
		t.Errorf("bmc-info with a wrong password succeeded:\n%s", out)
	}
	bad2 := []string{"-D", "LAN_2_0", "-h", freeipmiHost(b.Addr()), "-u", AdminUser, "-p", "not-the-password"}
	if out, err := peer(t, 30*time.Second, nil, "bmc-info", append(bad2, "--get-system-guid")...); err == nil || !strings.Contains(out, "password invalid") {
		t.Errorf("bmc-info -D LAN_2_0 with a wrong password: %v\n%s", err, out)
	}
	if c := b.Counters(); c.SessionsOpen != 0 || c.MaxSessionsPerClient != 1 {
		t.Errorf("counters after FreeIPMI runs: %+v", c)
	}

	// No free session slot: "BMC busy" over both protocols.
	if err := f.SetFaults(b.Name(), Faults{SlotsFull: true}); err != nil {
		t.Fatal(err)
	}
	for _, driver := range [][]string{nil, {"-D", "LAN_2_0"}} {
		out, err := peer(t, 30*time.Second, nil, "ipmipower", append(append(append([]string{}, driver...), args...), "--stat")...)
		if !strings.Contains(out, "BMC busy") {
			t.Errorf("%v ipmipower with slots full: %v\n%s", driver, err, out)
		}
	}
	if c := b.Counters(); c.SessionsRefused < 2 {
		t.Errorf("refused sessions: %+v", c)
	}
}

// TestInteropFaults injects faults through the control API (real HTTP)
// and watches ipmitool see them over real UDP.
func TestInteropFaults(t *testing.T) {
	peertest.Need(t, "ipmitool")
	f := newTestFleet(t, Config{Count: 6, Seed: 13, Password: "Sim-Pass-13",
		Enclosures: []EnclosureConfig{{Name: "enc-x", Blades: 2}}}, true)
	cs, err := f.ServeControl("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	api := NewClient(cs.URL())
	ctx := context.Background()
	pw := f.Password()
	bmcs := f.BMCs()
	// One try, one second: a dead BMC fails fast.
	quick := func(b *BMC, password string, args ...string) (string, time.Duration, error) {
		start := time.Now()
		out, err := ipmitool(t, b.Addr(), password, append([]string{"-R", "1", "-N", "1"}, args...)...)
		return out, time.Since(start), err
	}
	set := func(name string, fs Faults) {
		t.Helper()
		if _, err := api.SetFaults(ctx, name, fs); err != nil {
			t.Fatalf("set faults on %s: %v", name, err)
		}
	}
	clear := func(name string) {
		t.Helper()
		if _, err := api.ClearFaults(ctx, name); err != nil {
			t.Fatalf("clear faults on %s: %v", name, err)
		}
	}

	t.Run("silent", func(t *testing.T) {
		b := bmcs[2]
		set(b.Name(), Faults{Silent: true})
		out, el, err := quick(b, pw, "chassis", "power", "status")
		if err == nil || el > 10*time.Second {
			t.Errorf("silent: err %v after %v\n%s", err, el, out)
		}
		clear(b.Name())
		if out, _, err := quick(b, pw, "chassis", "power", "status"); err != nil {
			t.Errorf("after clear: %v\n%s", err, out)
		}
	})
	t.Run("port_closed", func(t *testing.T) {
		b := bmcs[2]
		set(b.Name(), Faults{PortClosed: true})
		out, el, err := quick(b, pw, "chassis", "power", "status")
		if err == nil || el > 10*time.Second {
			t.Errorf("port_closed: err %v after %v\n%s", err, el, out)
		}
		clear(b.Name())
		if out, _, err := quick(b, pw, "chassis", "power", "status"); err != nil {
			t.Errorf("after clear: %v\n%s", err, out)
		}
	})
	t.Run("wrong_password", func(t *testing.T) {
		b := bmcs[3]
		set(b.Name(), Faults{WrongPassword: true})
		if out, _, err := quick(b, pw, "chassis", "power", "status"); err == nil {
			t.Errorf("fleet password accepted:\n%s", out)
		}
		clear(b.Name())
		if out, _, err := quick(b, pw, "chassis", "power", "status"); err != nil {
			t.Errorf("after clear: %v\n%s", err, out)
		}
	})
	t.Run("user_removed", func(t *testing.T) {
		b := bmcs[3]
		set(b.Name(), Faults{UserRemoved: true})
		out, _, err := quick(b, pw, "-v", "chassis", "power", "status")
		if err == nil || !strings.Contains(strings.ToLower(out), "unauthorized name") {
			t.Errorf("user_removed: %v\n%s", err, out)
		}
		clear(b.Name())
	})
	t.Run("guid_replaced", func(t *testing.T) {
		b := bmcs[4]
		st := set2(t, api, b.Name(), Faults{GUIDReplaced: true})
		out, _, err := quick(b, pw, "mc", "guid")
		if err != nil {
			t.Fatalf("mc guid: %v\n%s", err, out)
		}
		g, _ := guid.Parse(st.GUID.Raw)
		guidIn(t, "ipmitool mc guid", out, ipmitoolGUID, g)
		if m := ipmitoolGUID.FindStringSubmatch(out); m != nil {
			spelled, _ := guid.Parse(m[1])
			if b.RegisteredGUID().Matches(spelled) {
				t.Errorf("still the registered GUID")
			}
		}
		clear(b.Name())
		out, _, _ = quick(b, pw, "mc", "guid")
		guidIn(t, "ipmitool mc guid", out, ipmitoolGUID, b.RegisteredGUID())
	})
	t.Run("bmc_key", func(t *testing.T) {
		b := bmcs[5]
		before := b.Counters().Restarts
		set(b.Name(), Faults{BMCKey: true})
		// Without the key the password still verifies (RAKP 2), the
		// session keys do not (RAKP 4); with it (-y, hex) the login works.
		out, _, err := quick(b, pw, "-v", "chassis", "power", "status")
		if err == nil || !strings.Contains(strings.ToLower(out), "rakp 4") {
			t.Errorf("bmc_key without the key: %v\n%s", err, out)
		}
		if out, _, err := quick(b, pw, "-y", hex.EncodeToString(b.bmcKey()), "chassis", "power", "status"); err != nil {
			t.Errorf("bmc_key with the key: %v\n%s", err, out)
		}
		if b.Counters().Restarts != before {
			t.Errorf("setting a BMC key restarted the BMC")
		}
		clear(b.Name())
		if out, _, err := quick(b, pw, "chassis", "power", "status"); err != nil {
			t.Errorf("after clear: %v\n%s", err, out)
		}
	})
	t.Run("slots_full", func(t *testing.T) {
		b := bmcs[5]
		set(b.Name(), Faults{SlotsFull: true})
		out, _, err := quick(b, pw, "chassis", "power", "status")
		if err == nil || !strings.Contains(strings.ToLower(out), "insufficient resources") {
			t.Errorf("slots_full: %v\n%s", err, out)
		}
		clear(b.Name())
	})
	t.Run("swap", func(t *testing.T) {
		x, y := bmcs[0], bmcs[1]
		xa := x.Addr()
		if err := api.Swap(ctx, x.Name(), y.Name()); err != nil {
			t.Fatal(err)
		}
		out, err := ipmitool(t, xa, pw, "mc", "guid")
		if err != nil {
			t.Fatalf("mc guid at %s: %v\n%s", xa, err, out)
		}
		guidIn(t, "ipmitool mc guid after swap", out, ipmitoolGUID, y.GUID())
		if err := api.Swap(ctx, x.Name(), y.Name()); err != nil {
			t.Fatal(err)
		}
		out, _ = ipmitool(t, xa, pw, "mc", "guid")
		guidIn(t, "ipmitool mc guid after swapping back", out, ipmitoolGUID, x.GUID())
	})
	t.Run("enclosure_down", func(t *testing.T) {
		e, _ := f.Enclosure("enc-x")
		if _, err := api.SetEnclosureDown(ctx, "enc-x", true); err != nil {
			t.Fatal(err)
		}
		for _, b := range []*BMC{e.Manager(), e.Blades()[1]} {
			if out, _, err := quick(b, pw, "chassis", "power", "status"); err == nil {
				t.Errorf("%s answers with its enclosure down:\n%s", b.Name(), out)
			}
		}
		if _, err := api.SetEnclosureDown(ctx, "enc-x", false); err != nil {
			t.Fatal(err)
		}
		if out, _, err := quick(e.Manager(), pw, "chassis", "power", "status"); err != nil {
			t.Errorf("enclosure manager back: %v\n%s", err, out)
		}
	})
}

func set2(t *testing.T, api *Client, name string, fs Faults) Status {
	t.Helper()
	st, err := api.SetFaults(context.Background(), name, fs)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
