// Package state holds the names of channel states and the reasons behind
// them. It is pure: no I/O, no clocks. Probes report an OOB state with a
// Reason; later layers (monitor, diagnosis) build on these names.
package state

// OOB is the connection state of a manager → BMC channel. The names are the
// operator-facing vocabulary and appear verbatim in CLI and JSON output.
type OOB string

const (
	// Unknown: never checked since registration.
	Unknown OOB = "Unknown"
	// Connectable: a session opened and the identity matched.
	Connectable OOB = "Connectable"
	// NotResponding: nothing usable came back.
	NotResponding OOB = "NotResponding"
	// NotAuthenticated: the BMC answered and refused the account.
	NotAuthenticated OOB = "NotAuthenticated"
	// Invalid: a session opened, but the System GUID differs from the
	// registered one.
	Invalid OOB = "Invalid"
)

// Reason is the sub-reason of a state: why a check ended where it did.
// Reasons are stable identifiers (snake_case) meant for machines and for
// grouping; the probe's human message says the same in words.
type Reason string

const (
	ReasonOK Reason = ""

	// NotResponding sub-reasons.
	ReasonSilent         Reason = "silent"          // no datagram at all came back
	ReasonPortRefused    Reason = "port_refused"    // ICMP port unreachable: host up, IPMI service down
	ReasonUnreachable    Reason = "unreachable"     // ICMP host/net unreachable
	ReasonStalled        Reason = "stalled"         // answered at first, went silent mid-session
	ReasonProtocol       Reason = "protocol_error"  // answered with nothing we can use (malformed, no IPMI 2.0)
	ReasonNoCipherSuite  Reason = "no_cipher_suite" // no acceptable cipher suite in common
	ReasonCipher0Refused Reason = "cipher0_refused" // only cipher suite 0 offered, and it is not allowed
	ReasonTLS            Reason = "tls_error"       // Redfish: the TLS handshake failed
	ReasonIPMI15Only     Reason = "ipmi15_only"     // speaks IPMI 1.5 only: no RMCP+ (lightsout needs IPMI 2.0)

	// NotAuthenticated sub-reasons.
	ReasonWrongPassword Reason = "wrong_password"
	ReasonUnknownUser   Reason = "unknown_user"
	ReasonPrivilege     Reason = "privilege_too_low"
	ReasonLocked        Reason = "account_locked" // the user exists but is disabled or locked out
	ReasonAuthRejected  Reason = "auth_rejected"  // refused, cause not distinguishable from the reply

	// ReasonBusy: the BMC answered but has no free session slot (RMCP+
	// status 0x01). It is not an authentication failure: the state stays
	// Connectable with the Busy condition, and the identity is unverified.
	ReasonBusy Reason = "busy"

	// Invalid sub-reasons.
	ReasonGUIDMismatch Reason = "guid_mismatch"
	// ReasonCertChanged: Redfish; the BMC presents another certificate
	// than the one pinned on first contact.
	ReasonCertChanged Reason = "cert_changed"
)

// Condition is an orthogonal flag on a Connectable channel.
type Condition string

const (
	Busy     Condition = "Busy"
	Degraded Condition = "Degraded"
	Insecure Condition = "Insecure"
)

// Reasons is every reason a channel can be declared with, per state (the
// filters of the console and of machines list accept these).
func Reasons() map[OOB][]Reason {
	return map[OOB][]Reason{
		NotResponding:    {ReasonSilent, ReasonPortRefused, ReasonUnreachable, ReasonStalled, ReasonProtocol, ReasonNoCipherSuite, ReasonCipher0Refused, ReasonTLS, ReasonIPMI15Only},
		NotAuthenticated: {ReasonWrongPassword, ReasonUnknownUser, ReasonPrivilege, ReasonLocked, ReasonAuthRejected},
		Connectable:      {ReasonBusy},
		Invalid:          {ReasonGUIDMismatch, ReasonCertChanged},
	}
}

// Conditions is every condition, in the order they are shown.
var Conditions = []Condition{Busy, Degraded, Insecure}
