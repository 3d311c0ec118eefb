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
	// its GUID and the chassis status only (6 datagrams instead of 9; 5
	// where RAKP 2's GUID is learned to be the System GUID:
	// vocab.QuirkRAKP2GUID).
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
