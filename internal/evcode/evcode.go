// Package evcode is the event catalogue: every event code lightsout
// raises, with its default severity, one-line summary, dedup window and
// whether the fleet correlator looks at it. It is a leaf (no imports of
// lightsout), so the packages that raise events (monitor's sink in
// internal/events, audit, agent) name their codes without importing the
// Recorder. docs/events.md lists them all.
package evcode

import (
	"sort"
	"time"
)

// Event codes.
const (
	// OOB channel (manager → BMC).
	OOBStateChanged        = "oob.state_changed"
	OOBNotResponding       = "oob.not_responding"
	OOBAuthRefused         = "oob.auth_refused"
	OOBIdentityMismatch    = "oob.identity_mismatch"
	OOBDegraded            = "oob.degraded"
	OOBTimeoutFlood        = "oob.timeout_flood"
	OOBTimeoutFloodCleared = "oob.timeout_flood_cleared"
	OOBConflictingReplies  = "oob.conflicting_replies"

	// Fleet findings.
	FleetCorrelated = "fleet.correlated"
	// FleetZoneUnwatched: a zone with machines has no live instance
	// (docs/scale-out.md).
	FleetZoneUnwatched = "fleet.zone_unwatched"

	// Incidents (internal/incident): broken channels grouped by cause.
	IncidentOpened = "incident.opened"
	IncidentClosed = "incident.closed"

	// BMC security audit (internal/audit).
	AuditCipher0Enabled  = "audit.cipher0_enabled"
	AuditAnonymousLogin  = "audit.anonymous_login"
	AuditWeakAuth        = "audit.weak_auth"
	AuditDefaultPassword = "audit.default_password"
	AuditDrift           = "audit.drift"

	// Power operations.
	PowerFailed  = "power.failed"
	PowerRefused = "power.refused"
	PowerDone    = "power.done"

	// Host agents (internal/agent): the manager's view and what agents report.
	AgentStateChanged = "agent.state_changed" // the manager's: Up, Down, PendingUp
	AgentCertExpiring = "agent.cert_expiring" // a certificate expires within RenewBefore
	AgentCertRenewed  = "agent.cert_renewed"
	AgentCertExpired  = "agent.cert_expired"
	AgentLinkPath     = "agent.link_path"    // the host link's path changed (audited)
	AgentLinkState    = "agent.link_state"   // the host link's state changed
	AgentLinkTimeout  = "agent.link_timeout" // in-band or link requests timed out (Count)
	AgentReEnrolled   = "agent.re_enrolled"
)

// Severity of an event; the same words as store.Severity.
type Severity string

// Severities, least first.
const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Kind describes one code.
type Kind struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"` // the default; an emitter may set another
	// Summary is the one-line operator description.
	Summary string `json:"summary"`
	// Dedup is the default window: an event with the same code and source
	// whose last occurrence is within it is counted, not stored again.
	// 0 stores every occurrence.
	Dedup time.Duration `json:"dedup"`
	// Correlate: the fleet correlator looks for a common factor among the
	// sources raising this code.
	Correlate bool `json:"correlate,omitempty"`
}

var catalogue = []Kind{
	{OOBStateChanged, Info,
		"a channel's declared state changed (the channel's log; the problem codes below carry the alert)", 0, false},
	{OOBNotResponding, Warning,
		"nothing usable came back from the BMC: address, cable/switch, UDP 623 blocked, BMC or enclosure manager down", 10 * time.Minute, true},
	{OOBAuthRefused, Critical,
		"the BMC answered and refused the account: password or user changed, user not re-created after a replacement, privilege, lockout", 10 * time.Minute, true},
	{OOBIdentityMismatch, Critical,
		"another BMC answers at the address (System GUID differs): reused IP, swapped cabling, replaced motherboard", 10 * time.Minute, true},
	{OOBDegraded, Warning,
		"the BMC answers, but only after retransmissions, or the path loses 10% or more of its datagrams (the rate in the message)", time.Hour, true},
	{OOBTimeoutFlood, Warning,
		"timeouts per minute on one BMC over the threshold: competing agents, a leaking BMC firmware, a congested management network", time.Hour, true},
	{OOBTimeoutFloodCleared, Info,
		"a timeout flood ended: the rate fell below half the threshold", 0, false},
	{OOBConflictingReplies, Critical,
		"security: a login step drew an unauthenticated refusal and a verified answer to the same request (the verified one was taken): a forger on the management network, or a device mangling replies", time.Hour, false},
	{FleetCorrelated, Warning,
		"a share of the BMCs with one firmware revision, enclosure or subnet raise the same code: look at what they share", time.Hour, false},
	{FleetZoneUnwatched, Critical,
		"no live server instance serves a zone with machines: its channels are not checked and show stale since then; start an instance with --zone for it (docs/scale-out.md)", time.Hour, false},
	{IncidentOpened, Warning,
		"an incident opened: broken channels grouped by cause (a dead enclosure, one refused user in a group, swapped addresses, a fleet correlation, agents down), with members, remedy and the diagnosis to run; the severity is the incident's", 0, false},
	{IncidentClosed, Info,
		"an incident closed: none of its members has had the problem for a minute", 0, false},
	{AuditCipher0Enabled, Critical,
		"the BMC accepts IPMI cipher suite 0: anyone on the management network can log in without a password", 24 * time.Hour, true},
	{AuditAnonymousLogin, Critical,
		"the BMC has an anonymous or null user enabled", 24 * time.Hour, true},
	{AuditWeakAuth, Warning,
		"the BMC offers IPMI 1.5 authentication none, straight password or MD2", 24 * time.Hour, true},
	{AuditDefaultPassword, Critical,
		"an account on the BMC still has a vendor default password", 24 * time.Hour, true},
	{AuditDrift, Warning,
		"a BMC security setting changed since the last audit", time.Hour, false},
	{PowerFailed, Warning,
		"a power or identify operation was attempted and failed", 10 * time.Minute, false},
	{PowerRefused, Info,
		"a power operation was refused because the OOB channel is not Connectable", 10 * time.Minute, false},
	{PowerDone, Info,
		"a power or identify operation succeeded (the console's machine page follows it live)", 0, false},

	// Host agents (internal/agent): the manager's view and what agents report.
	{AgentStateChanged, Info,
		"an agent became Up, Down or PendingUp (the reason says why: no heartbeat, revoked or unknown certificate, clock skew, untrusted address)", 0, false},
	{AgentCertExpiring, Warning,
		"an agent's certificate or its host link certificate expires within 30 days; the agent is renewing it", 24 * time.Hour, false},
	{AgentCertRenewed, Info,
		"the manager issued an agent a renewed certificate (agent channel or host link)", 0, false},
	{AgentCertExpired, Critical,
		"an agent's certificate expired: its channel (or its host link) fails until it is renewed or the agent enrolls again", 24 * time.Hour, false},
	{AgentLinkPath, Info,
		"the path an agent uses to reach its own BMC changed (in-band, IPv4 link-local, IPv6 fallback); audited", 0, false},
	{AgentLinkState, Warning,
		"an agent's host link (agent ↔ its own BMC) changed state: Up, Down, CertExpired, NotTrusted, Disabled", 0, false},
	{AgentLinkTimeout, Warning,
		"host link requests timed out (in-band or OS-to-BMC network; the IPMIDRV 1004 case); their rate feeds the flood detector", 10 * time.Minute, true},
	{AgentReEnrolled, Info,
		"an agent enrolled again with a new key and a fresh join token", 0, false},
}

var byCode = func() map[string]Kind {
	m := make(map[string]Kind, len(catalogue))
	for _, k := range catalogue {
		m[k.Code] = k
	}
	return m
}()

// Catalogue returns every known code, sorted.
func Catalogue() []Kind {
	out := append([]Kind(nil), catalogue...)
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// Lookup returns the kind of code. Unknown codes are allowed (a newer
// emitter): they get info severity, no dedup, no correlation.
func Lookup(code string) (Kind, bool) {
	k, ok := byCode[code]
	if !ok {
		return Kind{Code: code, Severity: Info}, false
	}
	return k, true
}
