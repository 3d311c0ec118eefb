package peertest

import (
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
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ready(addr) {
			return IPMISim{Addr: addr, Process: cmd.Process}
		}
	}
	t.Fatalf("ipmi_sim did not become ready on %v within 5s", addr)
	return IPMISim{}
}
