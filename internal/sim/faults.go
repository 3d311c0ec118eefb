package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Faults is the set of faults injected into one simulated BMC. The zero
// value is a healthy BMC. Faults are set as a whole: [Fleet.SetFaults]
// replaces the previous set.
//
// Network faults are applied in the BMC's transport (the socket between the
// kernel and the go-ipmi server); identity faults change the BMC's state.
type Faults struct {
	// Silent drops every datagram: the BMC looks dead (no ICMP either, the
	// socket stays open).
	Silent bool `json:"silent,omitempty" yaml:"silent,omitempty"`
	// PortClosed closes the BMC's UDP socket, so the kernel answers with
	// ICMP port unreachable. Clearing it binds the socket again.
	PortClosed bool `json:"port_closed,omitempty" yaml:"port_closed,omitempty"`
	// WrongPassword changes the admin account's password to one nobody
	// knows (the fleet password no longer works).
	WrongPassword bool `json:"wrong_password,omitempty" yaml:"wrong_password,omitempty"`
	// UserRemoved deletes the admin account (as after a BMC replacement
	// where the user was not re-created).
	UserRemoved bool `json:"user_removed,omitempty" yaml:"user_removed,omitempty"`
	// GUIDReplaced gives the BMC a new System GUID (a motherboard swap).
	// The BMC restarts: open sessions are lost. Clearing it restores the
	// registered GUID.
	GUIDReplaced bool `json:"guid_replaced,omitempty" yaml:"guid_replaced,omitempty"`
	// Locked disables the admin account as a lockout after failed logins
	// does: it still exists and the password is right, but RMCP+ RAKP 1
	// for it is answered with RAKP 2 status 0x09 (invalid role, what
	// OpenBMC answers for a disabled user); IPMI 1.5 refuses it too.
	Locked bool `json:"locked,omitempty" yaml:"locked,omitempty"`
	// EMLink breaks the link between a blade's BMC and its enclosure
	// manager (only blades have one): the BMC itself runs — its identify
	// lamp still lights when the enclosure manager drives it — but nothing
	// reaches it from the network, and the enclosure manager reports it as
	// not answering.
	EMLink bool `json:"em_link,omitempty" yaml:"em_link,omitempty"`
	// BMCKey sets a BMC key (K_G, the second key of an IPMI 2.0 "two-key"
	// login) that nobody was told, as "ipmitool channel setkg" does on a
	// real BMC: RAKP 2 and 3 still verify with the user's password, but
	// the session keys derive from K_G, so a console without it finds the
	// integrity check value of RAKP 4 wrong and cannot use the session
	// (ipmitool: "RAKP 4 message has invalid integrity check value"). Get
	// Channel Authentication Capabilities reports K_G set. Clearing it
	// restarts the BMC's IPMI service (go-ipmi cannot drop a key at run
	// time): open sessions are lost.
	BMCKey bool `json:"bmc_key,omitempty" yaml:"bmc_key,omitempty"`
	// CipherSuites, when set, replaces the RMCP+ cipher suites the BMC
	// offers (default 3 and 17), as a firmware update or a hardening
	// policy does. Under Insecure, 0, 1 and 2 are offered besides.
	CipherSuites SuiteSet `json:"cipher_suites,omitempty" yaml:"cipher_suites,omitempty"`
	// SlotsFull makes every session slot look occupied: RMCP+ Open Session
	// answers status 0x01 (insufficient resources), IPMI 1.5 Activate
	// Session completion code 0x81 (no session slot available).
	SlotsFull bool `json:"slots_full,omitempty" yaml:"slots_full,omitempty"`
	// Insecure makes the BMC fail a security audit: the anonymous (null)
	// user is enabled with an empty password and ADMINISTRATOR privilege,
	// RMCP+ cipher suites 0-2 (no or weak integrity and encryption) are
	// offered, and IPMI 1.5 offers authentication types none and straight
	// password besides MD5.
	Insecure bool `json:"insecure,omitempty" yaml:"insecure,omitempty"`
	// Cipher0 offers RMCP+ cipher suite 0 (no authentication, integrity
	// or encryption) besides 3 and 17: a session opens for any known user
	// name with any password. Part of Insecure.
	Cipher0 bool `json:"cipher0,omitempty" yaml:"cipher0,omitempty"`
	// Anonymous enables the anonymous (null) user: empty name, empty
	// password, ADMINISTRATOR on the LAN channel. Part of Insecure.
	Anonymous bool `json:"anonymous,omitempty" yaml:"anonymous,omitempty"`
	// WeakAuth makes IPMI 1.5 offer authentication types none and
	// straight password besides MD5. Part of Insecure.
	WeakAuth bool `json:"weak_auth,omitempty" yaml:"weak_auth,omitempty"`
	// DefaultPassword adds an ADMINISTRATOR account with the vendor's
	// factory default user name and password ([DefaultCredential]).
	DefaultPassword bool `json:"default_password,omitempty" yaml:"default_password,omitempty"`
	// CertReplaced makes the BMC's Redfish service present a different
	// self-signed certificate (a BMC replaced, reset to factory, or a
	// man in the middle). Redfish only.
	CertReplaced bool `json:"cert_replaced,omitempty" yaml:"cert_replaced,omitempty"`
	// Busy503 makes the BMC's Redfish service answer every request with
	// HTTP 503 Service Unavailable (out of sessions or busy). Redfish only.
	Busy503 bool `json:"busy_503,omitempty" yaml:"busy_503,omitempty"`
	// RedfishNoSessions makes the Redfish service offer no sessions: no
	// SessionService in the service root, session creation answered 405
	// (as sushy-tools). Redfish only.
	RedfishNoSessions bool `json:"redfish_no_sessions,omitempty" yaml:"redfish_no_sessions,omitempty"`
	// RedfishNoBasic makes the Redfish service refuse HTTP Basic
	// authentication (sessions only). Redfish only.
	RedfishNoBasic bool `json:"redfish_no_basic,omitempty" yaml:"redfish_no_basic,omitempty"`
	// RedfishTLSLegacy makes the Redfish service speak TLS 1.0 only, as
	// old BMC firmware does: a client that needs TLS 1.2 gets a
	// protocol_version alert. Redfish only.
	RedfishTLSLegacy bool `json:"redfish_tls_legacy,omitempty" yaml:"redfish_tls_legacy,omitempty"`
	// RedfishSessionLimit caps the Redfish SessionService at this many
	// open sessions (0: no cap): a login beyond it answers HTTP 503 with
	// the Base registry's SessionLimitExceeded, as OpenBMC's bmcweb does,
	// while HTTP Basic requests still work. Redfish only.
	RedfishSessionLimit int `json:"redfish_session_limit,omitempty" yaml:"redfish_session_limit,omitempty"`
	// SoftOffIgnored makes the host ignore a soft shutdown: Chassis
	// Control soft shutdown (0x05; Redfish GracefulShutdown) is accepted
	// (completion code OK, HTTP 204) but the power stays on, as with an
	// OS that ignores the ACPI power button (hung, or configured to do
	// nothing). Hard power off still works.
	SoftOffIgnored bool `json:"soft_off_ignored,omitempty" yaml:"soft_off_ignored,omitempty"`
	// Quirk makes the BMC imitate vendor quirks of real BMCs (see
	// QuirkSet): no_ping, suite3_only, opensess_0x01, guid_0xd4.
	Quirk QuirkSet `json:"quirk,omitempty" yaml:"quirk,omitempty"`
	// SessionHang makes the BMC hang in session while it still answers
	// outside one: presence pings, Get Channel Authentication
	// Capabilities and the RMCP+ handshake (Open Session, RAKP) are
	// answered, every request inside an established session is dropped —
	// a controller whose session layer is wedged (a firmware bug real
	// BMCs show until a cold reset).
	SessionHang bool `json:"session_hang,omitempty" yaml:"session_hang,omitempty"`
	// Slow delays every reply by this much (at most 60s).
	Slow Duration `json:"slow,omitempty" yaml:"slow,omitempty"`
	// Lossy drops this fraction (0..1) of incoming datagrams.
	Lossy float64 `json:"lossy,omitempty" yaml:"lossy,omitempty"`
	// TimeoutRate drops this fraction (0..1) of replies after the BMC
	// processed the request (the request took effect, the answer is lost).
	TimeoutRate float64 `json:"timeout_rate,omitempty" yaml:"timeout_rate,omitempty"`
	// Malformed corrupts or truncates this fraction (0..1) of replies.
	Malformed float64 `json:"malformed,omitempty" yaml:"malformed,omitempty"`
}

// MaxSlow bounds [Faults.Slow].
const MaxSlow = 60 * time.Second

// Zero reports whether no fault is set.
func (f Faults) Zero() bool { return f == Faults{} }

// Names lists the faults that are set, by their JSON names, in a fixed
// order (for status lines and logs).
func (f Faults) Names() []string {
	var out []string
	add := func(on bool, name string) {
		if on {
			out = append(out, name)
		}
	}
	add(f.Silent, "silent")
	add(f.PortClosed, "port_closed")
	add(f.WrongPassword, "wrong_password")
	add(f.UserRemoved, "user_removed")
	add(f.GUIDReplaced, "guid_replaced")
	add(f.Locked, "locked")
	add(f.EMLink, "em_link")
	add(f.BMCKey, "bmc_key")
	if f.CipherSuites != 0 {
		out = append(out, "cipher_suites="+f.CipherSuites.String())
	}
	add(f.SlotsFull, "slots_full")
	add(f.Insecure, "insecure")
	add(f.Cipher0, "cipher0")
	add(f.Anonymous, "anonymous")
	add(f.WeakAuth, "weak_auth")
	add(f.DefaultPassword, "default_password")
	add(f.CertReplaced, "cert_replaced")
	add(f.Busy503, "busy_503")
	add(f.RedfishNoSessions, "redfish_no_sessions")
	add(f.RedfishNoBasic, "redfish_no_basic")
	add(f.RedfishTLSLegacy, "redfish_tls_legacy")
	if f.RedfishSessionLimit > 0 {
		out = append(out, "redfish_session_limit="+strconv.Itoa(f.RedfishSessionLimit))
	}
	add(f.SoftOffIgnored, "soft_off_ignored")
	add(f.SessionHang, "session_hang")
	if f.Quirk != 0 {
		out = append(out, "quirk="+f.Quirk.String())
	}
	if f.Slow > 0 {
		out = append(out, "slow="+time.Duration(f.Slow).String())
	}
	if f.Lossy > 0 {
		out = append(out, "lossy="+strconv.FormatFloat(f.Lossy, 'g', -1, 64))
	}
	if f.TimeoutRate > 0 {
		out = append(out, "timeout_rate="+strconv.FormatFloat(f.TimeoutRate, 'g', -1, 64))
	}
	if f.Malformed > 0 {
		out = append(out, "malformed="+strconv.FormatFloat(f.Malformed, 'g', -1, 64))
	}
	return out
}

// FieldError is a bad value in a fault set, a fleet file or a control API
// request: Field names it (dotted path, e.g. "faults.bmc-00003.lossy"),
// Reason says what is wrong with it.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
	// Line is the line of a fleet file the field is on (0: unknown).
	Line int `json:"line,omitempty"`
}

func (e *FieldError) Error() string {
	s := e.Field + ": " + e.Reason
	if e.Field == "" {
		s = e.Reason
	}
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, s)
	}
	return s
}

func fieldErr(field, format string, a ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// Validate checks the values of f. prefix is prepended to field names
// ("" for bare names).
func (f Faults) Validate(prefix string) error {
	rate := func(name string, v float64) error {
		if math.IsNaN(v) || v < 0 || v > 1 {
			return fieldErr(prefix+name, "must be a fraction between 0 and 1, got %v", v)
		}
		return nil
	}
	if err := rate("lossy", f.Lossy); err != nil {
		return err
	}
	if err := rate("timeout_rate", f.TimeoutRate); err != nil {
		return err
	}
	if err := rate("malformed", f.Malformed); err != nil {
		return err
	}
	for _, id := range f.CipherSuites.IDs() {
		if !simSuites[id] {
			return fieldErr(prefix+"cipher_suites", "%d is not a cipher suite the simulator implements (%s)", id, simSuiteList())
		}
	}
	if f.RedfishSessionLimit < 0 || f.RedfishSessionLimit > 1024 {
		return fieldErr(prefix+"redfish_session_limit", "must be between 0 (no limit) and 1024 sessions, got %d", f.RedfishSessionLimit)
	}
	if f.Slow < 0 || time.Duration(f.Slow) > MaxSlow {
		return fieldErr(prefix+"slow", "must be a duration between 0 and %s, got %s", MaxSlow, time.Duration(f.Slow))
	}
	return nil
}

// Duration is a time.Duration written as a Go duration string ("250ms",
// "2s") in JSON and YAML. A JSON number is read as milliseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*d = 0
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		v, err := parseDuration(str)
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	ms, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(ms) || math.IsInf(ms, 0) {
		return fmt.Errorf("not a duration: %s (want a string like \"500ms\" or a number of milliseconds)", s)
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads a duration string ("2s"); a bare integer is
// milliseconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	// Errors are TypeErrors so the decoder reports them with their line.
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: not a duration (want a string like \"500ms\")", n.Line)}}
	}
	if ms, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		*d = Duration(time.Duration(ms) * time.Millisecond)
		return nil
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = v
	return nil
}

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("not a duration: %q (want e.g. \"500ms\" or \"2s\")", s)
	}
	return Duration(v), nil
}

// SuiteSet is a set of RMCP+ cipher suite IDs (0-31), written as a list of
// numbers in JSON and YAML ([3, 17]).
type SuiteSet uint32

// simSuites are the cipher suites go-ipmi's server implements end to end.
var simSuites = map[int]bool{0: true, 1: true, 2: true, 3: true, 15: true, 16: true, 17: true}

func simSuiteList() string {
	var ids []string
	for i := 0; i < 32; i++ {
		if simSuites[i] {
			ids = append(ids, strconv.Itoa(i))
		}
	}
	return strings.Join(ids, ", ")
}

// IDs lists the suites in the set, in increasing order.
func (s SuiteSet) IDs() []int {
	var out []int
	for i := 0; i < 32; i++ {
		if s&(1<<i) != 0 {
			out = append(out, i)
		}
	}
	return out
}

func (s SuiteSet) String() string {
	ids := s.IDs()
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ",")
}

// Suites builds a set from suite IDs (0-31; others are ignored).
func Suites(ids ...int) SuiteSet {
	var s SuiteSet
	for _, id := range ids {
		if id >= 0 && id < 32 {
			s |= 1 << id
		}
	}
	return s
}

func (s *SuiteSet) fromList(ids []int) error {
	*s = 0
	for _, id := range ids {
		if id < 0 || id > 31 {
			return fmt.Errorf("cipher suite %d is out of range (0-31)", id)
		}
		*s |= 1 << id
	}
	return nil
}

// MarshalJSON writes the set as a list of IDs.
func (s SuiteSet) MarshalJSON() ([]byte, error) {
	ids := s.IDs()
	if ids == nil {
		ids = []int{}
	}
	return json.Marshal(ids)
}

// UnmarshalJSON reads a list of IDs.
func (s *SuiteSet) UnmarshalJSON(b []byte) error {
	var ids []int
	if err := json.Unmarshal(b, &ids); err != nil {
		return fmt.Errorf("cipher_suites: want a list of cipher suite numbers such as [3, 17]")
	}
	return s.fromList(ids)
}

// MarshalYAML writes the set as a list of IDs.
func (s SuiteSet) MarshalYAML() (any, error) { return s.IDs(), nil }

// UnmarshalYAML reads a list of IDs.
func (s *SuiteSet) UnmarshalYAML(n *yaml.Node) error {
	var ids []int
	if err := n.Decode(&ids); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cipher_suites: want a list of cipher suite numbers such as [3, 17]", n.Line)}}
	}
	if err := s.fromList(ids); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	return nil
}
