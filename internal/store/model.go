// Package store is the persistence model: the manager's inventory,
// channel states, state history, events, audit log and API tokens as
// records, the typed errors every implementation returns (ErrNotFound,
// ErrConflict, *FieldError), and the Store interface. It does no I/O
// (internal/layers.TestPureCores); the SQL implementation is
// internal/store/sqlstore, and consumers declare the few methods they use.
//
// Values in this package's structs (passwords among them) are plaintext
// in memory only, and never serialized to JSON; sqlstore seals passwords
// at rest.
package store

import (
	"encoding/json"
	"time"

	"github.com/lightsout/lightsout/internal/state"
)

// Machine is one managed server.
type Machine struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// GUID is the expected System GUID in canonical SMBIOS rendering
	// (lower case, dashed); empty until pinned (registration pins it on
	// the first Connectable check).
	GUID  string   `json:"guid,omitempty"`
	Group string   `json:"group,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	// Role is what the machine does in its group (a host name, say); a
	// replacement moves the role from the old machine to the spare.
	Role string `json:"role,omitempty"`
	// Spare machines wait in the pool for a replacement.
	Spare bool `json:"spare,omitempty"`
	// Registering is true while the machine awaits its first Connectable
	// check to pin its GUID.
	Registering bool      `json:"registering,omitempty"`
	Enclosure   string    `json:"enclosure,omitempty"` // enclosure name; empty for a rack server
	Slot        int       `json:"slot,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Zone is where the machine's BMC network is reachable from
	// (docs/scale-out.md); only instances serving it check it. Empty:
	// DefaultZone.
	Zone string `json:"zone,omitempty"`
}

// Account is an OOB account: how the manager reaches a machine's BMC. It is
// also the identity of an OOB channel (ChannelState.AccountID).
type Account struct {
	ID        int64  `json:"id"`
	MachineID int64  `json:"machine_id"`
	Machine   string `json:"machine"`  // the machine's name (read-only, filled on reads)
	Protocol  string `json:"protocol"` // ipmi | redfish
	Address   string `json:"address"`
	Port      int    `json:"port"`
	User      string `json:"user"`
	// Password is plaintext in memory; stored encrypted. Never in JSON.
	Password    []byte `json:"-"`
	Privilege   string `json:"privilege"`    // user | operator | administrator
	CipherSuite int    `json:"cipher_suite"` // 0: automatic
	// RedfishAuth forces the Redfish login: "session" or "basic"; ""
	// lets the prober choose as the service offers (auto).
	RedfishAuth string `json:"redfish_auth,omitempty"`
	// CipherSuites is the account's allow-list, strongest first (nil: the
	// server's default, 17 then 3). Never suite 0.
	CipherSuites []int `json:"cipher_suites,omitempty"`
	// CredentialsChangedAt is when user or password last changed: the
	// monitor retries a NotAuthenticated account at once after an edit.
	CredentialsChangedAt time.Time `json:"credentials_changed_at"`
	CreatedAt            time.Time `json:"created_at"`
	UpdatedAt            time.Time `json:"updated_at"`
}

// Enclosure is a blade chassis and its enclosure manager (EM card / CMC).
type Enclosure struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Protocol string `json:"protocol"` // ipmi
	Address  string `json:"address"`
	Port     int    `json:"port"`
	User     string `json:"user,omitempty"`
	Password []byte `json:"-"`
	Slots    int    `json:"slots"`
	// Kind is how the diagnosis asks the enclosure manager about a blade:
	// "ipmb" (standard IPMI bridging to the blade's controller on the
	// manager's IPMB) or "oem" (lightsout's NetFn 0x30 enclosure commands,
	// as `lightsout sim` speaks them; the default).
	Kind string `json:"kind"`
	// IPMB is an ipmb enclosure's slot-to-address rule: "0x82+2" (slot 1
	// at 0x82, each next slot 2 further) or "0x82,0x84,0x8a" (one address
	// per slot from 1); see inventory.ParseIPMB.
	IPMB      string    `json:"ipmb,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ChannelState is the declared state of one OOB channel (one account).
type ChannelState struct {
	AccountID  int64             `json:"account_id"`
	State      state.OOB         `json:"state"`
	Reason     state.Reason      `json:"reason,omitempty"`
	Conditions []state.Condition `json:"conditions,omitempty"`
	Message    string            `json:"message,omitempty"`
	Since      time.Time         `json:"since"`
	CheckedAt  time.Time         `json:"checked_at"`
	// GUID is the GUID the BMC last reported (SMBIOS rendering).
	GUID string `json:"guid,omitempty"`
	// Power is "on", "off" or "" when unknown.
	Power    string          `json:"power,omitempty"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// Transition is one stored state change of a channel.
type Transition struct {
	ID         int64             `json:"id"`
	AccountID  int64             `json:"account_id"`
	Machine    string            `json:"machine"`
	At         time.Time         `json:"at"`
	From       state.OOB         `json:"from"`
	To         state.OOB         `json:"to"`
	Reason     state.Reason      `json:"reason,omitempty"`
	Conditions []state.Condition `json:"conditions,omitempty"`
	Message    string            `json:"message,omitempty"`
	Evidence   json.RawMessage   `json:"evidence,omitempty"`
}

// Severity of an event.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Event is something an operator may want to know about, with a typed code
// (e.g. "oob.state_changed").
type Event struct {
	ID       int64           `json:"id"`
	At       time.Time       `json:"at"`
	Code     string          `json:"code"`
	Severity Severity        `json:"severity"`
	Source   string          `json:"source"` // machine, enclosure or "fleet"
	Message  string          `json:"message"`
	Count    int             `json:"count"` // ≥ 1; dedup raises it
	LastAt   time.Time       `json:"last_at"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// AuditEntry records one operation: who, what, when, result.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // token name, "cli" or "monitor"
	Action string    `json:"action"` // e.g. power.off, machine.adopt, account.update
	Target string    `json:"target"` // machine or enclosure name, or ""
	Detail string    `json:"detail,omitempty"`
	Result string    `json:"result"` // ok | refused | failed
	Error  string    `json:"error,omitempty"`
}

// Role of an API token. Roles are ordered: viewer < operator < admin.
type Role string

const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// Rank orders roles: Viewer 1, Operator 2, Admin 3, anything else 0.
func (r Role) Rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Token is an API bearer token. Only a SHA-256 hash of the secret is stored.
type Token struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked,omitempty"`
}

// MachineFilter selects machines; zero fields match everything.
type MachineFilter struct {
	Group string
	Names []string
	Tag   string
	// Zone selects the machines of one zone (DefaultZone: those naming
	// none); Prefix those whose name starts with it; Enclosure the blades
	// of one enclosure.
	Zone, Prefix, Enclosure string
	// State and Reason select machines with a channel whose stored state
	// (and reason) is this; State "Unknown" also matches channels never
	// checked.
	State, Reason string
}

// Page bounds a listing: at most Limit rows (0: no limit) with ID > After.
type Page struct {
	After int64
	Limit int
}

// ImportRow is one machine with its OOB account, as an import brings it.
type ImportRow struct {
	Machine Machine
	Account Account // Account.MachineID is ignored; set by the import
	Line    int     // source line, for errors
}
