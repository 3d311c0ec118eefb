package sim

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/crypto"
	"github.com/bougou/go-ipmi/pkg/protocol"
	"github.com/bougou/go-ipmi/pkg/types"
	"gopkg.in/yaml.v3"
)

// QuirkSet is a set of vendor quirks a simulated BMC imitates: behaviours
// of real BMCs that break naive clients (FreeIPMI's workaround list,
// /work/shared/research/ipmi-quirks.md; docs/interop.md says what
// lightsout does about each). Written as a list of names (or one name) in
// JSON and YAML: quirk: [no_ping, suite3_only].
type QuirkSet uint32

const (
	// QuirkNoPing drops RMCP presence pings (ASF) while IPMI is answered:
	// FreeIPMI's ipmipower "ipmiping" workaround; Intel M50FCP, Windmill,
	// pyghmi.
	QuirkNoPing QuirkSet = 1 << iota
	// QuirkSuite3Only lists only cipher suite 3 in Get Channel Cipher
	// Suites and answers any Open Session proposal with suite 3's
	// algorithms, as pyghmi (OpenStack virtualbmc) does.
	QuirkSuite3Only
	// QuirkOpenSess01 answers Open Session status 0x01 (insufficient
	// resources) for every proposal but suite 17's, as Intel M50CYP does
	// (FreeIPMI bugs doc LAN Auth #28).
	QuirkOpenSess01
	// QuirkGUID0xD4 answers Get System GUID with completion code 0xD4
	// (insufficient privilege) whatever the session's privilege, as
	// Supermicro X8DTL/X9DRFR and Windmill answer optional commands
	// (FreeIPMI bugs doc Misc #2/#5/#6).
	QuirkGUID0xD4
	// QuirkAuthCaps misreports Get Channel Authentication Capabilities:
	// no authentication types, K_g set, no user with a name, and IPMI 1.5
	// only — while RMCP+ sessions work as usual (FreeIPMI "authcap": Asus
	// P5M2, Intel SR1520ML, Sun Fire X4150, Vadatech VT811).
	QuirkAuthCaps
	// QuirkIPMI15Only is a BMC that speaks IPMI 1.5 only: Get Channel
	// Authentication Capabilities without the IPMI 2.0 extended data, and
	// every RMCP+ datagram ignored (FreeIPMI: "ipmi 2.0 unavailable"; the
	// IPMI 2.0 firmware of HP DL145 G1-era BMCs is the other way round).
	QuirkIPMI15Only
	// QuirkICVCipher0 sends a 12-byte integrity check value in a
	// successful RAKP 4 of a suite 0 session, where it must be empty
	// (FreeIPMI "integritycheckvalue": Supermicro X8DTG/X8DTU, Intel
	// S5500WBV, S2600JF). Only matters with suite 0 enabled.
	QuirkICVCipher0
	// QuirkRAKP2Len claims in a successful RAKP 2's header one payload
	// byte more than it sends (FreeIPMI "supermicro20": Supermicro H8QME
	// with a SIMSO card, "payload lengths off by 1").
	QuirkRAKP2Len
	// QuirkCipherTags lists Get Channel Cipher Suites records whose
	// algorithm bytes carry the wrong tag bits (integrity tagged 10b,
	// confidentiality 11b: FreeIPMI "sun20", Sun Fire 4100 ILOM).
	QuirkCipherTags
	// QuirkOpenSess0x0A refuses a suite it does not do with RMCP+ status
	// 0x0A ("unauthorized role") instead of 0x11 (FreeIPMI bugs doc LAN
	// Auth #19: Supermicro X8DTG).
	QuirkOpenSess0x0A
	// QuirkOpenSess0x12 refuses a suite it does not do with status 0x12
	// ("illegal parameter", LAN Auth #20: MSI MS-91D2).
	QuirkOpenSess0x12
	// QuirkListedRefused lists suite 17 in Get Channel Cipher Suites but
	// refuses it in Open Session with status 0x11 (LAN Auth #22: Intel
	// S2600JF advertises suite 15 and rejects it).
	QuirkListedRefused
	// QuirkUnlistedUsable leaves suite 0 out of Get Channel Cipher Suites
	// while a session with it still opens (LAN Auth #15: a disabled suite
	// is still usable on Supermicro X8DTG/X8DTU, MSI MS-91D2, Windmill).
	// Only matters with suite 0 enabled (cipher0 or weak_suites).
	QuirkUnlistedUsable
	// QuirkExactPrivilege refuses RAKP 1 with status 0x0A unless the
	// requested maximum privilege is exactly the user's limit (LAN Auth
	// #24: Xyratex HB-F8-SRAY).
	QuirkExactPrivilege
	// QuirkNoCloseReply closes the session on Close Session but sends no
	// reply (LAN Session #1: Intel SR870BN4).
	QuirkNoCloseReply
	// QuirkSeqGaps skips every other outbound session sequence number
	// (1, 3, 5, …: LAN Session #9, ASRock MT-C224 in shared-NIC mode).
	QuirkSeqGaps
	// QuirkBadChecksum sends every in-session IPMI reply with a wrong
	// trailing IPMI checksum, encrypted and authenticated as usual
	// (FreeIPMI "nochecksumcheck": Supermicro X9SCM-iiF, X9DRi-F,
	// X9DRFR).
	QuirkBadChecksum
	// QuirkRAKP2GUIDZero sends an all-zero managed system GUID in RAKP 2
	// (authenticated as usual) while Get System GUID answers the real one:
	// RAKP 2's GUID cannot stand for the command's.
	QuirkRAKP2GUIDZero
	// QuirkRAKP2GUIDOther sends in RAKP 2 a GUID other than Get System
	// GUID's answer (a BMC that puts its own device GUID there).
	QuirkRAKP2GUIDOther
	quirkEnd
)

var quirkNames = []struct {
	q    QuirkSet
	name string
	desc string
}{
	{QuirkNoPing, "no_ping", "no RMCP presence pong (Intel M50FCP, Windmill, pyghmi)"},
	{QuirkSuite3Only, "suite3_only", "lists only suite 3 and answers suite 3's algorithms to any proposal (pyghmi)"},
	{QuirkOpenSess01, "opensess_0x01", "Open Session status 0x01 for every suite but 17 (Intel M50CYP, LAN Auth #28)"},
	{QuirkGUID0xD4, "guid_0xd4", "Get System GUID answered 0xD4 whatever the privilege (Supermicro, Windmill; Misc #2/#5/#6)"},
	{QuirkAuthCaps, "authcap", "Get Channel Auth Capabilities misreports: no auth types, K_g set, no named users, IPMI 1.5 only (Asus, Intel SR1520ML, Sun X4150)"},
	{QuirkIPMI15Only, "ipmi15_only", "IPMI 1.5 only: no IPMI 2.0 capabilities, RMCP+ ignored"},
	{QuirkICVCipher0, "icv_cipher0", "non-empty RAKP 4 integrity check value with suite 0 (integritycheckvalue: Supermicro X8DTG, Intel S5500WBV)"},
	{QuirkRAKP2Len, "rakp2_len", "RAKP 2 header claims one payload byte more than sent (supermicro20: Supermicro H8QME)"},
	{QuirkCipherTags, "cipher_tags", "cipher suite records with wrong algorithm tag bits (sun20: Sun Fire 4100 ILOM)"},
	{QuirkOpenSess0x0A, "opensess_0x0a", "a suite it does not do refused with status 0x0A instead of 0x11 (LAN Auth #19)"},
	{QuirkOpenSess0x12, "opensess_0x12", "a suite it does not do refused with status 0x12 instead of 0x11 (LAN Auth #20)"},
	{QuirkListedRefused, "listed_refused", "lists suite 17 but refuses it (LAN Auth #22: Intel S2600JF)"},
	{QuirkUnlistedUsable, "unlisted_usable", "suite 0 not listed, still usable (LAN Auth #15: Supermicro X8DTG)"},
	{QuirkExactPrivilege, "exact_privilege", "RAKP 1 refused (0x0A) unless the privilege asked is exactly the user's limit (LAN Auth #24: Xyratex)"},
	{QuirkNoCloseReply, "no_close_reply", "Close Session closes but is not answered (LAN Session #1: Intel SR870BN4)"},
	{QuirkSeqGaps, "seq_gaps", "outbound session sequence numbers skip (1, 3, 5: LAN Session #9, ASRock MT-C224)"},
	{QuirkBadChecksum, "bad_checksum", "in-session replies with a wrong IPMI checksum, authenticated (nochecksumcheck: Supermicro X9SCM, X9DRi-F)"},
	{QuirkRAKP2GUIDZero, "rakp2_guid_zero", "RAKP 2 carries an all-zero managed system GUID; Get System GUID answers the real one"},
	{QuirkRAKP2GUIDOther, "rakp2_guid_other", "RAKP 2 carries a GUID other than Get System GUID's answer (the BMC's own device GUID)"},
}

// QuirkNames lists the quirk names the simulator knows.
func QuirkNames() []string {
	out := make([]string, len(quirkNames))
	for i, n := range quirkNames {
		out[i] = n.name
	}
	return out
}

// Names lists the quirks in the set.
func (s QuirkSet) Names() []string {
	var out []string
	for _, n := range quirkNames {
		if s&n.q != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

func (s QuirkSet) String() string { return strings.Join(s.Names(), ",") }

func (s *QuirkSet) fromNames(names []string) error {
	*s = 0
	for _, name := range names {
		i := slices.IndexFunc(quirkNames, func(n struct {
			q    QuirkSet
			name string
			desc string
		}) bool {
			return n.name == strings.TrimSpace(name)
		})
		if i < 0 {
			return fmt.Errorf("unknown quirk %q (known: %s)", name, strings.Join(QuirkNames(), ", "))
		}
		*s |= quirkNames[i].q
	}
	return nil
}

// MarshalJSON writes the set as a list of names.
func (s QuirkSet) MarshalJSON() ([]byte, error) {
	n := s.Names()
	if n == nil {
		n = []string{}
	}
	return json.Marshal(n)
}

// UnmarshalJSON reads a list of names or one name.
func (s *QuirkSet) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return fmt.Errorf("quirk: want a quirk name or a list of them (%s)", strings.Join(QuirkNames(), ", "))
		}
		names = []string{one}
	}
	return s.fromNames(names)
}

// MarshalYAML writes the set as a list of names.
func (s QuirkSet) MarshalYAML() (any, error) { return s.Names(), nil }

// UnmarshalYAML reads a list of names or one name.
func (s *QuirkSet) UnmarshalYAML(n *yaml.Node) error {
	var names []string
	if n.Kind == yaml.ScalarNode {
		names = []string{n.Value}
	} else if err := n.Decode(&names); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: quirk: want a quirk name or a list of them (%s)", n.Line, strings.Join(QuirkNames(), ", "))}}
	}
	if err := s.fromNames(names); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: quirk: %v", n.Line, err)}}
	}
	return nil
}

// Algorithm numbers of the Open Session Request's payloads (IPMI 2.0
// tables 13-17..19) for suites 3 and 17.
var (
	algsSuite3  = [3]byte{0x01, 0x01, 0x01} // HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128
	algsSuite17 = [3]byte{0x03, 0x04, 0x01} // HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128
)

// openSessAlgs returns the algorithm bytes' offsets in an Open Session
// Request payload (auth, integrity, confidentiality), false if too short.
func openSessAlgs(pl []byte) ([3]int, bool) {
	if len(pl) < 32 {
		return [3]int{}, false
	}
	return [3]int{12, 20, 28}, true
}

// quirkOpenSession applies the Open Session quirks to an incoming request
// payload (rewritten in place). It returns a reply to send instead of
// letting the server see the request, or nil.
func quirkOpenSession(q QuirkSet, pl []byte) []byte {
	off, ok := openSessAlgs(pl)
	if !ok {
		return nil
	}
	algs := [3]byte{pl[off[0]], pl[off[1]], pl[off[2]]}
	if q&QuirkOpenSess01 != 0 && algs != algsSuite17 {
		return rmcpPlusError(ptOpenSessRsp, pl[0], rmcpInsufficientResources, leUint32(pl[4:8]))
	}
	if q&QuirkListedRefused != 0 && algs == algsSuite17 {
		return rmcpPlusError(ptOpenSessRsp, pl[0], rmcpNoCipherSuiteMatch, leUint32(pl[4:8]))
	}
	if q&QuirkSuite3Only != 0 {
		for i, o := range off {
			pl[o] = algsSuite3[i]
		}
	}
	return nil
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// isPresencePing reports an RMCP ASF Presence Ping.
func isPresencePing(pkt []byte) bool {
	return len(pkt) >= 12 && pkt[0] == 0x06 && pkt[3] == 0x06 && pkt[8] == 0x80
}

// quirkIn applies the quirks that act on an incoming datagram before the
// server sees it: false drops it, or a reply to send instead.
func quirkIn(q QuirkSet, co *core, pkt []byte) (admit bool, reply []byte) {
	if q&QuirkIPMI15Only != 0 && len(pkt) > 4 && pkt[3]&0x1f == 0x07 && pkt[4] == 0x06 {
		return false, nil // an IPMI 1.5 BMC does not know RMCP+
	}
	if q&QuirkExactPrivilege != 0 && co != nil {
		if pt, sid, pl, ok := rmcpPlus(pkt); ok && sid == 0 && pt == ptRAKP1 {
			if r := exactPrivilege(co, pl); r != nil {
				return false, r
			}
		}
	}
	return true, nil
}

// exactPrivilege answers RAKP 1 with status 0x0A when the requested
// maximum privilege is not exactly the user's limit (QuirkExactPrivilege).
func exactPrivilege(co *core, pl []byte) []byte {
	if len(pl) < 28 {
		return nil
	}
	n := int(pl[27])
	if n > 16 || len(pl) < 28+n {
		return nil
	}
	u, err := co.bmc.Users.GetByName(string(pl[28 : 28+n]))
	if err != nil {
		return nil
	}
	want := u.ChannelAccess[lanChannel].MaxPrivilege
	if bmc.PrivilegeLevel(pl[24]&0x0f) == want {
		return nil
	}
	id := leUint32(pl[4:8])
	sess, err := co.bmc.Sessions.Get(id)
	if err != nil {
		return nil
	}
	consoleID := sess.ConsoleID
	_ = co.bmc.Sessions.Close(id)
	return rmcpPlusError(ptRAKP2, pl[0], rmcpUnauthorizedRole, consoleID)
}

// quirkOut applies the quirks that rewrite a handshake reply on its way
// out (data is not yet shared; a rewritten copy is returned).
func quirkOut(q QuirkSet, data []byte) []byte {
	pt, sid, pl, ok := rmcpPlus(data)
	if !ok || sid != 0 || len(pl) < 8 {
		return data
	}
	switch {
	case pt == ptOpenSessRsp && q&(QuirkOpenSess0x0A|QuirkOpenSess0x12) != 0:
		switch pl[1] {
		case 0x04, 0x05, 0x06, 0x07, 0x10, 0x11: // "not this suite"
			st := byte(0x12)
			if q&QuirkOpenSess0x0A != 0 {
				st = rmcpUnauthorizedRole
			}
			out := append([]byte(nil), data...)
			out[16+1] = st // the payload follows the 4-byte RMCP and 12-byte session headers
			return out
		}
	case pt == ptRAKP2 && q&QuirkRAKP2Len != 0 && pl[1] == 0 && len(pl) > 40:
		// The header claims one byte more than the payload holds.
		out := append([]byte(nil), data...)
		binary.LittleEndian.PutUint16(out[14:16], uint16(len(pl)+1))
		return out
	case pt == ptRAKP4 && q&QuirkICVCipher0 != 0 && pl[1] == 0 && len(pl) == 8:
		// Suite 0's RAKP 4 carries no integrity check value; this BMC
		// sends 12 bytes of one.
		return growPayload(data, len(pl), bytes.Repeat([]byte{0xa5}, 12))
	}
	return data
}

// growPayload appends extra to the payload of an unauthenticated RMCP+
// packet (the payload ends the datagram) and counts it in the header's
// payload length.
func growPayload(data []byte, n int, extra []byte) []byte {
	out := append(append([]byte(nil), data...), extra...)
	binary.LittleEndian.PutUint16(out[14:16], uint16(n+len(extra)))
	return out
}

// Algorithm numbers (authentication, integrity, confidentiality) of the
// cipher suites go-ipmi's BMC can be configured with (IPMI 2.0 table
// 22-20).
var suiteAlgs = map[types.CipherSuiteID][3]byte{
	0: {0, 0, 0}, 1: {1, 0, 0}, 2: {1, 1, 0}, 3: {1, 1, 1},
	6: {2, 0, 0}, 7: {2, 2, 0}, 8: {2, 2, 1},
	11: {2, 3, 0}, 12: {2, 3, 1},
	15: {3, 0, 0}, 16: {3, 4, 0}, 17: {3, 4, 1},
}

// cipherRecords are the Get Channel Cipher Suites records of the suites
// m offers (start of record C0h, suite ID, then the algorithms tagged 00b,
// 01b and 10b), bent by the quirks: suite 0 left out (unlisted_usable),
// integrity and confidentiality tagged 10b and 11b (cipher_tags).
func cipherRecords(m *bmc.BMC, q QuirkSet) []byte {
	var out []byte
	for _, id := range m.ResolvedCipherSuites() {
		a, ok := suiteAlgs[id]
		if !ok || id == 0 && q&QuirkUnlistedUsable != 0 {
			continue
		}
		tagI, tagC := byte(0x40), byte(0x80)
		if q&QuirkCipherTags != 0 {
			tagI, tagC = 0x80, 0xc0
		}
		out = append(out, 0xc0, byte(id), a[0], tagI|a[1], tagC|a[2])
	}
	return out
}

// takeNoReply reports (once) that the reply to a Close Session from to is
// not to be sent (QuirkNoCloseReply).
func (b *BMC) takeNoReply(to *net.UDPAddr) bool {
	_, ok := b.noReply.LoadAndDelete(unmapped(to))
	return ok
}

func unmapped(a *net.UDPAddr) netip.AddrPort {
	ap := a.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// noteChecksum remembers sess for its console session ID, so its replies
// can be re-sealed with a wrong checksum (QuirkBadChecksum).
func (b *BMC) noteChecksum(sess *bmc.Session) {
	b.trMu.Lock()
	defer b.trMu.Unlock()
	if b.badSum == nil {
		b.badSum = make(map[uint32]*bmc.Session, 1)
	}
	if _, ok := b.badSum[sess.ConsoleID]; !ok && len(b.badSum) >= maxTracked {
		for k := range b.badSum { // bounded: forget one
			delete(b.badSum, k)
			break
		}
	}
	b.badSum[sess.ConsoleID] = sess
}

// badChecksum rewrites an in-session IPMI reply: its message's trailing
// checksum made wrong, then encrypted and authenticated again with the
// session's keys, as a BMC with the bug sends it (QuirkBadChecksum).
// Anything else is returned unchanged.
func (b *BMC) badChecksum(pkt []byte) []byte {
	if len(pkt) < 16 || pkt[3]&0x1f != 0x07 || pkt[4] != 0x06 || pkt[5]&0x3f != ptIPMI {
		return pkt
	}
	b.trMu.Lock()
	sess := b.badSum[leUint32(pkt[6:10])]
	b.trMu.Unlock()
	if sess == nil {
		return pkt
	}
	flags := pkt[5] & 0xc0
	n := int(binary.LittleEndian.Uint16(pkt[14:16]))
	if len(pkt) < 16+n {
		return pkt
	}
	msg := append([]byte(nil), pkt[16:16+n]...)
	encrypted := flags&types.PayloadFlagEncrypted != 0
	if encrypted {
		m, err := crypto.DecryptAESPayload(msg, sess.K2)
		if err != nil {
			return pkt
		}
		msg = m
	}
	if len(msg) < 8 {
		return pkt
	}
	msg[len(msg)-1] ^= 0x5a
	payload := msg
	if encrypted {
		enc, err := crypto.EncryptAESPayload(msg, sess.K2, crypto.RandomBytes(16))
		if err != nil {
			return pkt
		}
		payload = enc
	}
	out := protocol.BuildRMCPPlusPacket(ptIPMI, flags, leUint32(pkt[6:10]), leUint32(pkt[10:14]), payload)
	if flags&types.PayloadFlagAuthenticated == 0 {
		return out
	}
	codeLen, ok := crypto.IntegrityAuthCodeLen(sess.IntegrityAlg)
	if !ok || codeLen == 0 {
		return out
	}
	pad := types.IntegrityPadLen(12, len(payload))
	for i := 0; i < pad; i++ {
		out = append(out, 0xff)
	}
	out = append(out, byte(pad), 0x07)
	code, err := crypto.SessionIntegrityAuthCode(sess.IntegrityAlg, out[4:], sess.K1, "")
	if err != nil || len(code) != codeLen {
		return pkt
	}
	return append(out, code...)
}
