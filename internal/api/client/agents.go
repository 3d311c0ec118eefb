package client

import (
	"context"
	"strconv"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/diag/gather"
)

// Agents lists the agents and their states.
func (c *Client) Agents(ctx context.Context) (wire.Agents, error) {
	var out wire.Agents
	return out, c.call(ctx, "GET", "/api/v1/agents", nil, nil, &out)
}

// CreateJoinToken makes a one-time agent join token (ttl "" = default).
func (c *Client) CreateJoinToken(ctx context.Context, ttl string) (wire.JoinToken, error) {
	var out wire.JoinToken
	return out, c.call(ctx, "POST", "/api/v1/agents/tokens", nil, wire.JoinTokenRequest{TTL: ttl}, &out)
}

// RevokeAgent revokes an agent's certificates.
func (c *Client) RevokeAgent(ctx context.Context, id int64) (agent.Status, error) {
	var out agent.Status
	return out, c.call(ctx, "POST", "/api/v1/agents/"+strconv.FormatInt(id, 10)+"/revoke", nil, nil, &out)
}

// AgentOp asks an agent to run an allowlisted op.
func (c *Client) AgentOp(ctx context.Context, id int64, op string) (agent.Result, error) {
	var out agent.Result
	return out, c.call(ctx, "POST", "/api/v1/agents/"+strconv.FormatInt(id, 10)+"/ops", nil, wire.AgentOpRequest{Op: op}, &out)
}

// DiagnoseAgent diagnoses an agent (by node ID or name) and, with
// autocorrect (operator), applies the fixes; a re-enrollment token is
// minted only for an admin.
func (c *Client) DiagnoseAgent(ctx context.Context, ref string, autocorrect bool) (gather.AgentReport, error) {
	var out gather.AgentReport
	return out, c.call(ctx, "POST", "/api/v1/agents/"+esc(ref)+"/diag", nil, wire.AgentDiagRequest{Autocorrect: autocorrect}, &out)
}
