package ipmi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// RMCP / ASF / IPMI wire constants (IPMI 2.0 §13, ASF 2.0 §3.2.4).
const (
	rmcpVersion   = 0x06
	rmcpSeqNoAck  = 0xff
	classASF      = 0x06
	classIPMI     = 0x07
	asfIANA       = 4542
	asfTypePing   = 0x80
	asfTypePong   = 0x40
	authTypeNone  = 0x00
	authTypeRMCPP = 0x06

	payloadIPMI         = 0x00
	payloadOpenSessReq  = 0x10
	payloadOpenSessResp = 0x11
	payloadRAKP1        = 0x12
	payloadRAKP2        = 0x13
	payloadRAKP3        = 0x14
	payloadRAKP4        = 0x15

	flagEncrypted     = 0x80
	flagAuthenticated = 0x40

	bmcSlaveAddr     = 0x20
	consoleSWID      = 0x81
	nextHeaderIPMI   = 0x07
	maxDatagram      = 1024
	sessionHeaderLen = 12 // auth type .. payload length (IPMI 2.0)
)

// ErrMalformed is wrapped by every decode failure of network input.
var ErrMalformed = errors.New("ipmi: malformed datagram")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// guard runs a decode that may call into third-party code and turns a panic
// into ErrMalformed. Every go-ipmi Unpack on network bytes goes through it.
func guard(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = malformed("%s: decoder panicked: %v", what, r)
		}
	}()
	return f()
}

// rmcpHeader writes the 4-byte RMCP header for class.
func rmcpHeader(b []byte, class byte) {
	b[0], b[1], b[2], b[3] = rmcpVersion, 0, rmcpSeqNoAck, class
}

// buildPing is an ASF Presence Ping with the given message tag.
func buildPing(tag byte) []byte {
	b := make([]byte, 12)
	rmcpHeader(b, classASF)
	binary.BigEndian.PutUint32(b[4:8], asfIANA)
	b[8] = asfTypePing
	b[9] = tag
	return b
}

// datagram is what the demultiplexer learns from a datagram's first bytes,
// without any crypto: enough to route it.
type datagram struct {
	class       byte
	asfType     byte
	asfTag      byte
	authType    byte // IPMI class: 0x06 for RMCP+, else IPMI 1.5 auth type
	payloadType byte // RMCP+ payload type without flag bits
	flags       byte // RMCP+ encrypted/authenticated bits
	sessionID   uint32
	seq         uint32
	payload     []byte // RMCP+ payload or 1.5 IPMI message
	// consoleID is the remote console session ID carried inside session-less
	// RMCP+ handshake replies (open session response, RAKP 2 and 4).
	consoleID uint32
	// shortError: a handshake error reply of only tag and status.
	shortError bool
	// longLen: an unauthenticated handshake reply whose header claims one
	// payload byte more than the datagram holds (Supermicro H8QME's RAKP
	// 2, FreeIPMI "supermicro20"): the bytes present were taken.
	longLen bool
	// authEnd is the offset just past the IPMI 2.0 integrity pad/next header,
	// i.e. where the AuthCode starts (authenticated packets only).
	authEnd int
}

// parseDatagram routes a datagram. It never panics and never allocates
// beyond the returned struct; payload aliases b.
func parseDatagram(b []byte) (datagram, error) {
	var d datagram
	if len(b) < 4 {
		return d, malformed("%d bytes is shorter than an RMCP header", len(b))
	}
	if b[0] != rmcpVersion {
		return d, malformed("RMCP version %#02x", b[0])
	}
	d.class = b[3] & 0x1f
	switch d.class {
	case classASF:
		if len(b) < 12 {
			return d, malformed("ASF message of %d bytes", len(b))
		}
		if binary.BigEndian.Uint32(b[4:8]) != asfIANA {
			return d, malformed("ASF IANA %d", binary.BigEndian.Uint32(b[4:8]))
		}
		d.asfType, d.asfTag = b[8], b[9]
		return d, nil
	case classIPMI:
	default:
		return d, malformed("RMCP class %#02x", d.class)
	}
	if len(b) < 5 {
		return d, malformed("IPMI message without session header")
	}
	d.authType = b[4]
	if d.authType != authTypeRMCPP {
		// IPMI 1.5 session header: auth type, seq(4), session id(4),
		// [auth code(16) when auth type != none], length(1), message.
		off := 5
		if len(b) < off+9 {
			return d, malformed("IPMI 1.5 header truncated")
		}
		d.seq = binary.LittleEndian.Uint32(b[off : off+4])
		d.sessionID = binary.LittleEndian.Uint32(b[off+4 : off+8])
		off += 8
		if d.authType != authTypeNone {
			off += 16
		}
		if len(b) < off+1 {
			return d, malformed("IPMI 1.5 header truncated")
		}
		n := int(b[off])
		off++
		if len(b) < off+n {
			return d, malformed("IPMI 1.5 length %d exceeds datagram", n)
		}
		d.payload = b[off : off+n]
		return d, nil
	}
	if len(b) < 4+sessionHeaderLen {
		return d, malformed("RMCP+ session header truncated")
	}
	h := b[4:]
	d.flags = h[1] & 0xc0
	d.payloadType = h[1] & 0x3f
	if d.payloadType == 0x02 { // OEM explicit: has IANA + payload ID, not used
		return d, malformed("OEM explicit payload")
	}
	d.sessionID = binary.LittleEndian.Uint32(h[2:6])
	d.seq = binary.LittleEndian.Uint32(h[6:10])
	n := int(binary.LittleEndian.Uint16(h[10:12]))
	start := 4 + sessionHeaderLen
	if len(b) < start+n {
		// Supermicro H8QME (FreeIPMI "supermicro20") claims one byte more
		// than its RAKP 2 holds: an unauthenticated handshake reply one
		// byte short of its length is read as the bytes present. Its
		// contents are verified (the key-exchange code) as any other's.
		if len(b) != start+n-1 || d.flags != 0 || !handshakeReply(d.payloadType) {
			return d, malformed("RMCP+ payload length %d exceeds datagram of %d", n, len(b))
		}
		n, d.longLen = n-1, true
	}
	d.payload = b[start : start+n]
	if d.flags&flagAuthenticated != 0 {
		// pad(0..3) pad length(1) next header(1) then AuthCode.
		end := start + n
		pad := (4 - (sessionHeaderLen+n+2)%4) % 4
		if len(b) < end+pad+2 {
			return d, malformed("integrity trailer truncated")
		}
		if int(b[end+pad]) != pad || b[end+pad+1] != nextHeaderIPMI {
			return d, malformed("integrity pad length %d / next header %#02x", b[end+pad], b[end+pad+1])
		}
		d.authEnd = end + pad + 2
	}
	switch d.payloadType {
	case payloadOpenSessResp, payloadRAKP2, payloadRAKP4:
		if n := len(d.payload); n >= 2 && n < 8 && d.payload[1] != 0 {
			// An error reply cut to tag and status, no console ID (OpenIPMI's
			// ipmi_sim refusing a cipher suite). Routed by source address;
			// the waiting handshake matches it by tag.
			d.shortError = true
			break
		}
		if len(d.payload) < 8 {
			return d, malformed("handshake reply of %d bytes", len(d.payload))
		}
		d.consoleID = binary.LittleEndian.Uint32(d.payload[4:8])
	}
	return d, nil
}

func handshakeReply(pt byte) bool {
	return pt == payloadOpenSessResp || pt == payloadRAKP2 || pt == payloadRAKP4
}

// ipmiChecksum is the two's-complement checksum of IPMB messages.
func ipmiChecksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return -s
}

// buildRequest is an IPMI LAN request message (BMC at 0x20, console SWID 0x81).
func buildRequest(netFn, cmd, rqSeq byte, data []byte) []byte {
	m := make([]byte, 7+len(data))
	m[0] = bmcSlaveAddr
	m[1] = netFn << 2
	m[2] = ipmiChecksum(m[0:2])
	m[3] = consoleSWID
	m[4] = rqSeq << 2
	m[5] = cmd
	copy(m[6:], data)
	m[len(m)-1] = ipmiChecksum(m[3 : len(m)-1])
	return m
}

// response is a decoded IPMI LAN response message.
type response struct {
	netFn, cmd, rqSeq, cc byte
	data                  []byte
}

// parseResponse decodes an IPMI LAN response and checks both checksums.
func parseResponse(m []byte) (response, error) {
	return parseResponseSums(m, true)
}

// errChecksum: an IPMI message whose only fault is a checksum.
var errChecksum = fmt.Errorf("%w: IPMI checksum", ErrMalformed)

// parseResponseSums decodes an IPMI LAN response, checking its checksums
// when sums is set (errChecksum when only they are wrong). Unchecked, it
// serves replies whose integrity the session's HMAC already proved (some
// Supermicro BMCs get the checksums wrong: FreeIPMI "nochecksumcheck").
func parseResponseSums(m []byte, sums bool) (response, error) {
	var r response
	if len(m) < 8 {
		return r, malformed("IPMI response of %d bytes", len(m))
	}
	if m[1]>>2&1 != 1 {
		return r, malformed("IPMI netFn %#02x is not a response", m[1]>>2)
	}
	if sums && (ipmiChecksum(m[0:2]) != m[2] || ipmiChecksum(m[3:len(m)-1]) != m[len(m)-1]) {
		return r, errChecksum
	}
	r.netFn = m[1] >> 2
	r.rqSeq = m[4] >> 2
	r.cmd = m[5]
	r.cc = m[6]
	r.data = m[7 : len(m)-1]
	return r, nil
}

// buildV15 wraps an IPMI message in a session-less IPMI 1.5 packet (auth
// type none), the form consoles use for Get Channel Authentication
// Capabilities before any session exists.
func buildV15(msg []byte) []byte {
	b := make([]byte, 4+10+len(msg))
	rmcpHeader(b, classIPMI)
	b[4] = authTypeNone
	// seq and session ID zero
	b[13] = byte(len(msg))
	copy(b[14:], msg)
	return b
}

// buildRMCPPlus builds an IPMI 2.0 packet; when authenticate is set it
// appends the integrity pad, pad length, next header and the AuthCode
// computed by mac over bytes from the auth type field on.
func buildRMCPPlus(payloadType, flags byte, sessionID, seq uint32, payload []byte, mac func([]byte) []byte) []byte {
	n := len(payload)
	size := 4 + sessionHeaderLen + n
	pad := 0
	if mac != nil {
		pad = (4 - (sessionHeaderLen+n+2)%4) % 4
		size += pad + 2
	}
	b := make([]byte, size, size+32)
	rmcpHeader(b, classIPMI)
	b[4] = authTypeRMCPP
	b[5] = payloadType | flags
	binary.LittleEndian.PutUint32(b[6:10], sessionID)
	binary.LittleEndian.PutUint32(b[10:14], seq)
	binary.LittleEndian.PutUint16(b[14:16], uint16(n))
	copy(b[16:], payload)
	if mac != nil {
		off := 16 + n
		for i := 0; i < pad; i++ {
			b[off+i] = 0xff
		}
		b[off+pad] = byte(pad)
		b[off+pad+1] = nextHeaderIPMI
		b = append(b, mac(b[4:])...)
	}
	return b
}
