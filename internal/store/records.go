package store

// The records below were declared beside their SQL before the store was
// split (issue 16); they are the model, so they live here, and
// internal/store/sqlstore keeps only how they are stored.

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lightsout/lightsout/internal/protocol"
)

// Agent is an enrolled host agent (internal/agent). Its live state (Up,
// Down, PendingUp) is the manager's, in memory; the row keeps what
// survives a restart.
type Agent struct {
	ID           int64
	Name         string
	EnrolledAt   time.Time
	Version      string
	Capabilities []string
	Address      string
	LastSeen     time.Time
	RevokedAt    time.Time
}

// AgentCert is a client certificate the manager's CA issued to an agent.
type AgentCert struct {
	Serial      string
	AgentID     int64
	Fingerprint string
	IssuedAt    time.Time
	NotAfter    time.Time
	RevokedAt   time.Time
	// Kind is CertAgent (opens the agent channel) or CertLink (the host
	// link's client certificate).
	Kind string
}

// Kinds of agent certificates.
const (
	CertAgent = "agent"
	CertLink  = "link"
)

// ErrTokenInvalid: the join token is unknown, used or expired.
var ErrTokenInvalid = errors.New("join token unknown, already used or expired")

// Instance is one running server sharing the database (docs/scale-out.md).
type Instance struct {
	Name string `json:"name"`
	// Zones it serves (a machine with no zone is in DefaultZone).
	Zones []string `json:"zones"`
	// PeerAddress is where its peers reach its API (forwarded operations).
	PeerAddress string `json:"peer_address,omitempty"`
	// Source is the local address its BMC traffic leaves from, if set.
	Source  string `json:"source,omitempty"`
	Version string `json:"version,omitempty"`
	// View is the member list its share of the fleet was last computed
	// over; nil: it claims no channel (just started, or fenced).
	View []string `json:"view"`
	// Channels it monitors; Checks it made since it started.
	Channels int64 `json:"channels"`
	Checks   int64 `json:"checks"`

	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	LeaseUntil  time.Time `json:"lease_until"`
	// Live: the lease had not lapsed when it was read, by the database's
	// clock (so instances' clocks need not agree).
	Live bool `json:"live"`
}

// DefaultZone is the zone of a machine that names none, and of an instance
// started without --zone.
const DefaultZone = "default"

// Change is one notification of a change to the fleet: an account (with
// its machine), a machine, or (Instance) a peer instance announcing that
// it stored channel state changes — or, with Digests, sharing what the
// fleet detectors need of the sources it checks (events.Digest, JSON).
type Change struct {
	AccountID int64
	MachineID int64
	Instance  string
	Digests   []byte
}

// ErrNoNotify: the database cannot announce changes (SQLite: one instance,
// which makes every change itself).
var ErrNoNotify = errors.New("store: this database has no change notifications (SQLite is single-instance)")

// ZoneOf is the zone a machine is in: its own, else DefaultZone.
func ZoneOf(m Machine) string {
	if m.Zone == "" {
		return DefaultZone
	}
	return m.Zone
}

// Profile is what the monitor learned about the BMC of one account
// (docs/interop.md): the cipher suite that worked (0: none yet) and the
// quirks met, by name; for a Redfish account whose redfish_auth is auto,
// the authentication that worked ("session" or "basic"; "": none yet,
// docs/redfish.md). It belongs to Address (host:port): a profile whose
// address is not the account's any more is stale.
type Profile struct {
	AccountID   int64     `json:"account_id"`
	Address     string    `json:"address"`
	Suite       int       `json:"suite,omitempty"`
	Quirks      []string  `json:"quirks,omitempty"`
	RedfishAuth string    `json:"redfish_auth,omitempty"`
	LearnedAt   time.Time `json:"learned_at"`
}

// SecurityReport is the latest BMC security audit of one OOB account
// (internal/audit). Findings and Report are the audit's JSON; the store
// only keeps them.
type SecurityReport struct {
	AccountID int64  `json:"account_id"`
	Machine   string `json:"machine"` // the machine's name (filled on reads)
	// AuditedAt is when the last complete audit ran (zero: none yet);
	// Findings and Report are that audit's.
	AuditedAt time.Time `json:"audited_at"`
	// AttemptedAt is when the last audit started, complete or not.
	AttemptedAt time.Time       `json:"attempted_at"`
	Findings    json.RawMessage `json:"findings,omitempty"`
	Report      json.RawMessage `json:"report,omitempty"`
	// Error says why the last attempt did not complete ("" when it did).
	Error string `json:"error,omitempty"`
}

// SecurityChange is one stored change of an account's audit findings: the
// first audit (everything added) and every later audit whose findings
// differ from the previous one.
type SecurityChange struct {
	ID        int64           `json:"id"`
	AccountID int64           `json:"account_id"`
	Machine   string          `json:"machine"`
	At        time.Time       `json:"at"`
	Findings  json.RawMessage `json:"findings,omitempty"` // the findings after the change
	Added     json.RawMessage `json:"added,omitempty"`
	Removed   json.RawMessage `json:"removed,omitempty"`
}

// Endpoint is where an account's BMC is reached.
type Endpoint struct {
	Protocol string `json:"protocol"`
	Address  string `json:"address"`
	Port     int    `json:"port"`
}

func (e Endpoint) String() string { return fmt.Sprintf("%s %s port %d", e.Protocol, e.Address, e.Port) }

// EndpointOf is where a reaches its BMC.
func EndpointOf(a Account) Endpoint { return Endpoint{a.Protocol, a.Address, a.Port} }

// DefaultPort is the port a protocol uses when an account or enclosure
// gives none.
func DefaultPort(name string) int { return protocol.Protocol(name).DefaultPort() }
