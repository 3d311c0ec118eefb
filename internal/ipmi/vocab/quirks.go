package vocab

import (
	"encoding/json"
	"strings"
)

// Quirk is a bit set of BMC behaviours the engine detected and works
// around.
type Quirk uint32

const (
	// QuirkNoPing: the BMC does not answer the RMCP presence ping but
	// answers IPMI (Intel M50FCP, Windmill, pyghmi). Learned by the
	// probe; the ping is skipped afterwards.
	QuirkNoPing Quirk = 1 << iota
	// QuirkCounterProposal: Open Session was answered with another
	// suite's algorithms than proposed (pyghmi: suite 3's, whatever was
	// proposed); the session continued with that suite, which is in the
	// allow-list.
	QuirkCounterProposal
	// QuirkStatus01: Open Session answered status 0x01 (insufficient
	// resources) for a suite the BMC does not do, and another suite worked
	// (Intel M50CYP, FreeIPMI bugs doc LAN Auth #28).
	QuirkStatus01
	// QuirkNoSuiteList: Get Channel Cipher Suites was refused, silent or
	// unreadable; the allow-list was tried in order.
	QuirkNoSuiteList
	// QuirkNoSystemGUID: Get System GUID is not implemented (completion
	// code); the GUID comes from RAKP 2 (pyghmi).
	QuirkNoSystemGUID
	// QuirkStaleSession: the BMC keeps a closed session for the console's
	// UDP port and answers the next Open Session inside it (encrypted with
	// the old keys, pyghmi); a sessionless request (Get Channel
	// Authentication Capabilities, as ipmitool always sends first) resets
	// it. Learned: every Open on this BMC sends it first.
	QuirkStaleSession
	// QuirkAuthCaps: Get Channel Authentication Capabilities said
	// something a session then contradicted — no IPMI 2.0, K_g set, no
	// user with a name — (FreeIPMI "authcap": Asus P5M2, Intel SR1520ML,
	// Sun Fire X4150). Its claims are not a verdict; the session is.
	QuirkAuthCaps
	// QuirkRAKP2Length: a RAKP 2 header claimed one payload byte more
	// than the datagram held (FreeIPMI "supermicro20": Supermicro H8QME);
	// the bytes present were taken, and verified as usual.
	QuirkRAKP2Length
	// QuirkCipherTags: Get Channel Cipher Suites records carried wrong
	// algorithm tag bits (FreeIPMI "sun20": Sun Fire 4100 ILOM); read as
	// fixed-size records.
	QuirkCipherTags
	// QuirkICVCipher0: a suite 0 RAKP 4 carried an integrity check value
	// where none belongs (FreeIPMI "integritycheckvalue": Supermicro
	// X8DTG, Intel S5500WBV); ignored — suite 0 checks nothing anyway.
	QuirkICVCipher0
	// QuirkExactPrivilege: RAKP 1 was refused (status 0x0A) for
	// a maximum privilege below the user's limit, and accepted at the
	// limit (FreeIPMI bugs doc LAN Auth #24: Xyratex). The privilege that
	// worked is learned (Profile.Privilege); the session still raises
	// itself only to the account's privilege.
	QuirkExactPrivilege
	// QuirkNoCloseReply: Close Session went unanswered (LAN Session #1:
	// Intel SR870BN4); learned: later sessions send it once and do not
	// wait.
	QuirkNoCloseReply
	// QuirkSeqGaps: the BMC's session sequence numbers skip (LAN Session
	// #9: ASRock MT-C224 in shared-NIC mode); tolerated by the window.
	QuirkSeqGaps
	// QuirkBadChecksum: in-session replies carried wrong IPMI checksums
	// although the session's HMAC verified them (FreeIPMI
	// "nochecksumcheck": Supermicro X9SCM-iiF, X9DRi-F, X9DRFR); taken,
	// since the HMAC is the stronger check. Without integrity (suites 0
	// and 1) the checksum still decides.
	QuirkBadChecksum
	// QuirkRAKP2GUID is a learned fact rather than a bug: the managed
	// system GUID in RAKP 2 (covered by the RAKP 2 HMAC, so as
	// authenticated as an in-session answer) was seen equal, byte for
	// byte and non-zero, to Get System GUID's answer. A light check then
	// takes the GUID from RAKP 2 and sends no Get System GUID; a RAKP 2
	// GUID that does not match the registered one still makes it ask
	// before any verdict of Invalid. Learned (and unlearned) by every
	// check that sends Get System GUID; a BMC whose RAKP 2 carries zeros
	// or another GUID never gets it.
	QuirkRAKP2GUID
	quirkEnd
)

// privShift: the top four bits of a Quirk word hold the maximum privilege
// learned with QuirkExactPrivilege (0: none learned), named
// "privilege_administrator" and so on: the profile keeps it wherever it
// keeps the quirk names (the store, evidence).
const privShift = QuirkPrivilegeShift

// QuirkPrivilegeShift is where a Quirk word keeps the learned maximum
// privilege (the engine updates it in place).
const QuirkPrivilegeShift = 28

const quirkPrivMask Quirk = 0x0f << privShift

func learnedPrivilege(q uint32) Privilege { return Privilege(q >> privShift) }

// LearnedPrivilege is the maximum privilege a BMC with
// QuirkExactPrivilege accepted, from a Quirk word (0: none learned).
func LearnedPrivilege(q uint32) Privilege { return learnedPrivilege(q) }

const privPrefix = "privilege_"

var quirkNames = []struct {
	q    Quirk
	name string
}{
	{QuirkNoPing, "no_presence_ping"},
	{QuirkCounterProposal, "counter_proposal"},
	{QuirkStatus01, "open_session_0x01_for_suite"},
	{QuirkNoSuiteList, "no_cipher_suite_list"},
	{QuirkNoSystemGUID, "no_get_system_guid"},
	{QuirkStaleSession, "stale_session_per_port"},
	{QuirkAuthCaps, "auth_caps_misreported"},
	{QuirkRAKP2Length, "rakp2_length_off_by_one"},
	{QuirkCipherTags, "cipher_record_tags"},
	{QuirkICVCipher0, "rakp4_icv_with_cipher0"},
	{QuirkExactPrivilege, "exact_privilege"},
	{QuirkNoCloseReply, "no_close_reply"},
	{QuirkSeqGaps, "sequence_gaps"},
	{QuirkBadChecksum, "bad_ipmi_checksum"},
	{QuirkRAKP2GUID, "rakp2_guid_is_system_guid"},
}

// Names lists the quirks in q by their stable names.
func (q Quirk) Names() []string {
	var out []string
	for _, n := range quirkNames {
		if q&n.q != 0 {
			out = append(out, n.name)
		}
	}
	if p := learnedPrivilege(uint32(q)); p != 0 {
		out = append(out, privPrefix+p.String())
	}
	return out
}

// ParseQuirks reads names as Names writes them; unknown names are ignored
// (a newer version's profile read by an older one).
func ParseQuirks(names []string) Quirk {
	var q Quirk
	for _, s := range names {
		for _, n := range quirkNames {
			if n.name == s {
				q |= n.q
			}
		}
		if p, ok := strings.CutPrefix(s, privPrefix); ok {
			if pr, err := ParsePrivilege(p); err == nil && p != "" {
				q = q&^quirkPrivMask | Quirk(pr)<<privShift
			}
		}
	}
	return q
}

// Profile is what the engine has learned about one BMC: the cipher suite
// that last worked and the quirks seen. The zero Profile means nothing is
// known (negotiate on first contact).
type Profile struct {
	Suite  CipherSuite
	Known  bool // Suite is a suite that worked
	Quirks Quirk
}

// Privilege is the maximum privilege a BMC with QuirkExactPrivilege
// accepted (0: none learned).
func (p Profile) Privilege() Privilege { return learnedPrivilege(uint32(p.Quirks)) }

type profileJSON struct {
	Suite  *int     `json:"suite,omitempty"`
	Quirks []string `json:"quirks,omitempty"`
}

// MarshalJSON writes {"suite": 17, "quirks": ["no_presence_ping"]}.
func (p Profile) MarshalJSON() ([]byte, error) {
	var j profileJSON
	if p.Known {
		n := int(p.Suite)
		j.Suite = &n
	}
	j.Quirks = p.Quirks.Names()
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Profile) UnmarshalJSON(b []byte) error {
	var j profileJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*p = Profile{Quirks: ParseQuirks(j.Quirks)}
	if j.Suite != nil && *j.Suite > 0 && *j.Suite < 256 && CipherSuite(*j.Suite).Supported() {
		p.Suite, p.Known = CipherSuite(*j.Suite), true
	}
	return nil
}

// NoPing reports whether the BMC is known not to answer the presence ping.
func (p Profile) NoPing() bool { return p.Quirks&QuirkNoPing != 0 }

func (p Profile) String() string {
	var parts []string
	if p.Known {
		parts = append(parts, p.Suite.String())
	}
	parts = append(parts, p.Quirks.Names()...)
	if len(parts) == 0 {
		return "nothing learned"
	}
	return strings.Join(parts, ", ")
}

// SuiteTry is one suite proposed during a negotiation that did not work.
type SuiteTry struct {
	Suite  CipherSuite `json:"suite"`
	Status byte        `json:"rmcp_status,omitempty"`
	Error  string      `json:"error"`
}

// Negotiation says how a session's cipher suite was chosen: the evidence
// behind "which suite and why".
type Negotiation struct {
	// Allowed is the allow-list in order of preference.
	Allowed []CipherSuite `json:"allowed"`
	// Asked: Get Channel Cipher Suites was sent; Offered is its answer
	// (nil when not asked or not answered).
	Asked   bool          `json:"asked"`
	Offered []CipherSuite `json:"offered,omitempty"`
	// Learned: the suite that worked last time was proposed first.
	Learned bool `json:"learned,omitempty"`
	// Tried are the suites proposed that did not work, in order.
	Tried []SuiteTry `json:"tried,omitempty"`
	// Suite is the suite of the session (0 with Why naming the failure
	// when none worked).
	Suite CipherSuite `json:"suite"`
	// Quirks seen on the way.
	Quirks Quirk `json:"-"`
	// Why says in words how Suite was chosen.
	Why string `json:"-"` // Evidence.SuiteWhy carries it
}
