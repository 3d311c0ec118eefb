package ipmi

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Commands the diagnosis uses: what cipher suites a BMC offers, who holds
// its sessions (and closing one of them), user names, and the enclosure
// manager's view of a blade. Every decoder here is bounds-checked and
// fuzzed (fuzz_test.go).

// Sessionless sends one IPMI request outside any session (IPMI 1.5
// framing, as consoles send Get Channel Authentication Capabilities) and
// returns the response data after the completion code. A non-zero
// completion code is a *CompletionError. Only commands a BMC serves before
// login make sense here.
func (e *Engine) Sessionless(ctx context.Context, addr netip.AddrPort, netFn, cmd byte, data []byte) ([]byte, time.Duration, error) {
	var out []byte
	var cc byte
	rtt, err := e.sessionless(ctx, addr, StageCommand, netFn, cmd, data, func(c byte, d []byte) error {
		cc, out = c, append([]byte(nil), d...)
		return nil
	})
	if err != nil {
		return nil, rtt, err
	}
	if cc != 0 {
		return out, rtt, &CompletionError{NetFn: netFn, Cmd: cmd, Code: cc}
	}
	return out, rtt, nil
}

// sessionless is the one session-less exchange (Sessionless, AuthCaps):
// the request in IPMI 1.5 framing, retransmitted as stage; the reply is the
// first outside any session (an RMCP+ one must carry an IPMI payload)
// whose response names the request's command, sequence number and
// response NetFn. use gets its completion code and data, valid only
// during the call; an error from use ends the exchange with it.
func (e *Engine) sessionless(ctx context.Context, addr netip.AddrPort, stage Stage, netFn, cmd byte, data []byte,
	use func(cc byte, data []byte) error) (time.Duration, error) {
	p, err := e.peer(addr)
	if err != nil {
		return 0, err
	}
	rqSeq := randomTag() & 0x3f
	pkt := buildV15(buildRequest(netFn, cmd, rqSeq, data))
	_, rtt, err := e.exchange(ctx, p, stage, func() []byte { return pkt }, func(ev event) (bool, error) {
		if ev.d.class != classIPMI || ev.d.sessionID != 0 {
			return false, nil
		}
		if ev.d.authType == authTypeRMCPP && ev.d.payloadType != payloadIPMI {
			return false, nil
		}
		r, err := parseResponse(ev.d.payload)
		if err != nil {
			e.c.malformed.Add(1)
			return false, errBadReply
		}
		if r.cmd != cmd || r.rqSeq != rqSeq || r.netFn != netFn|1 {
			return false, nil
		}
		return true, use(r.cc, r.data)
	})
	return rtt, err
}

// CipherSuites lists the cipher suites the BMC offers on the current LAN
// channel (Get Channel Cipher Suites, App 0x54, before login), in the
// BMC's order.
func (e *Engine) CipherSuites(ctx context.Context, addr netip.AddrPort) ([]CipherSuite, error) {
	l, _, err := e.cipherSuites(ctx, addr)
	return l, err
}

// cipherSuites is CipherSuites, also saying whether the records had to be
// read leniently (QuirkCipherTags).
func (e *Engine) cipherSuites(ctx context.Context, addr netip.AddrPort) ([]CipherSuite, bool, error) {
	var records []byte
	// 16 bytes of records per answer; a short answer is the last. 64
	// records at most (the index has 6 bits); a BMC that never sends a
	// short answer is cut off there.
	for index := byte(0); index < 0x40; index++ {
		b, _, err := e.Sessionless(ctx, addr, 0x06, 0x54, []byte{0x0e, 0x00, 0x80 | index})
		if err != nil {
			return nil, false, err
		}
		if len(b) < 1 {
			return nil, false, malformed("cipher suite answer of %d bytes", len(b))
		}
		records = append(records, b[1:]...)
		if len(b)-1 < 16 {
			break
		}
	}
	return parseCipherRecords(records)
}

// parseCipherRecords reads the records as parseCipherSuiteRecords does;
// when that fails, or takes an algorithm byte for a record's suite ID
// (tag bits 11b), the records are read again as fixed-size ones — C0h, ID
// and three algorithm bytes; C1h, ID, IANA and three — whatever the
// algorithm bytes' tag bits (Sun Fire 4100's ILOM tags them wrong:
// FreeIPMI "sun20"). lenient says the second reading was used.
func parseCipherRecords(b []byte) (list []CipherSuite, lenient bool, err error) {
	list, err = parseCipherSuiteRecords(b)
	if err == nil && !slices.ContainsFunc(list, func(s CipherSuite) bool { return s&0xc0 == 0xc0 }) {
		return list, false, nil
	}
	if fixed, ok := fixedCipherRecords(b); ok {
		return fixed, true, nil
	}
	if err == nil {
		err = malformed("cipher suite records with an algorithm byte where a suite ID belongs")
	}
	return nil, false, err
}

// fixedCipherRecords reads records of fixed size: C0h ID auth integ conf,
// or C1h ID IANA(3) auth integ conf. False unless every record starts with
// C0h or C1h and the last ends with b.
func fixedCipherRecords(b []byte) ([]CipherSuite, bool) {
	var out []CipherSuite
	for i := 0; i < len(b); {
		size := 0
		switch b[i] {
		case 0xc0:
			size = 5
		case 0xc1:
			size = 8
		default:
			return nil, false
		}
		if i+size > len(b) {
			return nil, false
		}
		out = append(out, CipherSuite(b[i+1]))
		i += size
	}
	return out, len(out) > 0
}

// parseCipherSuiteRecords reads the cipher suite records of Get Channel
// Cipher Suites (IPMI 2.0 table 22-19): C0h id algs… (standard) or C1h id
// IANA(3) algs… (OEM). Algorithm bytes have their top two bits 00, 01 or
// 10; anything else starts the next record.
func parseCipherSuiteRecords(b []byte) ([]CipherSuite, error) {
	var out []CipherSuite
	for i := 0; i < len(b); {
		var id byte
		switch b[i] {
		case 0xc0:
			if i+1 >= len(b) {
				return out, malformed("cipher suite record truncated at byte %d", i)
			}
			id = b[i+1]
			i += 2
		case 0xc1:
			if i+4 >= len(b) {
				return out, malformed("OEM cipher suite record truncated at byte %d", i)
			}
			id = b[i+1]
			i += 5
		default:
			return out, malformed("cipher suite record starts with %#02x", b[i])
		}
		for i < len(b) && b[i]&0xc0 != 0xc0 {
			i++
		}
		out = append(out, CipherSuite(id))
	}
	return out, nil
}

// SessionInfo is one answer of Get Session Info (App 0x3d): a session in
// the BMC's session table, and the table's size and occupancy.
type SessionInfo struct {
	// Handle identifies the session in the table (0: no such session).
	Handle byte `json:"handle"`
	// Slots is the table's size; Active how many sessions are open.
	Slots  int `json:"slots"`
	Active int `json:"active"`
	// UserID is the BMC user slot the session logged in with.
	UserID    byte      `json:"user_id"`
	Privilege Privilege `json:"privilege"`
	Channel   byte      `json:"channel"`
	// IPMI20 is set for an RMCP+ session (IPMI 1.5 otherwise).
	IPMI20 bool `json:"ipmi20"`
	// Remote is the console's address, when the BMC reports it (LAN
	// channels).
	Remote netip.AddrPort `json:"remote,omitzero"`
}

// parseSessionInfo decodes Get Session Info's response data (IPMI 2.0
// table 22-26). Three bytes mean "no active session at that index".
func parseSessionInfo(b []byte) (SessionInfo, error) {
	var s SessionInfo
	if len(b) < 3 {
		return s, malformed("session info of %d bytes", len(b))
	}
	s.Handle, s.Slots, s.Active = b[0], int(b[1]&0x3f), int(b[2]&0x3f)
	if len(b) == 3 {
		return s, nil
	}
	if len(b) < 6 {
		return s, malformed("session info of %d bytes", len(b))
	}
	s.UserID, s.Privilege = b[3]&0x3f, Privilege(b[4]&0x0f)
	s.IPMI20, s.Channel = b[5]>>4 == 1, b[5]&0x0f
	if len(b) >= 18 {
		ip := netip.AddrFrom4([4]byte(b[6:10]))
		s.Remote = netip.AddrPortFrom(ip, binary.LittleEndian.Uint16(b[16:18]))
	}
	return s, nil
}

// SessionInfo runs Get Session Info for index (0: this session; n: the
// n-th active session).
func (s *Session) SessionInfo(ctx context.Context, index byte) (SessionInfo, error) {
	b, err := s.Do(ctx, 0x06, 0x3d, []byte{index})
	if err != nil {
		return SessionInfo{}, err
	}
	return parseSessionInfo(b)
}

// Sessions reads the BMC's whole session table: this session first, then
// every active session (this one included again, by its handle). An index
// past the last session ends the walk, whether the BMC answers it with
// handle 0 or with completion code 0xCB/0xCC.
func (s *Session) Sessions(ctx context.Context) (self SessionInfo, all []SessionInfo, err error) {
	if self, err = s.SessionInfo(ctx, 0); err != nil {
		return self, nil, err
	}
	n := self.Active
	if self.Slots > 0 && n > self.Slots {
		n = self.Slots
	}
	for i := 1; i <= n && i < 0x3f; i++ {
		si, err := s.SessionInfo(ctx, byte(i))
		var ce *CompletionError
		if errors.As(err, &ce) && (ce.Code == 0xcb || ce.Code == 0xcc) {
			break // past the last active session (the table changed under us)
		}
		if err != nil {
			return self, all, err
		}
		if si.Handle == 0 {
			break // the table changed under us: fewer sessions now
		}
		all = append(all, si)
	}
	return self, all, nil
}

// CloseHandle closes another session of the BMC by its handle (Close
// Session with session ID 0 and the handle, IPMI 2.0 §22.19). BMCs allow it
// to an Administrator session.
func (s *Session) CloseHandle(ctx context.Context, handle byte) error {
	_, err := s.Do(ctx, 0x06, 0x3c, []byte{0, 0, 0, 0, handle})
	return err
}

// UserName reads the name of user slot id (Get User Name, App 0x46;
// Operator privilege).
func (s *Session) UserName(ctx context.Context, id byte) (string, error) {
	b, err := s.Do(ctx, 0x06, 0x46, []byte{id & 0x3f})
	if err != nil {
		return "", err
	}
	return parseUserName(b)
}

func parseUserName(b []byte) (string, error) {
	if len(b) < 16 {
		return "", malformed("user name of %d bytes", len(b))
	}
	n := 0
	for n < 16 && b[n] != 0 {
		n++
	}
	return string(b[:n]), nil
}

// Enclosure manager OEM commands (lightsout's enclosure protocol, NetFn
// 0x30; see docs/simulator.md). An enclosure manager answers them about
// the blades in its slots: whether a blade's BMC answers the manager over
// the enclosure's internal link, and its identify lamp, which the manager
// drives and senses directly.
const (
	NetFnEnclosure      = 0x30
	CmdBladeStatus      = 0x01
	CmdSetBladeIdentify = 0x02
	CmdBladeIdentify    = 0x03
)

func parseBladeStatus(b []byte) (BladeStatus, error) {
	if len(b) < 2 {
		return BladeStatus{}, malformed("blade status of %d bytes", len(b))
	}
	st := BladeStatus{Slot: int(b[0]), Present: b[1]&0x01 != 0, BMCAnswers: b[1]&0x02 != 0}
	st.PowerOn = st.BMCAnswers && b[1]&0x04 != 0
	return st, nil
}

// BladeStatus asks an enclosure manager about the blade in slot.
func (s *Session) BladeStatus(ctx context.Context, slot int) (BladeStatus, error) {
	b, err := s.Do(ctx, NetFnEnclosure, CmdBladeStatus, []byte{byte(slot)})
	if err != nil {
		return BladeStatus{}, err
	}
	return parseBladeStatus(b)
}

// SetBladeIdentify has an enclosure manager turn the identify lamp of the
// blade in slot on or off (Operator privilege).
func (s *Session) SetBladeIdentify(ctx context.Context, slot int, on bool) error {
	v := byte(0)
	if on {
		v = 1
	}
	_, err := s.Do(ctx, NetFnEnclosure, CmdSetBladeIdentify, []byte{byte(slot), v})
	return err
}

func parseBladeIdentify(b []byte) (bool, error) {
	if len(b) < 2 {
		return false, malformed("blade identify of %d bytes", len(b))
	}
	return b[1]&0x01 != 0, nil
}

// BladeIdentify reads back whether the identify lamp of the blade in slot
// is lit, as the enclosure manager senses it.
func (s *Session) BladeIdentify(ctx context.Context, slot int) (bool, error) {
	b, err := s.Do(ctx, NetFnEnclosure, CmdBladeIdentify, []byte{byte(slot)})
	if err != nil {
		return false, err
	}
	return parseBladeIdentify(b)
}

// BMCSessionID is the session's ID on the BMC side.
func (s *Session) BMCSessionID() uint32 { return s.bmcID }

// LocalPorts are the UDP ports of the engine's IPv4 sockets: a BMC's session
// table names the console's address and port, and these tell the engine's
// own sessions from other tools on the same host.
func (e *Engine) LocalPorts() []uint16 {
	var out []uint16
	socks := slices.Clone(e.v4)
	for _, r := range e.routes { // a zone's own source address (Config.Routes)
		socks = append(socks, r.sock)
	}
	for _, s := range socks {
		if a, ok := s.c.LocalAddr().(*net.UDPAddr); ok && !slices.Contains(out, uint16(a.Port)) {
			out = append(out, uint16(a.Port))
		}
	}
	return out
}
