package api

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/diag/gather"
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
	id, err := idParam(r, "agent")
	if err != nil {
		return err
	}
	s := r.PathValue("id")
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
	id, err := idParam(r, "agent")
	if err != nil {
		return err
	}
	s := r.PathValue("id")
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

// findAgent resolves an agent by node ID or name, as the hub's ops do: an
// ID first, then the name (the newest node when a name was enrolled
// again).
func findAgent(h *agent.Hub, ref string) (agent.Status, bool) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil && id > 0 {
		if st, ok := h.Get(id); ok {
			return st, true
		}
	}
	var found agent.Status
	ok := false
	for _, st := range h.List() {
		if st.ID > 0 && st.Name == ref && (!ok || st.ID > found.ID) {
			found, ok = st, true
		}
	}
	return found, ok
}

// agentDiag: POST /api/v1/agents/{id}/diag {"autocorrect":false} (id: node
// ID or name). Diagnosing needs viewer, autocorrect operator; the
// re-enrollment token is minted for an admin only. Every autocorrect is
// audited as agent.diag with the fixes it tried.
func (a *API) agentDiag(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	h, err := a.agentHub()
	if err != nil {
		return err
	}
	ref := r.PathValue("id")
	var in wire.AgentDiagRequest
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	st, ok := findAgent(h, ref)
	if !ok {
		return notFound("id", "no agent %q (give its node ID or name; `lightsout domain status` lists them)", ref)
	}
	target := strconv.FormatInt(st.ID, 10)
	if in.Autocorrect && actor.Role.Rank() < store.RoleOperator.Rank() {
		err := &apiError{status: http.StatusForbidden, code: wire.CodeForbidden,
			msg: "autocorrect needs role operator; token \"" + actor.Name + "\" has " + string(actor.Role) + " (diagnose without autocorrect)"}
		a.audit(r, actor, "agent.diag", target, "autocorrect on "+st.Name+": refused", err)
		return err
	}
	facts := diag.AgentFacts{Status: st, Now: time.Now(), ManagerVersion: agent.Version}
	if a.ev != nil && st.Name != "" {
		facts.Flooding = a.ev.Flooding("agent:" + st.Name)
	}
	rep := gather.DiagnoseAgent(r.Context(), h, facts, in.Autocorrect, actor.Role == store.RoleAdmin)
	if rep.Command != "" {
		if addr := a.agentListener(r); addr != "" {
			rep.Command = strings.Replace(rep.Command, " "+gather.ReEnrollManager+" ", " "+addr+" ", 1)
		}
	}
	if in.Autocorrect {
		detail := "autocorrect on " + st.Name + ": " + string(rep.Diagnosis.Cause)
		var lines, fails []string
		for _, ap := range rep.Applied {
			lines = append(lines, ap.Action.Line())
			if !ap.OK {
				fails = append(fails, string(ap.Action.Kind)+": "+ap.Error)
			}
		}
		if len(lines) == 0 {
			detail += "; nothing to apply"
		} else {
			detail += "; " + strings.Join(lines, "; ")
		}
		var aerr error
		if len(fails) > 0 {
			aerr = errors.New(strings.Join(fails, "; "))
		}
		a.audit(r, actor, "agent.diag", target, detail, aerr)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// agentListener is the address agents dial, for a re-enrollment command:
// the agent listener's, or, when it listens on every interface, the host
// the API was reached at with the listener's port; "" when unknown.
func (a *API) agentListener(r *http.Request) string {
	if a.agentAddr == nil {
		return ""
	}
	s := a.agentAddr.String()
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return s
	}
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "" {
		return ""
	}
	return net.JoinHostPort(h, port)
}
