package sim

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testNet hands each test its own loopback /16 (127.N.0.0), so tests and
// other suites on the same host never collide.
var testNet atomic.Uint32

func init() { testNet.Store(uint32(100 + os.Getpid()%50)) }

// newTestFleet starts cfg on a fresh address range: one address per BMC on
// port 623 when root (and perAddr), else consecutive ports on one address.
func newTestFleet(t testing.TB, cfg Config, perAddr bool) *Fleet {
	t.Helper()
	if cfg.Password == "" && cfg.PasswordFile == "" {
		cfg.Password = "test-pass"
	}
	// Another test binary may hold a range: move on to the next one.
	for attempt := 0; ; attempt++ {
		n := testNet.Add(1)
		if n > 250 {
			testNet.Store(100)
			n = testNet.Add(1)
		}
		cfg.BaseAddr = netip.AddrFrom4([4]byte{127, byte(n), 0, 1}).String()
		cfg.BasePort = 20000
		if perAddr && os.Geteuid() == 0 {
			cfg.BasePort = 0
		}
		f, err := New(cfg)
		if err != nil && strings.Contains(err.Error(), "address already in use") && attempt < 20 {
			continue
		}
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
}

// exchange sends one datagram to addr from a fresh socket and waits for
// one reply. It returns the reply, or the read error (a timeout, or
// "connection refused" after an ICMP port unreachable).
func exchange(t testing.TB, addr netip.AddrPort, pkt []byte, wait time.Duration) ([]byte, error) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// asfPing is an RMCP/ASF Presence Ping.
func asfPing(tag byte) []byte {
	return []byte{0x06, 0x00, 0xFF, 0x06, 0x00, 0x00, 0x11, 0xBE, 0x80, tag, 0x00, 0x00}
}

func isPong(p []byte) bool { return len(p) >= 12 && p[3] == 0x06 && p[8] == 0x40 }

// authCaps is Get Channel Authentication Capabilities outside a session
// (as ipmitool sends it before RMCP+).
func authCaps() []byte {
	msg := []byte{0x20, 0x06 << 2, 0, 0x81, 0x00, 0x38, 0x8E, 0x04, 0}
	msg[2] = -(msg[0] + msg[1])
	var sum byte
	for _, c := range msg[3:8] {
		sum += c
	}
	msg[8] = -sum
	pkt := []byte{0x06, 0x00, 0xFF, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(msg))}
	return append(pkt, msg...)
}

// authCapsOK reports whether p answers authCaps with completion code 0.
func authCapsOK(p []byte) bool {
	return len(p) >= 14+8 && p[3] == 0x07 && p[14+5] == 0x38 && p[14+6] == 0x00
}

// openSession is an RMCP+ Open Session Request for cipher suite 3.
func openSession(tag byte, consoleID uint32) []byte {
	pl := make([]byte, 32)
	pl[0] = tag
	pl[1] = 0x04 // administrator
	binary.LittleEndian.PutUint32(pl[4:8], consoleID)
	copy(pl[8:16], []byte{0x00, 0, 0, 0x08, 0x01, 0, 0, 0})  // auth: HMAC-SHA1
	copy(pl[16:24], []byte{0x01, 0, 0, 0x08, 0x01, 0, 0, 0}) // integrity: HMAC-SHA1-96
	copy(pl[24:32], []byte{0x02, 0, 0, 0x08, 0x01, 0, 0, 0}) // confidentiality: AES-CBC-128
	pkt := []byte{0x06, 0x00, 0xFF, 0x07, 0x06, ptOpenSessReq, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(pl)), 0}
	return append(pkt, pl...)
}

// openSessionStatus returns the RMCP+ status of an Open Session Response.
func openSessionStatus(p []byte) (byte, bool) {
	pt, _, pl, ok := rmcpPlus(p)
	if !ok || pt != ptOpenSessRsp || len(pl) < 2 {
		return 0, false
	}
	return pl[1], true
}

// rakp1 is RAKP Message 1 for bmcID, user, at administrator privilege.
func rakp1(tag byte, bmcID uint32, user string) []byte {
	pl := make([]byte, 28+len(user))
	pl[0] = tag
	binary.LittleEndian.PutUint32(pl[4:8], bmcID)
	for i := 8; i < 24; i++ {
		pl[i] = byte(i * 7)
	}
	pl[24] = 0x14
	pl[27] = byte(len(user))
	copy(pl[28:], user)
	pkt := []byte{0x06, 0x00, 0xFF, 0x07, 0x06, ptRAKP1, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(pl)), 0}
	return append(pkt, pl...)
}

// handshake runs Open Session and RAKP 1 against addr and returns the RAKP
// Message 2 status and, on success, the GUID it carries (no password is
// needed to get this far).
func handshake(t testing.TB, addr netip.AddrPort, user string) (status byte, g [16]byte, err error) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	buf := make([]byte, 1500)
	roundTrip := func(pkt []byte) ([]byte, error) {
		if _, err := c.Write(pkt); err != nil {
			return nil, err
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	p, err := roundTrip(openSession(1, 0xC0FFEE))
	if err != nil {
		return 0, g, err
	}
	pt, _, pl, ok := rmcpPlus(p)
	if !ok || pt != ptOpenSessRsp || len(pl) < 2 {
		t.Fatalf("not an Open Session Response: % x", p)
	}
	if pl[1] != 0 {
		return pl[1], g, nil
	}
	if len(pl) < 12 {
		t.Fatalf("short Open Session Response: % x", p)
	}
	p, err = roundTrip(rakp1(2, binary.LittleEndian.Uint32(pl[8:12]), user))
	if err != nil {
		return 0, g, err
	}
	pt, _, pl, ok = rmcpPlus(p)
	if !ok || pt != ptRAKP2 || len(pl) < 2 {
		t.Fatalf("not a RAKP Message 2: % x", p)
	}
	if pl[1] == 0 && len(pl) >= 40 {
		copy(g[:], pl[24:40])
	}
	return pl[1], g, nil
}
