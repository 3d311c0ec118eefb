package ipmi

import (
	"net/netip"
	"testing"
	"time"
)

// Every decoder of network input is fuzzed: none may panic, whatever the
// bytes. `make fuzz` runs each for a while; the corpus is kept in
// testdata/fuzz.

func FuzzParseDatagram(f *testing.F) {
	f.Add(buildPing(7))
	f.Add(buildV15(buildRequest(0x07, 0x38, 1, []byte{0x01, 0x80, 0x14, 0x02, 0, 0, 0, 0})))
	f.Add(buildRMCPPlus(payloadOpenSessResp, 0, 0, 0, make([]byte, 36), nil))
	f.Add(buildRMCPPlus(payloadIPMI, flagAuthenticated|flagEncrypted, 5, 9, make([]byte, 32), func([]byte) []byte { return make([]byte, 12) }))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseDatagram(b)
		if err != nil {
			return
		}
		if d.authEnd > len(b) {
			t.Fatalf("authEnd %d beyond %d", d.authEnd, len(b))
		}
		_, _ = parseResponse(d.payload)
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add(buildRequest(0x07, 0x01, 3, []byte{0, 0x20, 0x01, 0x02, 0x45, 0x02, 0xbf, 0x57, 0x01, 0, 0x34, 0x12}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseResponse(b)
		if err != nil {
			return
		}
		_, _ = parseDeviceID(r.data)
		_, _ = parseAuthCaps(r.data)
		_, _ = parseChassisStatus(r.data)
	})
}

// FuzzSessionReply feeds arbitrary datagrams to the in-session verify and
// decrypt path, and to every handshake decoder, with real keys.
func FuzzSessionReply(f *testing.F) {
	s := &Session{consoleID: 0x01020304, suite: 17, algs: suites[17], k1: make([]byte, 32), k2: make([]byte, 32), authLen: 16, e: &Engine{}}
	s.bmcID = 0x0a0b0c0d
	good, _ := s.seal(buildRequest(0x07, 0x01, 1, []byte{0}))
	f.Add(good)
	f.Add(buildRMCPPlus(payloadRAKP2, 0, 0, 0, make([]byte, 72), nil))
	f.Add(buildRMCPPlus(payloadRAKP4, 0, 0, 0, make([]byte, 24), nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseDatagram(b)
		if err != nil {
			return
		}
		s.inHigh, s.inMask = 0, 0
		// the reply direction carries our console ID
		d.sessionID = s.consoleID
		if m, err := s.open(event{pkt: b, d: d, at: time.Now()}); err == nil {
			_, _ = parseResponse(m)
		}
		_ = unpackHandshake(d)
	})
}

func TestReplayWindow(t *testing.T) {
	s := &Session{}
	steps := []struct {
		seq  uint32
		want bool
	}{{0, false}, {5, true}, {5, false}, {4, true}, {4, false}, {7, true}, {6, true}, {3, true}, {40, true}, {8, false}, {39, true}, {39, false}, {41, true}}
	for i, st := range steps {
		if got := s.acceptSeq(st.seq); got != st.want {
			t.Errorf("step %d seq %d: accepted=%v want %v", i, st.seq, got, st.want)
		}
	}
}

func TestAddrHashSpreads(t *testing.T) {
	var n [2]int
	for i := 1; i <= 1000; i++ {
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), 623)
		n[hashAddr(a)%2]++
	}
	if n[0] < 400 || n[1] < 400 {
		t.Errorf("uneven spread over 2 sockets: %v", n)
	}
}
