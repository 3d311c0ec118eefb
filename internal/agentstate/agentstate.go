// Package agentstate is the vocabulary of the agent channel, a leaf: an
// agent's state as the manager sees it (Status, with a typed reason code
// beside the operator's message), its host link's report (LinkStatus), and
// the names of states, link paths and remote operations. The hub
// (internal/agent) produces it; the diagnosis (internal/diag), the console
// and the incidents read it without importing the hub.
package agentstate

import "time"

// States of an agent (the RMC heartbeat states).
const (
	Up        = "Up"
	Down      = "Down"
	PendingUp = "PendingUp"
)

// ReasonCode says why an agent is Down or PendingUp, for code to decide
// on; Status.Reason is the message for people, which may carry details
// (an address, a skew, a TLS error) after the reason.
type ReasonCode string

// Reason codes.
const (
	// Down.
	NeverConnected   ReasonCode = "never_connected"   // enrolled, or known from the store, and not connected since
	NoHeartbeat      ReasonCode = "no_heartbeat"      // missed heartbeats
	ConnectionClosed ReasonCode = "connection_closed" // the connection ended
	SessionRestarted ReasonCode = "session_restarted" // the manager restarted the session (an autocorrect)

	// PendingUp.
	Revoked       ReasonCode = "revoked"        // its certificate was revoked
	UnknownCert   ReasonCode = "unknown_cert"   // a certificate this manager's CA did not issue, or not an agent certificate
	NoCert        ReasonCode = "no_cert"        // TLS without a client certificate
	CertExpired   ReasonCode = "cert_expired"   // its certificate expired
	ClockSkew     ReasonCode = "clock_skew"     // its clock differs beyond the allowed skew
	TrustMismatch ReasonCode = "trust_mismatch" // it refused this manager's certificate (it pins another CA)
	NotTrusted    ReasonCode = "not_trusted"    // its address is not in the trusted host list
	LookupFailed  ReasonCode = "lookup_failed"  // the manager could not look its certificate up
)

// Reason is a reason code with its message.
type Reason struct {
	Code    ReasonCode
	Message string
}

// Status is what the manager knows of one agent.
type Status struct {
	ID    int64  `json:"id"` // node ID; 0 for a certificate the manager cannot place
	Name  string `json:"name"`
	State string `json:"state"` // Up, Down, PendingUp
	// Reason of a Down or PendingUp: the message, and its code (not on
	// the wire: the API keeps its schema).
	Reason        string     `json:"reason,omitempty"`
	Code          ReasonCode `json:"-"`
	Since         time.Time  `json:"since,omitzero"`
	Version       string     `json:"version,omitempty"`
	VersionSkew   bool       `json:"version_skew"`
	Capabilities  []string   `json:"capabilities"`
	Address       string     `json:"address,omitempty"`
	LastHeartbeat time.Time  `json:"last_heartbeat,omitzero"`
	Revoked       bool       `json:"revoked"`
	// CertNotAfter is when the certificate the agent connects with
	// expires (zero until it has connected).
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	// Queued is the number of operations sent and not answered yet.
	Queued int `json:"queued"`
	// Link is the agent's last report of its host link (agent ↔ its own
	// BMC); nil until it reported one.
	Link *LinkStatus `json:"link,omitempty"`
}

// Host link states, as an agent reports them (LinkStatus.State).
const (
	LinkUp          = "Up"          // a path to the BMC works
	LinkDown        = "Down"        // every enabled path failed (timeouts, refused, no address)
	LinkCertExpired = "CertExpired" // the BMC refused the link certificate: it has expired
	LinkNotTrusted  = "NotTrusted"  // the BMC refused the link certificate for another reason, or its own changed
	LinkDisabled    = "Disabled"    // every path is disabled in the agent's configuration
	LinkUnknown     = "Unknown"     // not checked yet
)

// Host link paths (LinkStatus.Path).
const (
	PathInBand = "inband" // /dev/ipmi0
	PathIPv4   = "ipv4"   // the OS-to-BMC network, IPv4 link-local
	PathIPv6   = "ipv6"   // the OS-to-BMC network, IPv6 (the fallback)
)

// LinkStatus is an agent's report of its host link.
type LinkStatus struct {
	State   string `json:"state"`
	Path    string `json:"path,omitempty"`    // the path in use when Up
	Address string `json:"address,omitempty"` // the BMC address on that path
	Reason  string `json:"reason,omitempty"`  // why not Up, or why a fallback is in use
	Remedy  string `json:"remedy,omitempty"`
	// IPv4Failed: IPv4 was enabled and failed, so IPv6 is in use (some BMC
	// features need IPv4 on the link).
	IPv4Failed bool `json:"ipv4_failed,omitempty"`
	// CertNotAfter is when the link certificate expires.
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	// Timeouts counts the link's timed-out requests since the agent
	// started; TimeoutRate is their rate over the last 5 minutes, a minute.
	Timeouts    uint64    `json:"timeouts"`
	TimeoutRate float64   `json:"timeout_rate"`
	Checked     time.Time `json:"checked,omitzero"`
}

// Remote operations the manager may ask of an agent. Each is also the
// capability an agent reports when it supports it.
const (
	OpCollectInventory = "collect-inventory"
	OpBMCCheck         = "bmc-check"
	OpOSShutdown       = "os-shutdown"
	OpRestartLink      = "restart-link"
	// OpRenewCerts: renew the agent's and the link's certificates now.
	OpRenewCerts = "renew-certs"
	// OpRefreshTrust: re-read the trusted CA and rediscover the managers now.
	OpRefreshTrust = "refresh-trust"
)
