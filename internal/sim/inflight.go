package sim

import (
	"encoding/binary"
	"hash/fnv"
	"net"
	"net/netip"
	"time"

	"github.com/bougou/go-ipmi/pkg/crypto"
	"github.com/bougou/go-ipmi/pkg/protocol"
)

// reqKey is a request's identity, for the count of requests in flight: the
// copies a console retransmits carry the same one, two distinct requests
// two different ones.
//
//   - session setup (Open Session, RAKP 1, RAKP 3): the payload type, the
//     message tag and the session ID the message names;
//   - a request in an RMCP+ session: the session ID and the IPMI message's
//     netFn, command and rqSeq (a retransmitted copy has a new session
//     sequence number, and a new IV when encrypted, but the same message);
//   - an IPMI 1.5 request: its session ID, netFn, command and rqSeq;
//   - anything else (a presence ping, a payload that cannot be read): a hash
//     of its bytes — identical bytes are the same request.
type reqKey struct {
	from netip.AddrPort
	kind uint8
	a, b uint32
}

const (
	keyBytes uint8 = iota
	keySetup
	keyV2
	keyV15
)

// pendingCopy is one datagram of a request received and not yet answered.
type pendingCopy struct {
	key reqKey
	at  time.Time
}

// requestKey computes the identity of the request pkt from from.
func (b *BMC) requestKey(co *core, pkt []byte, from *net.UDPAddr) reqKey {
	k := reqKey{from: unmapped(from)}
	if sid, _, pt, flags, pl, ok := rmcpPlusHeader(pkt); ok {
		if sid == 0 {
			if len(pl) >= 8 {
				k.kind, k.a, k.b = keySetup, uint32(pt)<<8|uint32(pl[0]), binary.LittleEndian.Uint32(pl[4:8])
				return k
			}
		} else if msg, ok := sessionMessage(co, sid, flags, pl); ok {
			if netFn, cmd, rqSeq, ok := msgIdentity(msg); ok {
				k.kind, k.a, k.b = keyV2, sid, uint32(netFn)<<16|uint32(cmd)<<8|uint32(rqSeq)
				return k
			}
		}
	} else if p, ok := parseV15(pkt); ok {
		if netFn, cmd, rqSeq, ok := msgIdentity(p.msg); ok {
			k.kind, k.a, k.b = keyV15, p.sessionID, uint32(netFn)<<16|uint32(cmd)<<8|uint32(rqSeq)
			return k
		}
	}
	h := fnv.New64a()
	_, _ = h.Write(pkt)
	s := h.Sum64()
	k.kind, k.a, k.b = keyBytes, uint32(s>>32), uint32(s)
	return k
}

// rmcpPlusHeader is rmcpPlus with the payload type's flags byte.
func rmcpPlusHeader(pkt []byte) (sid, seq uint32, pt, flags uint8, pl []byte, ok bool) {
	if len(pkt) < 16 || pkt[3]&0x1F != 0x07 || pkt[4] != 0x06 {
		return 0, 0, 0, 0, nil, false
	}
	sid, seq, pt, flags, pl, ok = protocol.ParseRMCPPlusHeader(pkt)
	return
}

// sessionMessage is the IPMI message an in-session RMCP+ payload carries,
// decrypted with the session's K2 when encrypted (AES-CBC-128 only).
func sessionMessage(co *core, sid uint32, flags uint8, pl []byte) ([]byte, bool) {
	if flags&0x80 == 0 {
		return pl, true
	}
	if co == nil {
		return nil, false
	}
	sess, err := co.bmc.Sessions.Get(sid)
	if err != nil {
		return nil, false
	}
	// K2 is written during RAKP under the session's ProcMu.
	sess.ProcMu.Lock()
	k2 := sess.K2
	sess.ProcMu.Unlock()
	if len(k2) < 16 {
		return nil, false
	}
	msg, err := crypto.DecryptAESPayload(pl, k2)
	return msg, err == nil
}

// msgIdentity reads netFn, command and rqSeq of an IPMI request message
// (rsSA, netFn/rsLUN, checksum, rqSA, rqSeq/rqLUN, cmd, …).
func msgIdentity(msg []byte) (netFn, cmd, rqSeq uint8, ok bool) {
	if len(msg) < 7 {
		return 0, 0, 0, false
	}
	return msg[1] >> 2, msg[5], msg[4] >> 2, true
}
