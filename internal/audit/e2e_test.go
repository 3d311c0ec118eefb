package audit_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/audit"
	"github.com/lightsout/lightsout/internal/poll"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func codesOf(fs []audit.Finding) []audit.Code {
	var out []audit.Code
	for _, f := range fs {
		if !slices.Contains(out, f.Code) {
			out = append(out, f.Code)
		}
	}
	return out
}

// TestSecurityAuditEndToEnd runs a real server (real UDP, simulated fleet,
// API tokens) with the daily audit: each fault yields exactly its finding,
// a sound BMC none, the views merge the findings into Insecure, a fault
// enabled later is drift, a refused channel is never audited, no BMC is
// audited twice within the period or sees two sessions of ours at once.
func TestSecurityAuditEndToEnd(t *testing.T) {
	e := apitest.Start(t, apitest.Options{Subnet: 97,
		Fleet: sim.Config{Count: 8, Seed: 41, Faults: map[string]sim.Faults{
			"bmc-00002": {Cipher0: true},
			"bmc-00003": {Anonymous: true},
			"bmc-00004": {WeakAuth: true},
			"bmc-00005": {DefaultPassword: true},
			"bmc-00006": {WrongPassword: true},
		}},
		Configure: func(c *server.Config) {
			c.Audit = audit.Config{Every: 24 * time.Hour, FirstSpread: 300 * time.Millisecond, Tick: 50 * time.Millisecond,
				OnDemandGap: 700 * time.Millisecond}
		}})
	e.ImportFleet(t)
	adm, op, view := e.Client(t, store.RoleAdmin), e.Client(t, store.RoleOperator), e.Client(t, store.RoleViewer)
	want := map[string][]audit.Code{
		"bmc-00001": nil,
		"bmc-00002": {audit.Cipher0Enabled},
		"bmc-00003": {audit.AnonymousLogin},
		"bmc-00004": {audit.WeakAuth},
		"bmc-00005": {audit.DefaultPassword},
		"bmc-00007": nil,
		"bmc-00008": nil,
	}
	refused := "bmc-00006"
	refusedAttempts := func() uint64 { b, _ := e.Fleet.BMC(refused); return b.Counters().AuthAttempts }

	// The scheduled first audits, spread over 300 ms after each channel
	// is first seen Connectable.
	var views map[string]audit.View
	poll.Until(t, 15*time.Second, "every Connectable BMC audited", func() bool {
		vs, err := view.SecurityReports(ctxT(t), nil, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		views = map[string]audit.View{}
		done := 0
		for _, v := range vs {
			views[v.Machine] = v
			if v.Status != audit.StatusNotAudited {
				done++
			}
		}
		return done == len(want)
	})
	for name, codes := range want {
		v := views[name]
		if got := codesOf(v.Findings); !slices.Equal(got, codes) {
			t.Errorf("%s: findings %v, want %v", name, audit.Keys(v.Findings), codes)
		}
		wantStatus := audit.StatusClean
		if len(codes) > 0 {
			wantStatus = audit.StatusInsecure
		}
		if v.Status != wantStatus || v.AuditedAt == nil || v.NextAt == nil || v.NextAt.Sub(*v.AuditedAt) < 24*time.Hour || len(v.Report) == 0 {
			t.Errorf("%s: status %s audited %v next %v report %d bytes", name, v.Status, v.AuditedAt, v.NextAt, len(v.Report))
		}
	}
	t.Run("RefusedChannelNotAudited", func(t *testing.T) {
		v := views[refused]
		if v.Status != audit.StatusNotAudited || v.AttemptedAt != nil {
			t.Errorf("%s (NotAuthenticated) was audited: %+v", refused, v)
		}
		before := refusedAttempts()
		res, err := op.AuditSecurity(ctxT(t), []string{refused}, "")
		if err != nil || len(res) != 1 || res[0].Report != nil || !strings.Contains(res[0].Skipped, "NotAuthenticated") {
			t.Fatalf("on-demand audit of a refused channel: %+v %v", res, err)
		}
		if n := refusedAttempts(); n != before {
			t.Errorf("the refused BMC saw %d more login attempts", n-before)
		}
	})

	t.Run("ViewsMergeInsecure", func(t *testing.T) {
		// default_password is invisible to the monitor's capabilities
		// check: only the merged audit finding makes the channel Insecure.
		for name, codes := range want {
			mv, err := view.Machine(ctxT(t), name)
			if err != nil {
				t.Fatal(err)
			}
			ch := mv.Channels[0]
			insecure := slices.Contains(ch.State.Conditions, state.Insecure)
			if insecure != (len(codes) > 0) || len(ch.Security) != len(views[name].Findings) {
				t.Errorf("%s: conditions %v, %d security findings; want Insecure %v", name, ch.State.Conditions, len(ch.Security), len(codes) > 0)
			}
		}
		m, err := view.Metrics(ctxT(t))
		if err != nil || !strings.Contains(m, `lightsout_security_findings{code="cipher0_enabled"} 1`) ||
			!strings.Contains(m, `lightsout_security_findings{code="default_password"} 1`) || !strings.Contains(m, "lightsout_security_audits_total 7") {
			t.Errorf("metrics: %v\n%s", err, m)
		}
		evs, err := view.Events(ctxT(t), time.Time{}, "audit.default_password", 10)
		if err != nil || len(evs) != 1 || evs[0].Source != "bmc-00005" || evs[0].Severity != store.SeverityCritical {
			t.Errorf("audit.default_password events: %+v %v", evs, err)
		}
	})

	t.Run("NeverTwiceInThePeriod", func(t *testing.T) {
		// Audits log in as users that must be refused; the monitor's own
		// checks of these BMCs never fail. So a BMC's auth failures only
		// move when it is audited.
		failures := map[string]uint64{}
		for name := range want {
			b, _ := e.Fleet.BMC(name)
			failures[name] = b.Counters().AuthFailures
		}
		runs := e.Server.Audit.Runs()
		// A monitor interval (and with it dozens of scheduler ticks): the
		// monitor checks every one of these BMCs again.
		checked := map[string]time.Time{}
		for name := range want {
			checked[name] = checkedAt(t, view, name)
		}
		poll.Until(t, 10*time.Second, "the monitor checks every audited BMC again", func() bool {
			for name, at := range checked {
				if checkedAt(t, view, name).Equal(at) {
					return false
				}
			}
			return true
		})
		if n := e.Server.Audit.Runs(); n != runs {
			t.Errorf("%d more audits ran within the 24h period", n-runs)
		}
		vs, err := view.SecurityReports(ctxT(t), nil, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if old, ok := views[v.Machine]; ok && old.AttemptedAt != nil && !v.AttemptedAt.Equal(*old.AttemptedAt) {
				t.Errorf("%s audited again at %v", v.Machine, v.AttemptedAt)
			}
		}
		for name, n := range failures {
			b, _ := e.Fleet.BMC(name)
			if c := b.Counters().AuthFailures; c != n {
				t.Errorf("%s: %d more refused logins without an audit", name, c-n)
			}
		}
	})

	t.Run("DriftOnDemand", func(t *testing.T) {
		if err := e.Fleet.SetFaults("bmc-00007", sim.Faults{Cipher0: true}); err != nil {
			t.Fatal(err)
		}
		var ce *client.Error
		if _, err := view.AuditSecurity(ctxT(t), []string{"bmc-00007"}, ""); !errors.As(err, &ce) || ce.Status != 403 {
			t.Errorf("viewer POST /audit/security: %v", err)
		}
		if _, err := op.AuditSecurity(ctxT(t), []string{"no-such"}, ""); !errors.As(err, &ce) || ce.Status != 404 || ce.Field != "machines" {
			t.Errorf("unknown machine: %v", err)
		}
		poll.Until(t, 5*time.Second, "the on-demand gap since the scheduled audit passes", func() bool {
			return time.Since(*views["bmc-00007"].AttemptedAt) > e.Server.Audit.Config().OnDemandGap
		})
		res, err := op.AuditSecurity(ctxT(t), []string{"bmc-00007"}, "")
		if err != nil || len(res) != 1 || res[0].Report == nil || res[0].Drift == nil {
			t.Fatalf("audit now: %+v %v", res, err)
		}
		if got := audit.Keys(res[0].Drift.Added); !slices.Equal(got, []string{"cipher0_enabled"}) || len(res[0].Drift.Removed) != 0 {
			t.Errorf("drift %+v", res[0].Drift)
		}
		evs, err := view.Events(ctxT(t), time.Time{}, "audit.drift", 10)
		if err != nil || len(evs) != 1 || evs[0].Source != "bmc-00007" || !strings.Contains(evs[0].Message, "added cipher0_enabled") {
			t.Errorf("audit.drift events: %+v %v", evs, err)
		}
		evs, err = view.Events(ctxT(t), time.Time{}, "audit.cipher0_enabled", 10)
		if err != nil || len(evs) != 2 {
			t.Errorf("audit.cipher0_enabled events (bmc-00002 first audit, bmc-00007 drift): %+v %v", evs, err)
		}
		// At once again: within the on-demand gap.
		res, err = op.AuditSecurity(ctxT(t), []string{"bmc-00007"}, "")
		if err != nil || len(res) != 1 || res[0].Report != nil || !strings.Contains(res[0].Skipped, "ago") {
			t.Errorf("second audit within the gap: %+v %v", res, err)
		}
		vs, err := view.SecurityReports(ctxT(t), []string{"bmc-00007"}, "", 10)
		if err != nil || len(vs) != 1 || vs[0].Status != audit.StatusInsecure || len(vs[0].Changes) != 2 {
			t.Fatalf("history: %+v %v", vs, err)
		}
		entries, err := adm.Audit(ctxT(t), "bmc-00007", 10)
		if err != nil || len(entries) < 2 || entries[0].Action != "security.audit" || entries[0].Result != "refused" ||
			entries[1].Action != "security.audit" || entries[1].Result != "ok" || !strings.Contains(entries[1].Detail, "cipher0_enabled") {
			t.Errorf("audit log: %+v %v", entries, err)
		}
	})

	for _, b := range e.Fleet.BMCs() {
		if c := b.Counters(); c.MaxSessionsPerClient > 1 {
			t.Errorf("%s saw %d sessions of ours at once", b.Name(), c.MaxSessionsPerClient)
		}
	}
}

// checkedAt is when the monitor last checked machine's first channel.
func checkedAt(t *testing.T, c *client.Client, machine string) time.Time {
	t.Helper()
	mv, err := c.Machine(ctxT(t), machine)
	if err != nil || len(mv.Channels) == 0 {
		t.Fatalf("%s: %+v %v", machine, mv, err)
	}
	return mv.Channels[0].State.CheckedAt
}
