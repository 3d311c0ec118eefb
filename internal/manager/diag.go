package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/diag/gather"
	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// DiagConfig tunes the diagnosis. Zero fields take the defaults.
type DiagConfig struct {
	// Schedule's AuthRetry is the lockout guard (the monitor's schedule).
	Schedule state.Schedule
	// Timeout is the silence limit of each step (the monitor's).
	Timeout time.Duration
	// Parallel bounds the channels diagnosed at once (default 32).
	Parallel int
	// BusyAttempts and BusyWait: logins tried for a session slot.
	BusyAttempts int
	BusyWait     time.Duration
	// Rates and Fleet replace the executor's own measurements for the
	// Degraded tree (internal/events can provide them).
	Rates gather.RateSource
	Fleet gather.FleetSource
	// Probers check a channel by protocol (the monitor's; the server sets
	// them). Nil: IPMI through the engine, Redfish through the manager's
	// Redfish transport with the store's certificate pins.
	Probers probe.Registry
}

// DiagRequest selects the machines to diagnose and what may be changed.
type DiagRequest struct {
	Machines []string `json:"machines,omitempty"`
	Group    string   `json:"group,omitempty"`
	All      bool     `json:"all,omitempty"`
	// Autocorrect applies the safe, reversible fixes (operator).
	Autocorrect bool `json:"autocorrect,omitempty"`
	// Adopt also re-pins the System GUID of a machine whose motherboard
	// was evidently replaced (admin).
	Adopt bool `json:"adopt,omitempty"`
}

// DiagResult is one channel's diagnosis and what autocorrect did.
type DiagResult struct {
	Machine    string            `json:"machine"`
	AccountID  int64             `json:"account_id,omitempty"`
	Address    string            `json:"address,omitempty"`
	State      state.OOB         `json:"state,omitempty"`
	Reason     state.Reason      `json:"reason,omitempty"`
	Conditions []state.Condition `json:"conditions,omitempty"`
	Diagnosis  diag.Diagnosis    `json:"diagnosis"`
	// Steps are the facts gathered beyond the check, in order.
	Steps []diag.Need `json:"steps,omitempty"`
	// Sessions is the session census the diagnosis read (IPMI session
	// table or Redfish SessionService; nil: its tree did not ask).
	Sessions *diag.SessionsFacts `json:"sessions,omitempty"`
	// Changes are the fixes applied (or skipped), in order.
	Changes []Change `json:"changes,omitempty"`
	// After is the channel's state after the fixes, re-checked.
	After *store.ChannelState `json:"after,omitempty"`
	// Healthy: the channel works (nothing to fix). Corrected: fixes were
	// applied and the channel is Connectable now.
	Healthy   bool   `json:"healthy"`
	Corrected bool   `json:"corrected"`
	Error     string `json:"error,omitempty"`
}

// Change is one fix autocorrect applied.
type Change struct {
	Kind diag.ActionKind `json:"kind"`
	// Line says it: "changed X from A to B because E".
	Line   string `json:"line"`
	Result string `json:"result"` // ok | failed | skipped
	Error  string `json:"error,omitempty"`
}

// DiagSummary counts a diagnosis run's outcomes.
type DiagSummary struct {
	Diagnosed int `json:"diagnosed"`
	Healthy   int `json:"healthy"`
	Corrected int `json:"corrected"`
	Failing   int `json:"failing"`
}

// Add counts r.
func (s *DiagSummary) Add(r DiagResult) {
	s.Diagnosed++
	switch {
	case r.Corrected:
		s.Corrected++
	case r.Healthy && r.Error == "":
		s.Healthy++
	default:
		s.Failing++
	}
}

// addressSwapper is the store's transactional address swap.
type addressSwapper interface {
	SwapAccountAddresses(ctx context.Context, a, b int64, atA, atB store.Endpoint) error
}

func (m *Manager) executor() *gather.Executor {
	c := m.Diag
	probers := c.Probers
	// A Redfish BMC's session census goes over the same transport, to the
	// certificate pinned for it only.
	var rp *probe.RedfishProber
	if m.Redfish != nil {
		rp = probe.NewRedfishProber(m.Redfish, m.Store)
	}
	if probers == nil {
		var rf probe.Prober
		if rp != nil {
			rf = rp.Check
		}
		probers = probe.NewRegistry(m.Engine, rf)
	}
	x := &gather.Executor{Store: m.Store, Engine: m.Engine, Probers: probers, Current: m.Monitor.Get, Guard: m.Monitor.AuthGuard, Schedule: c.Schedule,
		Timeout: c.Timeout, Rates: c.Rates, Fleet: c.Fleet, BusyAttempts: c.BusyAttempts, BusyWait: c.BusyWait,
		Instances: m.Instances, Self: m.Self}
	if rp != nil {
		x.RedfishCensus = rp.Census
		x.RedfishClose = rp.CloseSessions
		x.RedfishTransport, x.EMPins = m.Redfish, &m.emPins
	}
	if m.Security != nil {
		x.Security = func(accountID int64) []diag.SecurityFinding {
			var out []diag.SecurityFinding
			for _, f := range m.Security.Findings(accountID) {
				out = append(out, diag.SecurityFinding{Code: string(f.Code), Subject: f.Subject, Message: f.Message, Remedy: f.Remedy, Source: "audit"})
			}
			return out
		}
	}
	return x
}

// Diagnose diagnoses the machines' OOB channels (operator: it sends
// packets, and may light an identify lamp through an enclosure manager),
// calling progress with each result as it completes. With Autocorrect it
// applies the safe fixes (operator), with Adopt it also re-pins a replaced
// motherboard's GUID (admin); every fix is audited.
func (m *Manager) Diagnose(ctx context.Context, actor Actor, req DiagRequest, progress func(DiagResult)) ([]DiagResult, error) {
	if err := m.require(actor, store.RoleOperator, "diagnosis"); err != nil {
		return nil, err
	}
	if req.Adopt {
		if err := m.require(actor, store.RoleAdmin, "diagnosis with adopt (re-pinning a System GUID)"); err != nil {
			return nil, err
		}
	}
	var ms []store.Machine
	var err error
	if req.All {
		if len(req.Machines) > 0 || req.Group != "" {
			return nil, fieldErr("all", "all diagnoses every machine: give no machines and no group with it")
		}
		if ms, err = m.Store.Machines(ctx, store.MachineFilter{}, store.Page{}); err != nil {
			return nil, err
		}
	} else if ms, err = m.resolve(ctx, req.Machines, req.Group); err != nil {
		if fe := (*store.FieldError)(nil); errors.As(err, &fe) && fe.Field == "machines" && len(req.Machines) == 0 {
			return nil, fieldErr("machines", "name at least one machine, a group, or all")
		}
		return nil, err
	}

	type job struct {
		mc   store.Machine
		acct *store.Account
	}
	var jobs []job
	for _, mc := range ms {
		accts, err := m.Store.AccountsOf(ctx, mc.ID)
		if err != nil {
			return nil, err
		}
		if len(accts) == 0 {
			jobs = append(jobs, job{mc: mc})
		}
		for i := range accts {
			jobs = append(jobs, job{mc: mc, acct: &accts[i]})
		}
	}
	par := m.Diag.Parallel
	if par <= 0 {
		par = 32
	}
	x := m.executor()
	run := &diagRun{m: m, actor: actor, req: req, x: x, changed: map[int64]fixed{}}
	out := make([]DiagResult, len(jobs))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var pmu sync.Mutex
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = DiagResult{Machine: j.mc.Name, Error: ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			if j.acct == nil {
				out[i] = DiagResult{Machine: j.mc.Name, Error: "no OOB account: add one (lightsout accounts add)"}
			} else {
				out[i] = run.one(ctx, j.mc, *j.acct)
			}
			if progress != nil {
				pmu.Lock()
				progress(out[i])
				pmu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// diagRun is one Diagnose call: its fixes must not undo each other (two
// swapped machines both propose the same swap).
type diagRun struct {
	m     *Manager
	actor Actor
	req   DiagRequest
	x     *gather.Executor

	mu      sync.Mutex
	changed map[int64]fixed // account ID → the fix applied to it in this run
}

// fixed is a fix applied in a run, for which machine's diagnosis; done is
// closed once it is applied (or failed).
type fixed struct {
	machine, line string
	done          chan struct{}
}

func (r *diagRun) one(ctx context.Context, mc store.Machine, a store.Account) DiagResult {
	res := DiagResult{Machine: mc.Name, AccountID: a.ID, Address: hostPort(a.Address, a.Port)}
	if !r.x.Supports(a.Protocol) {
		res.Error = fmt.Sprintf("diagnosis over %s is not supported", a.Protocol)
		return res
	}
	rep := r.x.Run(ctx, mc, a)
	res.State, res.Reason, res.Conditions = rep.Facts.State, rep.Facts.Reason, rep.Facts.Conditions
	res.Diagnosis, res.Steps, res.Sessions = rep.Diagnosis, rep.Steps, rep.Facts.Sessions
	res.Healthy = rep.Diagnosis.Healthy()
	if rep.Facts.Identify != nil && rep.Facts.Blade != nil {
		r.m.audit(ctx, r.actor, "diag.identify", mc.Name,
			fmt.Sprintf("lit the identify lamp of slot %d through enclosure %s's manager, read it back (lit: %v) and restored it",
				rep.Facts.Blade.Slot, rep.Facts.Blade.Enclosure, rep.Facts.Identify.Lit), errIf(rep.Facts.Identify.Err))
	}
	applied := false
	for _, act := range rep.Diagnosis.Actions {
		if act.Kind == diag.ActAdopt && !r.req.Adopt || act.Kind != diag.ActAdopt && !r.req.Autocorrect {
			continue
		}
		ch := r.apply(ctx, mc, a, act)
		res.Changes = append(res.Changes, ch)
		applied = applied || ch.Result == "ok"
	}
	// A fix made for another machine's diagnosis in this run (the other
	// half of a swap) changed this channel under its diagnosis: diagnose
	// it again as it is now.
	if f, ok := r.fixedElsewhere(a.ID, mc.Name); ok && !applied {
		select {
		case <-f.done:
		case <-ctx.Done():
		}
		if cur, err := r.m.Store.Account(ctx, a.ID); err == nil {
			a = cur
		}
		rep = r.x.Run(ctx, mc, a)
		res.Address = hostPort(a.Address, a.Port)
		res.State, res.Reason, res.Conditions = rep.Facts.State, rep.Facts.Reason, rep.Facts.Conditions
		res.Diagnosis, res.Steps, res.Healthy, res.Sessions = rep.Diagnosis, rep.Steps, rep.Diagnosis.Healthy(), rep.Facts.Sessions
		res.Diagnosis.Evidence = append([]string{"fixed in this run for " + f.machine + ": " + f.line}, res.Diagnosis.Evidence...)
		res.Corrected = res.Healthy
		res.Changes = nil // the fix it proposed is the one applied for the other machine
		applied = false
	}
	if applied {
		// A fresh check says whether the fixes worked (the monitor's
		// declared state may wait for a confirming check).
		if cur, err := r.m.Store.Account(ctx, a.ID); err == nil {
			a = cur
		}
		if m, err := r.m.Store.MachineByID(ctx, a.MachineID); err == nil {
			mc = m
		}
		o := r.x.Check(ctx, mc, a)
		res.After = &store.ChannelState{AccountID: a.ID, State: o.State, Reason: o.Reason, Conditions: o.Conditions,
			Message: o.Message, CheckedAt: o.At, GUID: o.GUID, Power: o.Evidence.Power}
		res.Corrected = o.State == state.Connectable && !hasCond(o.Conditions, state.Busy)
	}
	return res
}

func hasCond(cs []state.Condition, c state.Condition) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func errIf(s string) error {
	if s == "" {
		return nil
	}
	return errors.New(s)
}

// claim marks accounts as changed by a fix for machine in this run, unless
// one already was (then it returns what was done to it). release must be
// called once the fix is applied.
func (r *diagRun) claim(machine, line string, ids ...int64) (prev string, release func(), ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if p, ok := r.changed[id]; ok {
			return p.line, nil, false
		}
	}
	f := fixed{machine, line, make(chan struct{})}
	for _, id := range ids {
		r.changed[id] = f
	}
	return "", func() { close(f.done) }, true
}

// fixedElsewhere returns the fix another machine's diagnosis applied to
// account id in this run.
func (r *diagRun) fixedElsewhere(id int64, machine string) (fixed, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.changed[id]
	return f, ok && f.machine != machine
}

// apply runs one fix, audits it and re-checks the channels it touched.
func (r *diagRun) apply(ctx context.Context, mc store.Machine, a store.Account, act diag.Action) (ch Change) {
	ch = Change{Kind: act.Kind, Line: act.Line(), Result: "ok"}
	action := "diag." + string(act.Kind)
	targets := []string{mc.Name}
	var err error
	defer func() {
		if ch.Result == "skipped" {
			return
		}
		if err != nil {
			ch.Result, ch.Error = "failed", err.Error()
		}
		for _, t := range targets {
			r.m.audit(ctx, r.actor, action, t, ch.Line, err)
		}
	}()
	recheck := func(ids ...int64) {
		for _, id := range ids {
			_ = r.m.Monitor.Refresh(ctx, id)
		}
		_, _ = r.m.Monitor.CheckNow(ctx, ids)
	}
	switch act.Kind {
	case diag.ActSwapAddresses:
		other, oerr := r.m.Store.Account(ctx, act.OtherAccountID)
		if oerr != nil {
			err = oerr
			return ch
		}
		// The swap moves passwords: only between the two endpoints the
		// diagnosis just verified, for the account it diagnosed.
		if act.AccountID != a.ID || act.At == (store.Endpoint{}) || act.OtherAt == (store.Endpoint{}) {
			err = errors.New("refused: the swap does not name the two endpoints the diagnosis verified")
			return ch
		}
		// … and only between the two machines whose GUIDs answered
		// there: the other's at this account's address, this one's at
		// the other's.
		if !registeredAs(ctx, r.m.Store, other.MachineID, act.GUIDAt) || !registeredAs(ctx, r.m.Store, a.MachineID, act.GUIDOther) {
			err = fmt.Errorf("refused: %s and %s did not answer with the GUIDs of %s and %s", act.At, act.OtherAt, other.Machine, mc.Name)
			return ch
		}
		targets = append(targets, other.Machine)
		prev, release, ok := r.claim(mc.Name, ch.Line, a.ID, other.ID)
		if !ok {
			ch.Result, ch.Error = "skipped", "already fixed in this run: "+prev
			return ch
		}
		defer release()
		sw, ok := r.m.Store.(addressSwapper)
		if !ok {
			err = errors.New("this store cannot swap addresses in one transaction")
			return ch
		}
		r.m.Monitor.BeginEdit(a.ID)
		r.m.Monitor.BeginEdit(other.ID)
		if err = sw.SwapAccountAddresses(ctx, a.ID, other.ID, act.At, act.OtherAt); err != nil {
			r.m.Monitor.EndEdit(a.ID)
			r.m.Monitor.EndEdit(other.ID)
			return ch
		}
		recheck(a.ID, other.ID)
	case diag.ActCipherSuite:
		prev, release, ok := r.claim(mc.Name, ch.Line, a.ID)
		if !ok {
			ch.Result, ch.Error = "skipped", "already fixed in this run: "+prev
			return ch
		}
		defer release()
		cur, cerr := r.m.Store.Account(ctx, a.ID)
		if cerr != nil {
			err = cerr
			return ch
		}
		cur.CipherSuite = act.Suite
		r.m.Monitor.BeginEdit(a.ID)
		if err = r.m.Store.UpdateAccount(ctx, &cur); err != nil {
			r.m.Monitor.EndEdit(a.ID)
			return ch
		}
		recheck(a.ID)
	case diag.ActCloseSessions:
		var n int
		want := len(act.Handles)
		if len(act.Sessions) > 0 { // Redfish: DELETE of the session URIs
			want = len(act.Sessions)
			n, err = r.x.CloseRedfishSessions(ctx, mc, a, act.Sessions)
		} else {
			n, err = r.x.CloseSessions(ctx, mc, a, act.Handles)
		}
		if n < want && err == nil {
			err = fmt.Errorf("closed %d of %d sessions", n, want)
		}
		recheck(a.ID)
	case diag.ActRecheck:
		before := string(state.NotAuthenticated)
		if cs, ok := r.m.Monitor.Get(a.ID); ok {
			before = string(cs.State)
		}
		// The monitor reloads the account first: its copy may predate the
		// edit (and its lockout guard would then skip the check).
		_ = r.m.Monitor.Refresh(ctx, a.ID)
		res, cerr := r.m.Monitor.CheckNow(ctx, []int64{a.ID})
		if cerr != nil {
			err = cerr
			return ch
		}
		act.From, act.To = before, string(res[0].State.State)
		if res[0].Skipped != "" {
			act.To = before + " (not re-checked: " + res[0].Skipped + ")"
		}
		ch.Line = act.Line()
	case diag.ActAdopt:
		action = "diag.adopt"
		err = r.m.Adopt(ctx, r.actor, mc.Name, act.GUID)
	default:
		err = fmt.Errorf("unknown fix %q", act.Kind)
	}
	return ch
}

// registeredAs reports whether machine id is registered with the System
// GUID seen (in any layout).
func registeredAs(ctx context.Context, st store.Store, id int64, seen string) bool {
	mc, err := st.MachineByID(ctx, id)
	if err != nil || mc.GUID == "" || seen == "" {
		return false
	}
	reg, err1 := guid.Parse(mc.GUID)
	got, err2 := guid.Parse(seen)
	return err1 == nil && err2 == nil && (reg.Matches(got) || got.Matches(reg))
}

func hostPort(addr string, port int) string {
	if strings.Contains(addr, ":") {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}
