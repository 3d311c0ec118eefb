package peertest

import (
	"fmt"
	"github.com/lightsout/lightsout/internal/poll"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// IPMISim is a running OpenIPMI ipmi_sim.
type IPMISim struct {
	Addr    netip.AddrPort
	Process *os.Process
}

// StartIPMISim runs ipmi_sim (with -n, as it needs) on a free loopback UDP
// port and stops it by PID when the test ends (continuing it first, in case
// the test stopped it). lan is the body of its LAN section after the addr
// line (auths, guid, priv_limit) plus the user lines; emu is its emulator
// command file. It waits at most 5 s for ready(addr) to return true (a
// presence ping, say), checking every 100 ms. A missing ipmi_sim skips the
// test (fails it under LIGHTSOUT_REQUIRE_PEERS=1).
func StartIPMISim(t testing.TB, name, lan, emu string, ready func(netip.AddrPort) bool) IPMISim {
	t.Helper()
	bin := Need(t, "ipmi_sim")[0]
	// A free UDP port: bind, note, close.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().(*net.UDPAddr).AddrPort()
	c.Close()
	dir := t.TempDir()
	conf := "name \"" + name + "\"\nset_working_mc 0x20\n  startlan 1\n    addr 127.0.0.1 " + strconv.Itoa(int(addr.Port())) + "\n" + lan
	for f, b := range map[string]string{"lan.conf": conf, "sim.emu": emu} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-c", "lan.conf", "-f", "sim.emu", "-s", filepath.Join(dir, "state"))
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	if poll.Wait(5*time.Second, func() bool { return ready(addr) }) {
		return IPMISim{Addr: addr, Process: cmd.Process}
	}
	t.Fatalf("ipmi_sim did not become ready on %v within 5s", addr)
	return IPMISim{}
}

// EnclosureSimPassword is the admin password of StartEnclosureSim's
// enclosure manager (user "admin").
const EnclosureSimPassword = "em-pass-1"

// StartEnclosureSim runs ipmi_sim as a standard enclosure manager (an ATCA
// shelf manager at 0x20) with one blade controller per slot on its IPMB
// at 0x80+2·slot (slot 1 at 0x82), and a console on a free loopback TCP
// port to stop and start them from outside (IPMISimCommand). ready is the
// readiness probe, as for StartIPMISim.
func StartEnclosureSim(t testing.TB, slots int, ready func(netip.AddrPort) bool) (IPMISim, netip.AddrPort) {
	t.Helper()
	console := FreeTCP(t)
	// ipmi_sim needs a GUID in its LAN section: without one it dies on the
	// first RAKP message.
	lan := `    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid a123456789abcdef1032547698badcfe
  endlan
  user 2 true "admin" "` + EnclosureSimPassword + `" admin 10 md5
  console 127.0.0.1 ` + strconv.Itoa(int(console.Port())) + "\n"
	emu := "atca_enable\nmc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n"
	for s := 1; s <= slots; s++ {
		a := fmt.Sprintf("%#02x", 0x80+2*s)
		emu += fmt.Sprintf("mc_add %s %d no-device-sdrs 0x01 2 3 0x1f 0x1291 0xf03\nmc_enable %s\n", a, s, a)
	}
	return StartIPMISim(t, "lightsout-em", lan, emu, ready), console
}
