package ipmi

import (
	"errors"
	"net/netip"
	"slices"
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
	f.Add(rakp2LongLen())
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
	// Get Channel Auth Capabilities as the authcap quirk answers (no auth
	// types, K_g set, no named users, IPMI 1.5 only), and as an IPMI 1.5
	// BMC does (no extended data).
	f.Add(buildRequest(0x1c, 0x38, 4, []byte{0, 0x01, 0x80, 0x20, 0x01, 0, 0, 0, 0}))
	f.Add(buildRequest(0x1c, 0x38, 5, []byte{0, 0x01, 0x04, 0x04, 0x00, 0, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := parseResponseSums(b, false); err == nil && len(r.data) > len(b) {
			t.Fatalf("%d data bytes from %d", len(r.data), len(b))
		}
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

// FuzzDiagReplies feeds arbitrary response data to the decoders the
// diagnosis uses: cipher suite records, session info, user names and the
// enclosure manager's blade status and identify answers.
func FuzzDiagReplies(f *testing.F) {
	f.Add([]byte{0xc0, 0x03, 0x01, 0x41, 0x81, 0xc0, 0x11, 0x03, 0x44, 0x81})
	f.Add([]byte{0xc1, 0x80, 0x9e, 0x15, 0x00, 0x01, 0x41})
	f.Add([]byte{0x05, 0x04, 0x02, 0x02, 0x04, 0x11, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x39, 0x30})
	f.Add([]byte{0x00, 0x04, 0x01})
	f.Add([]byte("admin\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte{0x03, 0x07})
	f.Add(sun20Records)
	f.Fuzz(func(t *testing.T, b []byte) {
		if ss, err := parseCipherSuiteRecords(b); err == nil && len(ss) > len(b)/2 {
			t.Fatalf("%d suites from %d bytes", len(ss), len(b))
		}
		if ss, _, err := parseCipherRecords(b); err == nil && len(ss) > len(b)/2 {
			t.Fatalf("lenient: %d suites from %d bytes", len(ss), len(b))
		}
		if si, err := parseSessionInfo(b); err == nil && (si.Slots > 63 || si.Active > 63) {
			t.Fatalf("session info %+v", si)
		}
		if n, err := parseUserName(b); err == nil && len(n) > 16 {
			t.Fatalf("user name %q", n)
		}
		if st, err := parseBladeStatus(b); err == nil && st.PowerOn && !st.BMCAnswers {
			t.Fatalf("power known without the BMC: %+v", st)
		}
		_, _ = parseBladeIdentify(b)
	})
}

func TestDiagDecoders(t *testing.T) {
	ss, err := parseCipherSuiteRecords([]byte{0xc0, 0x03, 0x01, 0x41, 0x81, 0xc1, 0x80, 0x9e, 0x15, 0x00, 0x01, 0xc0, 0x11, 0x03, 0x44, 0x81})
	if err != nil || len(ss) != 3 || ss[0] != 3 || ss[1] != 0x80 || ss[2] != 17 {
		t.Errorf("cipher suites %v %v", ss, err)
	}
	for _, bad := range [][]byte{{0xc0}, {0x01, 0x02}, {0xc1, 0x01, 0x02}} {
		if _, err := parseCipherSuiteRecords(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: %v", bad, err)
		}
	}
	si, err := parseSessionInfo([]byte{0x05, 0x04, 0x02, 0x02, 0x04, 0x11, 127, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0x39, 0x30})
	if err != nil || si.Handle != 5 || si.Slots != 4 || si.Active != 2 || si.UserID != 2 || si.Privilege != PrivilegeAdministrator ||
		!si.IPMI20 || si.Channel != 1 || si.Remote != netip.MustParseAddrPort("127.0.0.2:12345") {
		t.Errorf("session info %+v %v", si, err)
	}
	if si, err := parseSessionInfo([]byte{0, 4, 1}); err != nil || si.Handle != 0 || si.Remote.IsValid() {
		t.Errorf("empty slot %+v %v", si, err)
	}
	if _, err := parseSessionInfo([]byte{1, 2, 3, 4}); !errors.Is(err, ErrMalformed) {
		t.Errorf("4 bytes: %v", err)
	}
	if n, err := parseUserName([]byte("operator\x00\x00\x00\x00\x00\x00\x00\x00")); n != "operator" || err != nil {
		t.Errorf("user %q %v", n, err)
	}
	st, err := parseBladeStatus([]byte{3, 0x05})
	if err != nil || st.Slot != 3 || !st.Present || st.BMCAnswers || st.PowerOn {
		t.Errorf("blade status %+v %v", st, err)
	}
	if on, err := parseBladeIdentify([]byte{3, 1}); !on || err != nil {
		t.Errorf("identify %v %v", on, err)
	}
}

// sun20Records are suites 3 and 17 as Sun Fire 4100's ILOM lists them:
// integrity tagged 10b, confidentiality 11b (FreeIPMI "sun20").
var sun20Records = []byte{0xc0, 0x03, 0x01, 0x81, 0xc1, 0xc0, 0x11, 0x03, 0x84, 0xc1}

// rakp2LongLen is a RAKP 2 whose header claims one payload byte more than
// it holds (Supermicro H8QME, FreeIPMI "supermicro20").
func rakp2LongLen() []byte {
	b := buildRMCPPlus(payloadRAKP2, 0, 0, 0, make([]byte, 60), nil)
	b[14]++
	return b
}

// TestQuirkDecoders: the lenient readings, and their limits.
func TestQuirkDecoders(t *testing.T) {
	ss, lenient, err := parseCipherRecords(sun20Records)
	if err != nil || !lenient || !slices.Equal(ss, []CipherSuite{3, 17}) {
		t.Errorf("sun20 records: %v lenient %v %v", ss, lenient, err)
	}
	ss, lenient, err = parseCipherRecords([]byte{0xc0, 0x03, 0x01, 0x41, 0x81, 0xc1, 0x80, 0x9e, 0x15, 0x00, 0x01, 0xc0, 0x11, 0x03, 0x44, 0x81})
	if err != nil || lenient || !slices.Equal(ss, []CipherSuite{3, 0x80, 17}) {
		t.Errorf("standard records: %v lenient %v %v", ss, lenient, err)
	}
	if _, _, err := parseCipherRecords([]byte{0xc0, 0x03, 0x01, 0x81, 0xc1, 0xc0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated sun20 records: %v", err)
	}
	d, err := parseDatagram(rakp2LongLen())
	if err != nil || !d.longLen || len(d.payload) != 60 || d.payloadType != payloadRAKP2 {
		t.Errorf("RAKP 2 one byte long: %+v %v", d, err)
	}
	// Only by one, only unauthenticated handshake replies.
	b := rakp2LongLen()
	b[14]++
	if _, err := parseDatagram(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("two bytes long: %v", err)
	}
	b = buildRMCPPlus(payloadIPMI, 0, 5, 1, make([]byte, 20), nil)
	b[14]++
	if _, err := parseDatagram(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("IPMI payload one byte long: %v", err)
	}
}
