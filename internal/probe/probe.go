// Package probe checks one channel of one machine and returns a typed
// Observation. Every protocol has one file and one constructor returning a
// Prober; callers (the check command, the monitor) depend only on Prober.
package probe

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/redfish"
	"github.com/lightsout/lightsout/internal/state"
)

// Prober checks one target. It never returns early without a verdict: the
// Observation always carries a state, even on cancellation.
type Prober func(ctx context.Context, t Target) Observation

// DefaultTimeout is how long a BMC may stay silent before it is declared
// NotResponding.
const DefaultTimeout = 3 * time.Second

// Target is one channel to check.
type Target struct {
	Name     string
	Protocol string         // "ipmi"
	Addr     netip.AddrPort // resolved address
	User     string
	Password []byte
	// Expected is the registered System GUID as spelled (any layout); the
	// zero GUID means none registered.
	Expected guid.GUID
	// ExpectedLayout is the layout Expected was last seen to match in, if
	// known (the monitor remembers it): a mismatch then shows the GUID the
	// BMC gave in the operator's layout, not only in the BMC's.
	ExpectedLayout guid.Layout
	CipherSuite    int // a pinned suite; 0: negotiate from Suites
	// Suites is the allow-list of cipher suites in order of preference
	// (nil: ipmi.DefaultSuites, 17 then 3). Suite 0 is never allowed.
	Suites []ipmi.CipherSuite
	// Profile is what an earlier run learned about this BMC (the store's
	// copy; nil: nothing). The engine's own knowledge wins when it has
	// some.
	Profile   *ipmi.Profile
	Privilege ipmi.Privilege
	Timeout   time.Duration
	// Light makes a routine re-check of a BMC that answered last time: no
	// presence ping, no auth capabilities, no Get Device ID — the session,
	// its GUID and the chassis status only (6 datagrams instead of 9).
	// Silence is then noticed by the session set-up, which allows a
	// timeout per handshake message. The monitor uses it between full
	// checks; `lightsout check` and diagnosis never do. Redfish: a light
	// check does not read the certificate pin from the store when the
	// BMC presents the certificate last found equal to it.
	Light bool
	// RedfishAuth forces the Redfish authentication (session or basic);
	// "" or auto lets the prober choose as the service offers.
	RedfishAuth redfish.Auth
	// RedfishLearned is the authentication an earlier run learned for an
	// auto account (the store's profile; "": nothing). The Redfish prober
	// starts from it when it has learned nothing itself since it started
	// or since the account changed.
	RedfishLearned redfish.Auth
}

// Observation is the result of one check.
type Observation struct {
	Name       string            `json:"name"`
	Host       string            `json:"host"`
	Protocol   string            `json:"protocol"`
	State      state.OOB         `json:"state"`
	Reason     state.Reason      `json:"reason,omitempty"`
	Conditions []state.Condition `json:"conditions,omitempty"`
	// Message says what happened in the operator's words.
	Message string `json:"message"`
	// GUID is what the BMC reported, rendered in the layout the registered
	// GUID is written in when they match (so equal GUIDs print equal), else
	// in the operator's last-seen layout or the BMC's own (Evidence.GUIDLayout).
	GUID string `json:"guid,omitempty"`
	// Expected is the registered GUID as the operator registered it.
	Expected  string    `json:"expected_guid,omitempty"`
	ElapsedMS float64   `json:"elapsed_ms"`
	At        time.Time `json:"at"`
	Evidence  Evidence  `json:"evidence"`
	// Err is the underlying error, for errors.Is/As by callers; not
	// serialized (Evidence.Error has its text).
	Err error `json:"-"`
}

// Evidence is what the check saw, for the operator and for diagnosis.
type Evidence struct {
	PingAnswered bool               `json:"ping_answered"`
	PingRTTMS    float64            `json:"ping_rtt_ms,omitempty"`
	RTTMS        map[string]float64 `json:"rtt_ms,omitempty"` // per stage
	FailedStage  string             `json:"failed_stage,omitempty"`
	RMCPStatus   int                `json:"rmcp_status,omitempty"`
	Attempts     int                `json:"attempts,omitempty"`
	Error        string             `json:"error,omitempty"`

	// PingSkipped: the BMC is known not to answer the presence ping
	// (learned profile), so none was sent.
	PingSkipped bool `json:"ping_skipped,omitempty"`

	AuthCaps    *ipmi.AuthCaps `json:"auth_caps,omitempty"`
	CipherSuite int            `json:"cipher_suite,omitempty"`
	// SuiteWhy says why CipherSuite was used (or, on failure, what was
	// offered and tried); Negotiation has the details.
	SuiteWhy    string            `json:"cipher_suite_why,omitempty"`
	Negotiation *ipmi.Negotiation `json:"negotiation,omitempty"`
	// Profile is what is known about the BMC after this check: the suite
	// that works and the quirks seen (kept in the store by the monitor).
	Profile *ipmi.Profile `json:"profile,omitempty"`
	// Quirks names the BMC quirks this check met and worked around.
	Quirks []string `json:"quirks,omitempty"`
	// AuthCapsContradicted lists what Get Channel Authentication
	// Capabilities claimed and the session then proved wrong (quirk
	// auth_caps_misreported).
	AuthCapsContradicted []string `json:"auth_caps_contradicted,omitempty"`
	Insecure             []string `json:"insecure,omitempty"`

	Manufacturer   string              `json:"manufacturer,omitempty"`
	ManufacturerID uint32              `json:"manufacturer_id,omitempty"`
	ProductID      uint16              `json:"product_id,omitempty"`
	Firmware       string              `json:"firmware,omitempty"`
	IPMIVersion    string              `json:"ipmi_version,omitempty"`
	Chassis        *ipmi.ChassisStatus `json:"chassis,omitempty"`
	Power          string              `json:"power,omitempty"` // on | off
	GUID           *guid.Renderings    `json:"guid,omitempty"`
	GUIDSource     string              `json:"guid_source,omitempty"` // get_system_guid | rakp2 | redfish_system_uuid
	// GUIDLayout is the layout Observation.GUID is rendered in; the BMC's
	// own layout is GUID.Layout (detected_layout).
	GUIDLayout guid.Layout `json:"guid_layout,omitempty"`
	// GUIDMatch says whether the reported GUID is the registered one
	// (absent when none is registered).
	GUIDMatch *bool `json:"guid_match,omitempty"`

	// Requests are the exchanges the check made (a retransmission is not
	// a new request), Retransmits their retransmissions, Timeouts the
	// exchanges that gave up (the engine's per-BMC counters over the
	// check; another user of the engine on the same BMC meanwhile counts
	// too).
	Requests    uint32 `json:"requests,omitempty"`
	Retransmits uint32 `json:"retransmits,omitempty"`
	Timeouts    uint32 `json:"timeouts,omitempty"`
	// Excused are the retransmissions and time-outs that say nothing about
	// the path: of a Close Session the BMC does not answer (LAN Session
	// #1). Loss estimates leave them out.
	Excused uint32 `json:"excused,omitempty"`
	// Loss is the channel's loss over its recent checks, as the monitor
	// measures it from the counters above (nil: not measured, or too few
	// datagrams to say).
	Loss *Loss `json:"loss,omitempty"`

	// ConflictingReplies are login steps that drew an unauthenticated
	// refusal and a verified answer (the verified one was taken): a sign
	// of a forger on the path (event oob.conflicting_replies).
	ConflictingReplies []ipmi.Conflict `json:"conflicting_replies,omitempty"`

	// Redfish is what a Redfish check saw (nil for IPMI).
	Redfish *RedfishEvidence `json:"redfish,omitempty"`
}

// identity compares the raw GUID g the BMC reported with the registered
// one — the one comparison every check makes — and fills the observation's
// GUID fields; it reports whether they match (true when none is
// registered). r is g's renderings, with detected_layout already decided by
// the caller.
func identity(o *Observation, t *Target, g guid.GUID, r guid.Renderings) bool {
	o.Evidence.GUID = &r
	if t.Expected.Zero() {
		o.GUID, o.Evidence.GUIDLayout = g.In(r.Layout), r.Layout
		return true
	}
	l, ok := g.MatchLayout(t.Expected)
	if !ok {
		l = t.ExpectedLayout
		if l == "" {
			l = r.Layout
		}
	}
	o.GUID, o.Evidence.GUIDLayout = g.In(l), l
	o.Evidence.GUIDMatch = &ok
	return ok
}

// mismatch is the Invalid verdict's words: what the BMC said, in which
// layout, and what is registered, as registered.
func mismatch(o *Observation, t *Target, says string) {
	o.State, o.Reason = state.Invalid, state.ReasonGUIDMismatch
	o.Message = fmt.Sprintf("the BMC at %s %s %s (%s layout), but %q is registered with %s: the address now belongs to another BMC (addresses swapped or reused), or the motherboard was replaced",
		t.Addr, says, o.GUID, o.Evidence.GUIDLayout, t.Name, o.Expected)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// manufacturers maps IANA enterprise numbers of common BMC vendors.
var manufacturers = map[uint32]string{
	2: "IBM", 11: "HP", 119: "NEC", 343: "Intel", 674: "Dell", 2011: "Huawei",
	5771: "Cisco", 7244: "Quanta", 10368: "Fujitsu", 10876: "Supermicro",
	15370: "Gigabyte", 19046: "Lenovo", 20301: "IBM", 37945: "Inspur",
	47196: "HPE", 49622: "OpenBMC",
}

// Manufacturer names an IANA enterprise number, or "IANA n".
func Manufacturer(id uint32) string {
	if n, ok := manufacturers[id]; ok {
		return n
	}
	return "IANA " + itoa(id)
}

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b [10]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// Loss is a channel's datagram loss over a window of checks: Sent datagrams
// (requests and their retransmissions), of which Lost went unanswered
// (each retransmission follows one, each exchange that gave up ends with
// one), over Checks checks.
type Loss struct {
	Sent   uint32  `json:"sent"`
	Lost   uint32  `json:"lost"`
	Checks int     `json:"checks"`
	Rate   float64 `json:"rate"` // Lost/Sent, 0..1
}

// String is the loss as an operator reads it.
func (l Loss) String() string {
	return fmt.Sprintf("%.0f%% of %d datagrams lost over the last %d checks", 100*l.Rate, l.Sent, l.Checks)
}
