// Package agent is the agent channel: the manager's side (Hub: enrollment
// with one-time join tokens, the mutually authenticated TLS listener, the
// per-agent Up / Down / PendingUp state) and the host's side (Run: enroll
// once, then keep one TLS connection open and send heartbeats). The wire
// is one TLS connection carrying JSON lines; see docs/agent.md.
package agent

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/agentstate"
	"github.com/lightsout/lightsout/internal/evcode"
)

// States of an agent (the RMC heartbeat states).
const (
	Up        = agentstate.Up
	Down      = agentstate.Down
	PendingUp = agentstate.PendingUp
)

// Reasons of a PendingUp: the start of Status.Reason's message (the code is
// Status.Code).
const (
	ReasonRevoked     = "certificate revoked"
	ReasonUnknownCert = "unknown certificate"
	ReasonNoCert      = "no client certificate"
	ReasonExpired     = "certificate expired"
	ReasonClockSkew   = "clock skew"
)

// Version of this build's agent and manager: an agent reporting another is
// flagged (version skew).
var Version = "0.5.0"

// Capabilities an agent of this version reports.
var DefaultCapabilities = []string{"heartbeat"}

// msg is one JSON line, either way.
type msg struct {
	Type string `json:"type"` // enroll, hello, heartbeat, op-result; enrolled, welcome, ack, refused, op

	// enroll
	Token string `json:"token,omitempty"`
	CSR   []byte `json:"csr,omitempty"`
	Name  string `json:"name,omitempty"`

	// hello, heartbeat (agent → manager)
	Version      string    `json:"version,omitempty"`
	Capabilities []string  `json:"capabilities,omitempty"`
	Time         time.Time `json:"time,omitzero"`
	Seq          uint64    `json:"seq,omitempty"`

	// enrolled, welcome, ack, refused (manager → agent)
	Cert     []byte `json:"cert,omitempty"`     // PEM
	CA       []byte `json:"ca,omitempty"`       // PEM
	ID       int64  `json:"id,omitempty"`       // node ID
	Interval string `json:"interval,omitempty"` // heartbeat interval the manager wants
	Reason   string `json:"reason,omitempty"`

	// op (manager → agent) and op-result (agent → manager): a request and
	// its answer, matched by op_id ("id" on the wire is the node ID of a
	// welcome). Heartbeat acks are type "ack" with seq: never confused.
	OpID   uint64          `json:"op_id,omitempty"`
	Op     string          `json:"op,omitempty"`
	OK     bool            `json:"ok,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
	// Args of an op (re-enroll: the join token).
	Args json.RawMessage `json:"args,omitempty"`

	// Requests the agent makes (renew, discover) and their answers
	// (renewed, managers, refused) carry the agent's req counter.
	Req  uint64 `json:"req,omitempty"`
	Kind string `json:"kind,omitempty"` // renew: "agent" or "link"
	// managers (manager → agent): the agent listeners of every live
	// manager sharing this one's database.
	Managers []string `json:"managers,omitempty"`

	// heartbeat extras: the host link's state and the messages the agent
	// holds for want of a manager.
	Link   *LinkStatus `json:"link,omitempty"`
	Queued int         `json:"queued,omitempty"`

	// event (agent → manager): something the agent saw.
	Event *Event `json:"event,omitempty"`
}

// Event is something an agent reports to its managers (see the agent.*
// codes in docs/events.md): a certificate nearing expiry or renewed, the
// host link's path changing, in-band timeouts.
type Event struct {
	At       time.Time       `json:"at"`
	Code     string          `json:"code"`
	Severity string          `json:"severity"` // info, warning, critical
	Message  string          `json:"message"`
	Data     json.RawMessage `json:"data,omitempty"`
	// Count of occurrences this event stands for (link timeouts: how many
	// timed out since the last report); 0 means 1.
	Count int `json:"count,omitempty"`
}

// Event codes an agent reports and the hub raises, from the catalogue
// (internal/evcode).
const (
	EvStateChanged = evcode.AgentStateChanged // the manager's: Up, Down, PendingUp
	EvCertExpiring = evcode.AgentCertExpiring // a certificate expires within RenewBefore
	EvCertRenewed  = evcode.AgentCertRenewed
	EvCertExpired  = evcode.AgentCertExpired
	EvLinkPath     = evcode.AgentLinkPath    // the host link's path changed (audited)
	EvLinkState    = evcode.AgentLinkState   // the host link's state changed
	EvLinkTimeout  = evcode.AgentLinkTimeout // in-band or link requests timed out (Count)
	EvReEnrolled   = evcode.AgentReEnrolled
)

// JoinTokenPrefix starts every join token.
const JoinTokenPrefix = "lsj_"

// NewJoinToken returns a token "lsj_SECRET.CAFINGERPRINT" and the hash of
// its secret part. The fingerprint lets the agent pin the manager's CA.
func NewJoinToken(caFingerprint string) (string, string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	s := JoinTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return s + "." + caFingerprint, s
}

// ParseJoinToken splits a token into its secret and CA fingerprint (empty
// when the token carries none).
func ParseJoinToken(t string) (secretPart, fingerprint string, err error) {
	t = strings.TrimSpace(t)
	if !strings.HasPrefix(t, JoinTokenPrefix) {
		return "", "", fmt.Errorf("join token: must start with %s", JoinTokenPrefix)
	}
	secretPart, fingerprint, _ = strings.Cut(t, ".")
	if fingerprint != "" {
		if err := checkFingerprint(fingerprint); err != nil {
			return "", "", err
		}
	}
	return secretPart, fingerprint, nil
}

func checkFingerprint(fp string) error {
	b, err := hex.DecodeString(fp)
	if err != nil || len(b) != 32 {
		return errors.New("CA fingerprint: must be 64 hex digits (SHA-256)")
	}
	return nil
}
