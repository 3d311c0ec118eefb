package wire

import (
	"time"

	"github.com/lightsout/lightsout/internal/agent"
)

// Agents is GET /api/v1/agents.
type Agents struct {
	Agents []agent.Status `json:"agents"`
	// Interval is the heartbeat interval; an agent is Down after 3 missed.
	Interval      string `json:"interval"`
	CAFingerprint string `json:"ca_fingerprint"`
}

// JoinTokenRequest is POST /api/v1/agents/tokens (body optional).
type JoinTokenRequest struct {
	TTL string `json:"ttl,omitempty"` // Go duration; default 24h, at most 720h
}

// JoinToken is the reply: the token is shown once.
type JoinToken struct {
	Token         string    `json:"token"`
	ExpiresAt     time.Time `json:"expires_at"`
	CAFingerprint string    `json:"ca_fingerprint"`
}

// AgentOpRequest is POST /api/v1/agents/{id}/ops; the reply is an
// agent.Result.
type AgentOpRequest struct {
	Op string `json:"op"` // collect-inventory, bmc-check, os-shutdown (admin), restart-link
}

// AgentDiagRequest is POST /api/v1/agents/{id}/diag (body optional); the
// reply is a gather.AgentReport.
type AgentDiagRequest struct {
	// Autocorrect applies the diagnosis's fixes (operator); a re-enrollment
	// token is minted only for an admin.
	Autocorrect bool `json:"autocorrect,omitempty"`
}
