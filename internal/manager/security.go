package manager

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/lightsout/lightsout/internal/audit"
	"github.com/lightsout/lightsout/internal/power"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// mergeSecurity makes the latest security audit count toward the
// channel's Insecure condition: the monitor's checks set Insecure from the
// pre-login capabilities only; the audit also knows cipher suite 0, the
// null login and default passwords. The monitor is left alone: the merge
// is in the view.
func (m *Manager) mergeSecurity(v *ChannelView) {
	if m.Security == nil {
		return
	}
	fs := m.Security.Findings(v.Account.ID)
	if len(fs) == 0 {
		return
	}
	v.Security = fs
	if !slices.Contains(v.State.Conditions, state.Insecure) {
		v.State.Conditions = append(slices.Clone(v.State.Conditions), state.Insecure)
	}
}

// securityAccounts resolves names and/or a group to their accounts; with
// neither, every account.
func (m *Manager) securityAccounts(ctx context.Context, names []string, group string) ([]store.Account, error) {
	if len(names) == 0 && group == "" {
		return m.Store.Accounts(ctx, store.MachineFilter{}, store.Page{})
	}
	ms, err := m.resolve(ctx, names, group)
	if err != nil {
		return nil, err
	}
	var out []store.Account
	for _, mc := range ms {
		as, err := m.Store.AccountsOf(ctx, mc.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, as...)
	}
	return out, nil
}

// errNoAudit: the manager was built without an auditor.
var errNoAudit = fmt.Errorf("%w: this server runs no security audit", power.ErrRefused)

// SecurityReports lists the latest security audit of each OOB account of
// the named machines and/or group (every account with neither), with up to
// history changes of findings each.
func (m *Manager) SecurityReports(ctx context.Context, names []string, group string, history int) ([]audit.View, error) {
	if m.Security == nil {
		return nil, errNoAudit
	}
	accts, err := m.securityAccounts(ctx, names, group)
	if err != nil {
		return nil, err
	}
	return m.Security.Views(ctx, accts, history)
}

// AuditSecurity audits the named machines' BMCs (and/or a group's) now
// (operator). Channels that are not Connectable, and BMCs audited within
// the on-demand gap, are skipped with the reason. Each machine's audit is
// in the audit log.
func (m *Manager) AuditSecurity(ctx context.Context, actor Actor, names []string, group string) ([]audit.Result, error) {
	if err := m.require(actor, store.RoleOperator, "a security audit"); err != nil {
		return nil, err
	}
	if m.Security == nil {
		return nil, errNoAudit
	}
	ms, err := m.resolve(ctx, names, group)
	if err != nil {
		return nil, err
	}
	var accts []store.Account
	var out []audit.Result
	for _, mc := range ms {
		as, err := m.Store.AccountsOf(ctx, mc.ID)
		if err != nil {
			return nil, err
		}
		if len(as) == 0 {
			out = append(out, audit.Result{Machine: mc.Name, Skipped: "no OOB account: add one (lightsout accounts add)"})
		}
		accts = append(accts, as...)
	}
	res := m.Security.AuditNow(ctx, accts)
	for _, r := range res {
		var detail string
		var err error
		switch {
		case r.Skipped != "":
			err = fmt.Errorf("%w: not audited: %s", power.ErrRefused, r.Skipped)
		case r.Report != nil && !r.Report.Complete:
			err = fmt.Errorf("incomplete: %s", r.Report.Error)
		case r.Report != nil && len(r.Report.Findings) == 0:
			detail = "clean"
		case r.Report != nil:
			detail = "findings: " + strings.Join(audit.Keys(r.Report.Findings), ", ")
		}
		m.audit(ctx, actor, "security.audit", r.Machine, detail, err)
	}
	return append(out, res...), nil
}
