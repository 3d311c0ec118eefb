package ipmitest

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
)

// forger is a host on the path between the engine and a BMC: a UDP relay
// that sees every datagram (so it knows the console session ID) and, when
// told to, answers one handshake request itself before the BMC's reply
// reaches the console — the forged-reply race.
type Forger struct {
	front *net.UDPConn // the engine talks to this
	back  *net.UDPConn // towards the BMC
	bmc   netip.AddrPort
	// Forge answers a request itself, before relaying it (nil or a nil
	// result: relay only); Tamper sends a forged copy of a genuine reply
	// ahead of it. Once: do either only once. Set them before traffic,
	// with Arm (the relay reads them under the forger's lock).
	Forge  func(req []byte, consoleID uint32) []byte
	Tamper func(reply []byte) []byte
	Once   bool

	mu        sync.Mutex
	client    netip.AddrPort
	consoleID uint32
	seen      map[byte]int // payload types of requests relayed to the BMC
	forged    int
}

func StartForger(t testing.TB, bmc netip.AddrPort) *Forger {
	t.Helper()
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f := &Forger{front: front, back: back, bmc: bmc, seen: map[byte]int{}}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); f.relayOut() }()
	go func() { defer wg.Done(); f.relayBack() }()
	t.Cleanup(func() { front.Close(); back.Close(); wg.Wait() })
	return f
}

// Arm sets Forge, Tamper and Once under the forger's lock: the relay
// goroutines read them, and a datagram sent afterwards is no
// happens-before edge the race detector knows of.
func (f *Forger) Arm(forge func(req []byte, consoleID uint32) []byte, tamper func(reply []byte) []byte, once bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Forge, f.Tamper, f.Once = forge, tamper, once
}

// Addr is where consoles reach the BMC through the forger.
func (f *Forger) Addr() netip.AddrPort { return f.front.LocalAddr().(*net.UDPAddr).AddrPort() }

func RMCPPlusType(b []byte) (byte, bool) {
	if len(b) < 16 || b[4] != 0x06 {
		return 0, false
	}
	return b[5] & 0x3f, true
}

// relayOut: console → BMC, forging an answer first when told to.
func (f *Forger) relayOut() {
	buf := make([]byte, 2048)
	for {
		n, src, err := f.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		req := append([]byte(nil), buf[:n]...)
		f.mu.Lock()
		f.client = src
		pt, ok := RMCPPlusType(req)
		if ok {
			f.seen[pt]++
			if pt == 0x10 && n >= 16+8 {
				f.consoleID = binary.LittleEndian.Uint32(req[16+4:])
			}
		}
		forge, cid, once := f.Forge, f.consoleID, f.Once
		if forge != nil && once && f.forged > 0 {
			forge = nil
		}
		f.mu.Unlock()
		if forge != nil {
			if fake := forge(req, cid); fake != nil {
				f.mu.Lock()
				f.forged++
				f.mu.Unlock()
				_, _ = f.front.WriteToUDPAddrPort(fake, src)
			}
		}
		_, _ = f.back.WriteToUDPAddrPort(req, f.bmc)
	}
}

// relayBack: BMC → console, with a tampered copy sent first when told to.
func (f *Forger) relayBack() {
	buf := make([]byte, 2048)
	for {
		n, _, err := f.back.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		rep := append([]byte(nil), buf[:n]...)
		f.mu.Lock()
		client, tamper := f.client, f.Tamper
		if tamper != nil && f.Once && f.forged > 0 {
			tamper = nil
		}
		f.mu.Unlock()
		if tamper != nil {
			if fake := tamper(append([]byte(nil), rep...)); fake != nil {
				f.mu.Lock()
				f.forged++
				f.mu.Unlock()
				_, _ = f.front.WriteToUDPAddrPort(fake, client)
			}
		}
		_, _ = f.front.WriteToUDPAddrPort(rep, client)
	}
}

// Count is how many requests of payload type pt were relayed to the BMC.
func (f *Forger) Count(pt byte) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[pt]
}

// ErrorReply forges a handshake error reply of type pt with status st for
// request req (its tag is the request payload's first byte).
func ErrorReply(pt, st byte, req []byte, consoleID uint32) []byte {
	p := make([]byte, 8)
	p[0], p[1] = req[16], st
	binary.LittleEndian.PutUint32(p[4:], consoleID)
	return frame(pt, p)
}

// ForgeOn answers every request of type reqType with an error reply of
// type replyType carrying status.
func ForgeOn(reqType, replyType, status byte) func([]byte, uint32) []byte {
	return func(req []byte, cid uint32) []byte {
		if pt, ok := RMCPPlusType(req); ok && pt == reqType {
			return ErrorReply(replyType, status, req, cid)
		}
		return nil
	}
}

// FlipIn flips one bit at offset off of a reply's payload of type pt.
func FlipIn(pt byte, off int) func([]byte) []byte {
	return func(rep []byte) []byte {
		if t, ok := RMCPPlusType(rep); !ok || t != pt || len(rep) <= 16+off {
			return nil
		}
		rep[16+off] ^= 0x01
		return rep
	}
}

// Forged returns how many forged replies were sent.
func (f *Forger) Forged() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.forged
}

// frame wraps a session-less RMCP+ payload (IPMI 2.0 section 13.6).
func frame(pt byte, payload []byte) []byte {
	b := make([]byte, 16+len(payload))
	copy(b, []byte{0x06, 0x00, 0xff, 0x07, 0x06, pt})
	binary.LittleEndian.PutUint16(b[14:16], uint16(len(payload)))
	copy(b[16:], payload)
	return b
}

// RMCP+ payload types of the handshake.
const (
	OpenSessReq  = 0x10
	OpenSessResp = 0x11
	RAKP1        = 0x12
	RAKP2        = 0x13
	RAKP3        = 0x14
	RAKP4        = 0x15
)
