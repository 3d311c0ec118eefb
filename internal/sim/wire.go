package sim

import (
	"encoding/binary"

	"github.com/bougou/go-ipmi/pkg/protocol"
)

// Just enough RMCP / RMCP+ / IPMI 1.5 framing for the transport to look at
// packets (sessions, faults) without going through the server.

// RMCP+ payload types (IPMI 2.0 table 13-16).
const (
	ptIPMI        = 0x00
	ptOpenSessReq = 0x10
	ptOpenSessRsp = 0x11
	ptRAKP1       = 0x12
	ptRAKP2       = 0x13
	ptRAKP3       = 0x14
	ptRAKP4       = 0x15
)

// RMCP+ status codes (IPMI 2.0 table 13-15).
const (
	rmcpInsufficientResources = 0x01
	rmcpUnauthorizedName      = 0x0D
	rmcpInvalidRole           = 0x09
	rmcpUnauthorizedRole      = 0x0A
	rmcpNoCipherSuiteMatch    = 0x11
)

// rmcpPlus reports the payload type and payload of an RMCP+ packet.
func rmcpPlus(pkt []byte) (ptype uint8, sessionID uint32, payload []byte, ok bool) {
	if len(pkt) < 16 || pkt[3]&0x1F != 0x07 || pkt[4] != 0x06 {
		return 0, 0, nil, false
	}
	sid, _, pt, _, pl, ok := protocol.ParseRMCPPlusHeader(pkt)
	return pt, sid, pl, ok
}

// rmcpPlusError builds an unauthenticated session-setup error reply (Open
// Session Response or RAKP Message 2/4 carrying only tag, status and the
// console's session ID).
func rmcpPlusError(ptype, tag, status uint8, consoleID uint32) []byte {
	p := make([]byte, 8)
	p[0] = tag
	p[1] = status
	binary.LittleEndian.PutUint32(p[4:8], consoleID)
	return protocol.BuildRMCPPlusPacket(ptype, 0, 0, 0, p)
}

// v15 is a parsed IPMI 1.5 LAN packet (RMCP class IPMI, auth type != 6).
type v15 struct {
	authType  uint8
	seq       uint32
	sessionID uint32
	authOff   int // offset of the 16-byte auth code; 0 when authType is none
	msgOff    int // offset of the IPMI message
	msg       []byte
}

func parseV15(pkt []byte) (v15, bool) {
	var p v15
	if len(pkt) < 14 || pkt[3]&0x1F != 0x07 || pkt[4] == 0x06 {
		return p, false
	}
	p.authType = pkt[4]
	p.seq = binary.LittleEndian.Uint32(pkt[5:9])
	p.sessionID = binary.LittleEndian.Uint32(pkt[9:13])
	off := 13
	if p.authType != 0 {
		p.authOff = off
		off += 16
	}
	if len(pkt) < off+1 {
		return p, false
	}
	n := int(pkt[off])
	off++
	if len(pkt) < off+n {
		return p, false
	}
	p.msgOff = off
	p.msg = pkt[off : off+n]
	return p, true
}

// ipmiRsp reads netFn, command and completion code of an IPMI response
// message (rqSA netFn chk rsSA seq cmd cc ... chk).
func ipmiRsp(msg []byte) (netFn, cmd, cc uint8, ok bool) {
	if len(msg) < 8 {
		return 0, 0, 0, false
	}
	return msg[1] >> 2, msg[5], msg[6], true
}

// ipmiReq reads netFn, command and request data of an IPMI request message
// (rsSA netFn chk rqSA seq cmd data... chk).
func ipmiReq(msg []byte) (netFn, cmd uint8, data []byte, ok bool) {
	netFn, cmd, data, _, ok = protocol.ParseIPMIRequest(msg)
	return netFn, cmd, data, ok
}
