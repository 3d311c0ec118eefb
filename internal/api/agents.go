package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/store"
)

func (a *API) agentHub() (*agent.Hub, error) {
	if a.agents == nil {
		return nil, &apiError{status: http.StatusServiceUnavailable, code: wire.CodeUnavailable, msg: "this server has no agent hub"}
	}
	return a.agents, nil
}

// listAgents: GET /api/v1/agents.
func (a *API) listAgents(w http.ResponseWriter, _ *http.Request, _ manager.Actor) error {
	h, err := a.agentHub()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.Agents{Agents: h.List(), Interval: h.Interval().String(), CAFingerprint: h.CAFingerprint()})
	return nil
}

// createJoinToken: POST /api/v1/agents/tokens {"ttl":"1h"}.
func (a *API) createJoinToken(w http.ResponseWriter, r *http.Request, actor manager.Actor) (err error) {
	h, err := a.agentHub()
	if err != nil {
		return err
	}
	var in wire.JoinTokenRequest
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	var ttl time.Duration
	if in.TTL != "" {
		if ttl, err = time.ParseDuration(in.TTL); err != nil || ttl <= 0 || ttl > 720*time.Hour {
			return invalid("ttl", "%q: a duration from 1s to 720h", in.TTL)
		}
	}
	defer func() { a.audit(r, actor, "agent.token.create", "", "ttl "+in.TTL, err) }()
	tok, exp, err := h.CreateJoinToken(r.Context(), ttl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, wire.JoinToken{Token: tok, ExpiresAt: exp, CAFingerprint: h.CAFingerprint()})
	return nil
}

// revokeAgent: POST /api/v1/agents/{id}/revoke.
func (a *API) revokeAgent(w http.ResponseWriter, r *http.Request, actor manager.Actor) (err error) {
	h, err := a.agentHub()
	if err != nil {
		return err
	}
	s := r.PathValue("id")
	id, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil || id < 1 {
		return invalid("id", "%q is not an agent ID (a positive whole number)", s)
	}
	defer func() { a.audit(r, actor, "agent.revoke", s, "", err) }()
	st, err := h.Revoke(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("id", "no agent %d", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// agentOp: POST /api/v1/agents/{id}/ops {"op":"collect-inventory"}. The
// route needs operator; os-shutdown needs admin.
func (a *API) agentOp(w http.ResponseWriter, r *http.Request, actor manager.Actor) (err error) {
	h, err := a.agentHub()
	if err != nil {
		return err
	}
	s := r.PathValue("id")
	id, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil || id < 1 {
		return invalid("id", "%q is not an agent ID (a positive whole number)", s)
	}
	var in wire.AgentOpRequest
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	if !agent.IsOp(in.Op) {
		return invalid("op", "%q: one of %s", in.Op, strings.Join(agent.Ops, ", "))
	}
	if in.Op == agent.OpOSShutdown && actor.Role.Rank() < store.RoleAdmin.Rank() {
		err = &apiError{status: http.StatusForbidden, code: wire.CodeForbidden,
			msg: "op os-shutdown needs role admin; token \"" + actor.Name + "\" has " + string(actor.Role)}
		a.audit(r, actor, "agent.op", s, "op "+in.Op, err)
		return err
	}
	var res agent.Result
	defer func() {
		detail := "op " + in.Op
		if res.Agent != "" {
			detail += " on " + res.Agent
		}
		if err == nil && !res.OK {
			a.audit(r, actor, "agent.op", s, detail, errors.New(res.Error))
			return
		}
		a.audit(r, actor, "agent.op", s, detail, err)
	}()
	res, err = h.Do(r.Context(), s, in.Op)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("id", "no agent %d", id)
	case errors.Is(err, agent.ErrAgentNotUp), errors.Is(err, agent.ErrNoCapability):
		return &apiError{status: http.StatusConflict, code: wire.CodeRefused, field: "op", msg: err.Error()}
	case errors.Is(err, agent.ErrOpTimeout):
		return &apiError{status: http.StatusGatewayTimeout, code: wire.CodeUnavailable, msg: err.Error()}
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
