package api

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/exporter"
	"github.com/lightsout/lightsout/internal/incident"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the embedded OpenAPI 3.0 document.
func OpenAPI() []byte { return bytes.Clone(openAPI) }

const (
	viewer   = store.RoleViewer
	operator = store.RoleOperator
	admin    = store.RoleAdmin
	public   = store.Role("")
)

// routes is every operation the API serves. The OpenAPI document lists
// exactly these (a test holds the two together).
func (a *API) routes() []route {
	return []route{
		{"GET", "/api/v1/openapi.json", public, a.openapi},
		{"GET", "/metrics", public, a.metrics},
		{"GET", "/probe", operator, a.probe},
		{"GET", "/healthz", public, func(w http.ResponseWriter, r *http.Request, _ manager.Actor) error { a.healthz(w, r); return nil }},

		{"GET", "/api/v1/whoami", viewer, a.whoami},
		{"GET", "/api/v1/summary", viewer, a.summary},
		{"GET", "/api/v1/incidents", viewer, a.incidents},

		{"GET", "/api/v1/machines", viewer, a.listMachines},
		{"POST", "/api/v1/machines", operator, a.addMachine},
		{"GET", "/api/v1/machines/{name}", viewer, a.getMachine},
		{"PATCH", "/api/v1/machines/{name}", operator, a.patchMachine},
		{"DELETE", "/api/v1/machines/{name}", admin, a.deleteMachine},
		{"GET", "/api/v1/machines/{name}/history", viewer, a.history},
		{"POST", "/api/v1/machines/{name}/adopt", admin, a.adopt},
		{"POST", "/api/v1/machines/{name}/accept-certificate", admin, a.acceptCertificate},
		{"POST", "/api/v1/machines/{name}/replace", operator, a.replace},
		{"POST", "/api/v1/machines/{name}/register", admin, a.register},

		{"GET", "/api/v1/accounts", viewer, a.listAccounts},
		{"POST", "/api/v1/accounts", operator, a.addAccount},
		{"GET", "/api/v1/accounts/{id}", viewer, a.getAccount},
		{"PATCH", "/api/v1/accounts/{id}", operator, a.patchAccount},
		{"DELETE", "/api/v1/accounts/{id}", admin, a.deleteAccount},

		{"GET", "/api/v1/enclosures", viewer, a.listEnclosures},
		{"POST", "/api/v1/enclosures", operator, a.addEnclosure},
		{"GET", "/api/v1/enclosures/{name}", viewer, a.getEnclosure},
		{"PATCH", "/api/v1/enclosures/{name}", operator, a.patchEnclosure},
		{"DELETE", "/api/v1/enclosures/{name}", admin, a.deleteEnclosure},

		{"POST", "/api/v1/import", operator, a.importInventory},
		{"GET", "/api/v1/export", viewer, a.export},

		{"POST", "/api/v1/check", operator, a.check},
		{"POST", "/api/v1/power", viewer, a.power}, // status is a viewer's; the manager gates the rest
		{"POST", "/api/v1/allocate", operator, a.allocate},
		{"POST", "/api/v1/diag", operator, a.diag},

		{"GET", "/api/v1/events", viewer, a.events},
		{"GET", "/api/v1/events/stream", viewer, a.streamEvents},
		{"GET", "/api/v1/events/catalogue", viewer, a.eventCatalogue},
		{"GET", "/api/v1/audit", operator, a.auditLog},

		{"GET", "/api/v1/security", viewer, a.securityReports},
		{"POST", "/api/v1/audit/security", operator, a.auditSecurity},

		{"GET", "/api/v1/agents", viewer, a.listAgents},
		{"POST", "/api/v1/agents/tokens", admin, a.createJoinToken},
		{"POST", "/api/v1/agents/{id}/revoke", admin, a.revokeAgent},
		{"POST", "/api/v1/agents/{id}/ops", operator, a.agentOp},
		{"POST", "/api/v1/agents/{id}/diag", viewer, a.agentDiag}, // autocorrect needs operator, the re-enrollment token admin

		{"GET", "/api/v1/instances", viewer, a.listInstances},

		{"GET", "/api/v1/tokens", admin, a.listTokens},
		{"POST", "/api/v1/tokens", admin, a.createToken},
		{"DELETE", "/api/v1/tokens/{name}", admin, a.revokeToken},
	}
}

func (a *API) openapi(w http.ResponseWriter, _ *http.Request, _ manager.Actor) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPI)
	return nil
}

func (a *API) metrics(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	if a.met == nil {
		return notFound("", "this server exports no metrics")
	}
	w.Header().Del("Cache-Control")
	a.met.ServeHTTP(w, r)
	return nil
}

// probe serves GET /probe?target=NAME in blackbox_exporter's style: a
// fresh check of the machine (operator: it is a check now, under the
// lockout guard), probe_success, probe_duration_seconds and the machine's
// channel series as metrics.
func (a *API) probe(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	q, err := params(r, "target", "module")
	if err != nil {
		return err
	}
	target := q.Get("target")
	if target == "" {
		return invalid("target", "required: the machine to check (?target=NAME)")
	}
	if m := q.Get("module"); m != "" && m != "oob" {
		return invalid("module", "%q is not a module (oob, the default)", m)
	}
	start := time.Now()
	res, err := a.m.CheckNow(r.Context(), actor, []string{target}, "")
	if err != nil {
		return err
	}
	took := time.Since(start)
	mv, err := a.m.Machine(r.Context(), target)
	if err != nil {
		return err
	}
	w.Header().Del("Cache-Control")
	promhttp.HandlerFor(exporter.ProbeRegistry(mv, res, took), promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

func (a *API) whoami(w http.ResponseWriter, _ *http.Request, actor manager.Actor) error {
	writeJSON(w, http.StatusOK, wire.WhoAmI{Name: actor.Name, Role: actor.Role})
	return nil
}

func (a *API) summary(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	s, err := a.m.Summarize(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

func (a *API) incidents(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	if _, err := params(r); err != nil {
		return err
	}
	incs, err := a.m.Incidents(r.Context())
	if err != nil {
		return err
	}
	if incs == nil {
		incs = []incident.Incident{}
	}
	writeJSON(w, http.StatusOK, incs)
	return nil
}

// --- query parameters ---

// params checks that the query names only known parameters (a typo is an
// error, not silently ignored) and returns it.
func params(r *http.Request, known ...string) (url.Values, error) {
	q := r.URL.Query()
	for k := range q {
		ok := false
		for _, n := range known {
			ok = ok || k == n
		}
		if !ok {
			if len(known) == 0 {
				return nil, invalid(k, "unknown query parameter; this route takes none")
			}
			return nil, invalid(k, "unknown query parameter; want %s", strings.Join(known, ", "))
		}
	}
	return q, nil
}

// intParam reads an optional integer parameter within [lo, hi].
func intParam(q url.Values, name string, lo, hi int64) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, invalid(name, "%q is not a whole number from %d to %d", s, lo, hi)
	}
	return n, nil
}

// idParam reads the path's {id}, the ID of a what ("account", "agent").
func idParam(r *http.Request, what string) (int64, error) {
	s := r.PathValue("id")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, invalid("id", "%q is not an %s ID (a positive whole number)", s, what)
	}
	return n, nil
}

// decodeOptional is decode, but an empty body is the zero value.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	err := decode(w, r, MaxBody, v)
	var ae *apiError
	if errors.As(err, &ae) && ae.code == wire.CodeBadRequest && strings.Contains(ae.msg, "body is empty") {
		return nil
	}
	return err
}

// --- machines ---

func (a *API) listMachines(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	q, err := params(r, "group", "tag", "limit", "after", "state", "reason", "condition", "enclosure", "zone", "prefix")
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", 1, MaxPage)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = DefaultPage
	}
	after, err := intParam(q, "after", 0, 1<<62)
	if err != nil {
		return err
	}
	vf := manager.ViewFilter{State: state.OOB(q.Get("state")), Reason: state.Reason(q.Get("reason")),
		Condition: state.Condition(q.Get("condition")), Enclosure: q.Get("enclosure"), Zone: q.Get("zone")}
	if err := vf.Check(); err != nil {
		return err
	}
	// Filtered in the database, one page at a time; the condition (which
	// the security audit adds to) is checked on the page.
	mf := store.MachineFilter{Group: q.Get("group"), Tag: q.Get("tag"), Zone: vf.Zone, Prefix: q.Get("prefix"),
		Enclosure: vf.Enclosure, State: string(vf.State), Reason: string(vf.Reason)}
	ms, err := a.m.Machines(r.Context(), mf, store.Page{After: after, Limit: int(limit)})
	if err != nil {
		return err
	}
	out := wire.Machines{Machines: make([]manager.MachineView, 0, len(ms))}
	if len(ms) == int(limit) {
		out.NextAfter = ms[len(ms)-1].ID
	}
	for _, mv := range ms {
		if vf.Match(mv) {
			out.Machines = append(out.Machines, mv)
		}
	}
	writeMachines(w, out)
	return nil
}

// Pages of GET /api/v1/machines: DefaultPage machines unless limit says
// otherwise, at most MaxPage; next_after is the cursor of the next page.
const (
	DefaultPage = 100
	MaxPage     = 1000
)

func (a *API) addMachine(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	var in manager.MachineInput
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	if in.Name == "" {
		return invalid("name", "required")
	}
	mv, err := a.m.AddMachine(r.Context(), actor, in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/machines/"+url.PathEscape(mv.Name))
	writeJSON(w, http.StatusCreated, mv)
	return nil
}

func (a *API) getMachine(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	mv, err := a.m.Machine(r.Context(), r.PathValue("name"))
	if err != nil {
		return machineErr(r, err)
	}
	writeJSON(w, http.StatusOK, mv)
	return nil
}

// machineErr words a bare ErrNotFound for the machine in the path.
func machineErr(r *http.Request, err error) error {
	if lookupMissed(err, "machine") {
		return notFound("name", "no machine named %q", r.PathValue("name"))
	}
	return err
}

// lookupMissed reports whether err is the store not finding the record the
// path names: a bare ErrNotFound, or one the store attributes to the
// record kind itself (not to another field of the request).
func lookupMissed(err error, kind string) bool {
	if !errors.Is(err, store.ErrNotFound) {
		return false
	}
	var fe *store.FieldError
	return !errors.As(err, &fe) || fe.Field == kind || fe.Field == "name" || fe.Field == "id"
}

func (a *API) patchMachine(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	var p manager.MachinePatch
	if err := decode(w, r, MaxBody, &p); err != nil {
		return err
	}
	mv, err := a.m.UpdateMachine(r.Context(), actor, r.PathValue("name"), p)
	if err != nil {
		return machineErr(r, err)
	}
	writeJSON(w, http.StatusOK, mv)
	return nil
}

func (a *API) deleteMachine(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	if err := a.m.DeleteMachine(r.Context(), actor, r.PathValue("name")); err != nil {
		return machineErr(r, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) history(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	q, err := params(r, "before", "limit")
	if err != nil {
		return err
	}
	before, err := intParam(q, "before", 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", 1, 10000)
	if err != nil {
		return err
	}
	ts, err := a.m.History(r.Context(), r.PathValue("name"), before, int(limit))
	if err != nil {
		return machineErr(r, err)
	}
	out := wire.History{Transitions: ts}
	if out.Transitions == nil {
		out.Transitions = []store.Transition{}
	}
	eff := int(limit)
	if eff == 0 {
		eff = 100
	}
	if len(ts) == eff {
		out.NextBefore = ts[len(ts)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) adopt(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	var in wire.AdoptRequest
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := a.m.Adopt(r.Context(), actor, name, in.GUID); err != nil {
		return machineErr(r, err)
	}
	return a.writeMachine(w, r, name)
}

func (a *API) acceptCertificate(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	var in wire.AcceptCertificateRequest
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := a.m.AcceptCertificate(r.Context(), actor, name, in.Fingerprint); err != nil {
		return machineErr(r, err)
	}
	return a.writeMachine(w, r, name)
}

func (a *API) writeMachine(w http.ResponseWriter, r *http.Request, name string) error {
	mv, err := a.m.Machine(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mv)
	return nil
}

func (a *API) replace(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	var in wire.ReplaceRequest
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	if in.Spare == "" {
		return invalid("spare", "required: the spare machine that takes this one's place")
	}
	old := r.PathValue("name")
	if err := a.m.Replace(r.Context(), actor, old, in.Spare); err != nil {
		return machineErr(r, err)
	}
	var out wire.ReplaceResponse
	var err error
	if out.Old, err = a.m.Machine(r.Context(), old); err != nil {
		return err
	}
	if out.Spare, err = a.m.Machine(r.Context(), in.Spare); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) register(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	var in struct{}
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := a.m.Register(r.Context(), actor, name); err != nil {
		return machineErr(r, err)
	}
	return a.writeMachine(w, r, name)
}

// --- accounts ---

// channel is an account with its current state and remedy.
func (a *API) channel(acct store.Account) manager.ChannelView {
	acct.Password = nil
	cs, ok := a.m.Monitor.Get(acct.ID)
	if !ok || cs.State == "" {
		cs.State, cs.AccountID = state.Unknown, acct.ID
	}
	return manager.ChannelView{Account: acct, State: cs, Remedy: state.RemedyFor(cs.State, cs.Reason, "", acct.ID)}
}

func (a *API) listAccounts(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	q, err := params(r, "machine")
	if err != nil {
		return err
	}
	var f store.MachineFilter
	if m := q.Get("machine"); m != "" {
		if _, err := a.st.Machine(r.Context(), m); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return notFound("machine", "no machine named %q", m)
			}
			return err
		}
		f.Names = []string{m}
	}
	accts, err := a.st.Accounts(r.Context(), f, store.Page{})
	if err != nil {
		return err
	}
	out := wire.Accounts{Accounts: make([]manager.ChannelView, 0, len(accts))}
	for _, acct := range accts {
		out.Accounts = append(out.Accounts, a.channel(acct))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getAccount(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	id, err := idParam(r, "account")
	if err != nil {
		return err
	}
	acct, err := a.st.Account(r.Context(), id)
	if err != nil {
		return accountErr(id, err)
	}
	writeJSON(w, http.StatusOK, a.channelCtx(r, acct))
	return nil
}

func (a *API) channelCtx(r *http.Request, acct store.Account) manager.ChannelView {
	v := a.channel(acct)
	if stored, err := a.st.State(r.Context(), acct.ID); err == nil {
		v.State.Evidence = stored.Evidence
	}
	return v
}

func accountErr(id int64, err error) error {
	if lookupMissed(err, "account") {
		return notFound("id", "no account with ID %d", id)
	}
	return err
}

func (a *API) addAccount(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	var in manager.AccountInput
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	acct, err := a.m.AddAccount(r.Context(), actor, in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/accounts/%d", acct.ID))
	writeJSON(w, http.StatusCreated, a.channel(acct))
	return nil
}

func (a *API) patchAccount(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	id, err := idParam(r, "account")
	if err != nil {
		return err
	}
	var in manager.AccountInput
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	if in.Machine != "" {
		return invalid("machine", "an account cannot move to another machine; add a new account there and delete this one")
	}
	acct, err := a.m.UpdateAccount(r.Context(), actor, id, in)
	if err != nil {
		return accountErr(id, err)
	}
	v := a.channel(acct)
	if next, held := a.m.Monitor.EditHeld(id); held {
		v.NextAttempt = &next
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (a *API) deleteAccount(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	id, err := idParam(r, "account")
	if err != nil {
		return err
	}
	if err := a.m.DeleteAccount(r.Context(), actor, id); err != nil {
		return accountErr(id, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- enclosures ---

func enclosureErr(r *http.Request, err error) error {
	if lookupMissed(err, "enclosure") {
		return notFound("name", "no enclosure named %q", r.PathValue("name"))
	}
	return err
}

func (a *API) listEnclosures(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	es, err := a.st.Enclosures(r.Context())
	if err != nil {
		return err
	}
	for i := range es {
		es[i].Password = nil
	}
	if es == nil {
		es = []store.Enclosure{}
	}
	writeJSON(w, http.StatusOK, wire.Enclosures{Enclosures: es})
	return nil
}

func (a *API) getEnclosure(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	e, err := a.st.Enclosure(r.Context(), r.PathValue("name"))
	if err != nil {
		return enclosureErr(r, err)
	}
	e.Password = nil
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (a *API) addEnclosure(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	var in manager.EnclosureInput
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	if in.Name == "" {
		return invalid("name", "required")
	}
	e, err := a.m.AddEnclosure(r.Context(), actor, in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/enclosures/"+url.PathEscape(e.Name))
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func (a *API) patchEnclosure(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	var in manager.EnclosureInput
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	name := r.PathValue("name")
	if in.Name != "" && in.Name != name {
		return invalid("name", "an enclosure cannot be renamed")
	}
	e, err := a.m.UpdateEnclosure(r.Context(), actor, name, in)
	if err != nil {
		return enclosureErr(r, err)
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (a *API) deleteEnclosure(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	if err := a.m.DeleteEnclosure(r.Context(), actor, r.PathValue("name")); err != nil {
		return enclosureErr(r, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- inventory ---

// maxIPMIPassword is the longest IPMI 2.0 password (RAKP key, 20 bytes).
const maxIPMIPassword = 20

func (a *API) importInventory(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	var in wire.ImportRequest
	if err := decode(w, r, MaxImportBody, &in); err != nil {
		return err
	}
	var format inventory.Format
	switch strings.ToLower(in.Format) {
	case "yaml", "yml":
		format = inventory.YAML
	case "csv":
		format = inventory.CSV
	case "":
		return invalid("format", "required: yaml or csv")
	default:
		return invalid("format", "%q: want yaml or csv", in.Format)
	}
	if strings.TrimSpace(in.Content) == "" {
		return invalid("content", "required: the inventory file's text")
	}
	if in.Source != "" {
		if reason := inventory.CheckText(in.Source); reason != "" {
			return invalid("source", "%s", reason)
		}
	}
	inv, err := inventory.Parse(strings.NewReader(in.Content), format, in.Source)
	if err != nil {
		return err
	}
	if len(inv.Machines) == 0 && len(inv.Enclosures) == 0 {
		return invalid("content", "the inventory holds no machine and no enclosure")
	}
	// Every machine needs its password; a password for a name the file
	// does not hold is a typo worth refusing.
	var probs inventory.Errors
	pw := make(map[string][]byte, len(in.Passwords))
	names := map[string]bool{}
	for _, m := range inv.Machines {
		names[m.Name] = true
		p, ok := in.Passwords[m.Name]
		switch {
		case !ok || p == "":
			probs = append(probs, &inventory.FieldError{Source: in.Source, Line: m.Line, Machine: m.Name, Field: "password",
				Reason: "no password given for this machine (passwords." + m.Name + ")"})
		case m.EffectiveProtocol() == inventory.ProtocolIPMI && len(p) > maxIPMIPassword:
			probs = append(probs, &inventory.FieldError{Source: in.Source, Line: m.Line, Machine: m.Name, Field: "password",
				Reason: fmt.Sprintf("is %d bytes; IPMI 2.0 passwords are at most %d", len(p), maxIPMIPassword)})
		default:
			pw[m.Name] = []byte(p)
		}
	}
	for name := range in.Passwords {
		if !names[name] {
			probs = append(probs, &inventory.FieldError{Source: in.Source, Field: "passwords",
				Reason: fmt.Sprintf("a password is given for %q, which the inventory does not hold", name)})
		}
	}
	epw := make(map[string][]byte, len(in.EnclosurePasswords))
	encNames := map[string]bool{}
	for _, e := range inv.Enclosures {
		encNames[e.Name] = true
		p, ok := in.EnclosurePasswords[e.Name]
		switch {
		case (!ok || p == "") && (e.PasswordFile != "" || e.PasswordEnv != ""):
			probs = append(probs, &inventory.FieldError{Source: in.Source, Line: e.Line, Enclosure: e.Name, Field: "password",
				Reason: "no password given for this enclosure (enclosure_passwords." + e.Name + ")"})
		case len(p) > maxIPMIPassword:
			probs = append(probs, &inventory.FieldError{Source: in.Source, Line: e.Line, Enclosure: e.Name, Field: "password",
				Reason: fmt.Sprintf("is %d bytes; IPMI 2.0 passwords are at most %d", len(p), maxIPMIPassword)})
		case ok:
			epw[e.Name] = []byte(p)
		}
	}
	for name := range in.EnclosurePasswords {
		if !encNames[name] {
			probs = append(probs, &inventory.FieldError{Source: in.Source, Field: "enclosure_passwords",
				Reason: fmt.Sprintf("a password is given for enclosure %q, which the inventory does not hold", name)})
		}
	}
	if len(probs) > 0 {
		sortProblems(probs)
		return probs
	}
	n, err := a.m.Import(r.Context(), actor, inv, pw, epw, in.Replace)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.ImportResponse{Machines: n, Enclosures: len(inv.Enclosures)})
	return nil
}

func sortProblems(es inventory.Errors) {
	// Insertion sort by line, stable (problems are few).
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].Line < es[j-1].Line; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

func (a *API) export(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	q, err := params(r, "format")
	if err != nil {
		return err
	}
	format, ctype, ext := inventory.YAML, "application/yaml", "yaml"
	switch strings.ToLower(q.Get("format")) {
	case "", "yaml", "yml":
	case "csv":
		format, ctype, ext = inventory.CSV, "text/csv", "csv"
	default:
		return invalid("format", "%q: want yaml or csv", q.Get("format"))
	}
	inv, err := a.m.Export(r.Context())
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := inventory.Write(&buf, format, inv); err != nil {
		return err
	}
	w.Header().Set("Content-Type", ctype+"; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="fleet.`+ext+`"`)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// --- operations ---

func (a *API) check(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	if done, err := a.forwarded(w, r, actor, fwdCheck, a.check); done {
		return err
	}
	var in wire.CheckRequest
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	res, err := a.m.CheckNow(r.Context(), actor, in.Machines, in.Group)
	if err != nil {
		return err
	}
	if res == nil {
		res = []manager.CheckResult{}
	}
	writeJSON(w, http.StatusOK, wire.CheckResponse{Results: res})
	return nil
}

// MaxInterval bounds the rest between two batches of a bulk operation.
const MaxInterval = time.Hour

func stagger(batch int, interval string) (power.Stagger, error) {
	var s power.Stagger
	if batch < 0 {
		return s, invalid("batch", "%d: must be 0 (all at once) or more", batch)
	}
	s.Batch = batch
	if interval != "" {
		d, err := time.ParseDuration(interval)
		if err != nil || d < 0 || d > MaxInterval {
			return s, invalid("interval", "%q is not a duration from 0s to %v (e.g. \"10s\")", interval, MaxInterval)
		}
		if d > 0 && batch == 0 {
			return s, invalid("interval", "an interval needs a batch size: set batch to how many machines run at once")
		}
		s.Interval = d
	}
	return s, nil
}

// MinAgentFallback is the shortest agent_fallback the API accepts (the
// longest is manager.MaxAgentFallback).
const MinAgentFallback = time.Second

func (a *API) power(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	if done, err := a.forwarded(w, r, actor, fwdPower, a.power); done {
		return err
	}
	var in wire.PowerRequest
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	if in.Action == "" {
		return invalid("action", "required: one of %s", actionNames())
	}
	act, err := power.ParseAction(in.Action)
	if err != nil {
		return invalid("action", "%q: want one of %s", in.Action, actionNames())
	}
	s, err := stagger(in.Batch, in.Interval)
	if err != nil {
		return err
	}
	req := manager.PowerRequest{Action: act, Machines: in.Machines, Group: in.Group, Stagger: s}
	if in.AgentFallback != "" {
		d, err := time.ParseDuration(in.AgentFallback)
		if err != nil || d < MinAgentFallback || d > manager.MaxAgentFallback {
			return invalid("agent_fallback", "%q is not a duration from %v to %v (e.g. \"2m\")", in.AgentFallback, MinAgentFallback, manager.MaxAgentFallback)
		}
		if act != power.SoftOff {
			return invalid("agent_fallback", "only with action soft, not %q", act)
		}
		req.AgentFallback = d
	}
	return a.stream(w, r, func(progress func(power.Result)) error {
		_, err := a.m.Power(r.Context(), actor, req, progress)
		return err
	})
}

func actionNames() string {
	names := make([]string, len(power.Actions))
	for i, x := range power.Actions {
		names[i] = string(x)
	}
	return strings.Join(names, ", ")
}

func (a *API) allocate(w http.ResponseWriter, r *http.Request, actor manager.Actor) error {
	var in wire.AllocateRequest
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	if in.Group == "" {
		return invalid("group", "required: the group the machines join")
	}
	if len(in.Machines) == 0 {
		return invalid("machines", "required: name at least one machine")
	}
	s, err := stagger(in.Batch, in.Interval)
	if err != nil {
		return err
	}
	return a.stream(w, r, func(progress func(power.Result)) error {
		_, err := a.m.Allocate(r.Context(), actor, in.Group, in.Machines, s, progress)
		return err
	})
}

// stream runs a bulk operation and writes its results as NDJSON, one line
// per machine as it completes (flushed), then the summary. Errors before
// the first result (validation, role) are ordinary error replies.
func (a *API) stream(w http.ResponseWriter, r *http.Request, run func(progress func(power.Result)) error) error {
	st := newNDJSON(w)
	var sum wire.PowerSummary
	err := run(func(res power.Result) {
		sum.Add(res)
		st.line(wire.PowerLine{Result: &res})
	})
	return a.endStream(st, r, "bulk operation", err, wire.PowerLine{Summary: &sum})
}

// --- events, audit ---

func (a *API) events(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	q, err := params(r, "since", "code", "source", "severity", "limit")
	if err != nil {
		return err
	}
	f, err := eventFilter(q)
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", 1, 10000)
	if err != nil {
		return err
	}
	f.Limit = int(limit)
	es, err := a.st.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	if es == nil {
		es = []store.Event{}
	}
	writeJSON(w, http.StatusOK, wire.Events{Events: es})
	return nil
}

func (a *API) auditLog(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	q, err := params(r, "target", "limit")
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", 1, 10000)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = 100
	}
	es, err := a.st.AuditLog(r.Context(), q.Get("target"), int(limit))
	if err != nil {
		return err
	}
	if es == nil {
		es = []store.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, wire.Audit{Entries: es})
	return nil
}

// --- tokens ---

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, _ manager.Actor) error {
	ts, err := a.st.Tokens(r.Context())
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []store.Token{}
	}
	writeJSON(w, http.StatusOK, wire.Tokens{Tokens: ts})
	return nil
}

// ValidTokenName reports whether s may name a token: 1-64 letters, digits,
// '.', '_' or '-', starting with a letter or digit.
func ValidTokenName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, actor manager.Actor) (err error) {
	var in wire.TokenRequest
	if err := decode(w, r, MaxBody, &in); err != nil {
		return err
	}
	if in.Name == "" {
		return invalid("name", "required")
	}
	if !ValidTokenName(in.Name) {
		return invalid("name", "%q: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", in.Name)
	}
	if in.Role.Rank() == 0 {
		return invalid("role", "%q: want viewer, operator or admin", in.Role)
	}
	defer func() { a.audit(r, actor, "token.create", in.Name, "role "+string(in.Role), err) }()
	secret, err := manager.CreateToken(r.Context(), a.st, in.Name, in.Role, "")
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return &apiError{status: http.StatusConflict, code: wire.CodeConflict, field: "name",
				msg: fmt.Sprintf("name: a token named %q already exists (names stay taken after a revocation)", in.Name)}
		}
		return err
	}
	tok, err := a.st.TokenByHash(r.Context(), manager.HashToken(secret))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/tokens/"+url.PathEscape(in.Name))
	writeJSON(w, http.StatusCreated, wire.TokenResponse{Token: tok, Secret: secret})
	return nil
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, actor manager.Actor) (err error) {
	name := r.PathValue("name")
	defer func() { a.audit(r, actor, "token.revoke", name, "", err) }()
	if err := a.st.RevokeToken(r.Context(), name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("name", "no token named %q", name)
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// audit records an operation the API performs itself (tokens), like the
// manager does for its own.
func (a *API) audit(r *http.Request, actor manager.Actor, action, target, detail string, err error) {
	e := store.AuditEntry{At: time.Now(), Actor: actor.Name, Action: action, Target: target, Detail: detail, Result: "ok"}
	if err != nil {
		e.Result, e.Error = "failed", err.Error()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if aerr := a.st.Audit(ctx, &e); aerr != nil {
		a.log.Error("audit", "action", action, "target", target, "err", aerr)
	}
	a.ops.WithLabelValues(e.Action, e.Result).Inc()
}
