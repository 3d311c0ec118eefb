package api

import (
	"net/http"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/audit"
	"github.com/lightsout/lightsout/internal/manager"
)

// securityReports: GET /api/v1/security?machine=M&machine=N&group=G&history=N.
func (a *API) securityReports(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	q, err := params(r, "machine", "group", "history")
	if err != nil {
		return err
	}
	history, err := intParam(q, "history", 0, 100)
	if err != nil {
		return err
	}
	vs, err := a.m.SecurityReports(r.Context(), q["machine"], q.Get("group"), int(history))
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []audit.View{}
	}
	writeJSON(w, http.StatusOK, wire.SecurityReports{Reports: vs})
	return nil
}

// auditSecurity: POST /api/v1/audit/security {"machines":[…],"group":""}.
func (a *API) auditSecurity(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	var in wire.SecurityAuditRequest
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	res, err := a.m.AuditSecurity(r.Context(), actor, in.Machines, in.Group)
	if err != nil {
		return err
	}
	if res == nil {
		res = []audit.Result{}
	}
	writeJSON(w, http.StatusOK, wire.SecurityAuditResponse{Results: res})
	return nil
}
