package peertest

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// FreeTCP returns a loopback TCP address free a moment ago, for an
// ipmi_sim console line ("console 127.0.0.1 PORT" in its lan.conf, after
// endlan).
func FreeTCP(t testing.TB) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// IPMISimCommand runs one emulator command (ipmi_sim_cmd(5): mc_disable
// 0x82, mc_enable 0x82, …) on a running ipmi_sim through its console, and
// returns what the console printed before its next prompt. Every read and
// write is bounded (2 s).
func IPMISimCommand(console netip.AddrPort, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", console.String(), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return "", err
	}
	untilPrompt := func() ([]byte, error) {
		var out []byte
		buf := make([]byte, 512)
		for len(out) < 1<<16 {
			n, err := c.Read(buf)
			out = append(out, buf[:n]...)
			if bytes.HasSuffix(out, []byte("> ")) {
				return out, nil
			}
			if err != nil {
				return out, fmt.Errorf("ipmi_sim console: %w after %q", err, out)
			}
		}
		return out, fmt.Errorf("ipmi_sim console: no prompt in %d bytes", len(out))
	}
	if _, err := untilPrompt(); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return "", err
	}
	out, err := untilPrompt()
	out = bytes.TrimSuffix(out, []byte("> "))
	out = bytes.TrimPrefix(out, []byte(cmd))
	return string(bytes.TrimSpace(out)), err
}
