package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/audit"
)

func newSecurityCmd() *cobra.Command {
	f := &apiFlags{}
	var group string
	var run bool
	var history int
	c := &cobra.Command{
		Use:   "security [NAME...|--group G] [--run] [--history N]",
		Short: "Show (or run) the BMC security audit: cipher 0, anonymous login, weak IPMI 1.5 auth, default passwords",
		Long: `security shows the latest security audit of each machine's BMC (every machine
without names or --group): its findings — cipher suite 0 accepted, anonymous or
null user, IPMI 1.5 authentication none/straight password/MD2, a vendor default
password that works — with what to do about each, and when it was audited.

The server audits every Connectable BMC once per --audit-every (24h) by itself.
--run audits the named machines (or --group) now (operator role): only
Connectable channels, and a BMC at most once per 10 minutes on demand. The
audit's logins are lockout-safe: see docs/security-audit.md.

Exit status: 0 when no finding is shown, 1 when a BMC has findings (or an audit
could not complete), 2 for bad input.` + serverHelp,
		Example: `  lightsout security
  lightsout security web-1 --history 10
  lightsout security --group lab --run
  lightsout security -o json | jq -r 'select(.status == "insecure") | .machine'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if history < 0 || history > 100 {
				return usageErr("--history %d: from 0 to 100", history)
			}
			if run && history > 0 {
				return usageErr("--history shows stored reports; it does not go with --run")
			}
			args, err := expandNames("machine names", args)
			if err != nil {
				return err
			}
			if run && len(args) == 0 && group == "" {
				return usageErr("--run: name the machines to audit, or --group G")
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if run {
				res, err := cl.AuditSecurity(cmd.Context(), args, group)
				if err != nil {
					return apiErr(err)
				}
				return printAuditResults(out, f.output, res)
			}
			vs, err := cl.SecurityReports(cmd.Context(), args, group, history)
			if err != nil {
				return apiErr(err)
			}
			return printSecurityViews(out, f.output, vs)
		},
	}
	f.add(c.Flags(), true)
	c.Flags().StringVar(&group, "group", "", "the machines of this group")
	c.Flags().BoolVar(&run, "run", false, "audit now instead of showing the latest reports (operator)")
	c.Flags().IntVar(&history, "history", 0, "also show this many past changes of findings per BMC")
	c.Long += namesHelp
	return c
}

func printSecurityViews(out io.Writer, format string, vs []audit.View) error {
	insecure, failed := 0, 0
	for _, v := range vs {
		if v.Status == audit.StatusInsecure {
			insecure++
		}
		if v.Error != "" {
			failed++
		}
	}
	if structuredFormat(format) {
		if err := emit(format, out, vs...); err != nil {
			return err
		}
	} else {
		tw := newTable(out, format, "+ACCOUNT", "MACHINE", "ADDRESS", "STATUS", "AUDITED", "+ATTEMPTED", "+NEXT", "FINDINGS")
		when := func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return stamp(*t)
		}
		for _, v := range vs {
			audited := when(v.AuditedAt)
			status := v.Status
			if v.Error != "" {
				status += " (last attempt failed)"
			}
			tw.row(v.AccountID, v.Machine, v.Address, status, audited, when(v.AttemptedAt), when(v.NextAt), strings.Join(audit.Keys(v.Findings), ", "))
		}
		tw.flush()
		var all []audit.Finding
		for _, v := range vs {
			all = append(all, v.Findings...)
			if v.Error != "" {
				fmt.Fprintf(out, "%s: last attempt failed: %s\n", v.Machine, v.Error)
			}
			for _, c := range v.Changes {
				fmt.Fprintf(out, "%s  %s: %s\n", stamp(c.At), v.Machine, changeSummary(c.Added, c.Removed))
			}
		}
		printRemedies(out, all)
	}
	if insecure+failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d BMCs with findings, %d with a failed last audit", insecure, len(vs), failed)}
	}
	return nil
}

// changeSummary renders a stored change (its added and removed findings).
func changeSummary(added, removed []byte) string {
	var a, r []audit.Finding
	if len(added) > 0 {
		_ = json.Unmarshal(added, &a)
	}
	if len(removed) > 0 {
		_ = json.Unmarshal(removed, &r)
	}
	d := audit.Drift{Added: a, Removed: r}
	if d.Empty() {
		return "first audit: no findings"
	}
	return d.Summary()
}

func printAuditResults(out io.Writer, format string, res []audit.Result) error {
	bad := 0
	for _, r := range res {
		if r.Report != nil && (!r.Report.Complete || len(r.Report.Findings) > 0) {
			bad++
		}
	}
	if structuredFormat(format) {
		if err := emit(format, out, res...); err != nil {
			return err
		}
	} else {
		tw := newTable(out, format, "MACHINE", "ADDRESS", "RESULT", "FINDINGS", "DRIFT")
		var all []audit.Finding
		for _, r := range res {
			switch {
			case r.Report == nil:
				tw.row(r.Machine, r.Address, "skipped: "+r.Skipped, "", "")
			case !r.Report.Complete:
				tw.row(r.Machine, r.Address, "incomplete: "+r.Report.Error, strings.Join(audit.Keys(r.Report.Findings), ", "), "")
			default:
				result := "clean"
				if len(r.Report.Findings) > 0 {
					result = "insecure"
				}
				drift := ""
				if r.Drift != nil {
					drift = r.Drift.Summary()
				}
				tw.row(r.Machine, r.Address, result, strings.Join(audit.Keys(r.Report.Findings), ", "), drift)
				all = append(all, r.Report.Findings...)
			}
		}
		tw.flush()
		printRemedies(out, all)
	}
	if bad > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d BMCs insecure or not fully audited", bad, len(res))}
	}
	return nil
}

// printRemedies prints each finding kind's message and remedy once.
func printRemedies(out io.Writer, fs []audit.Finding) {
	seen := map[string]bool{}
	audit.Sort(fs)
	for _, f := range fs {
		k := f.Key()
		if seen[k] {
			continue
		}
		seen[k] = true
		fmt.Fprintf(out, "\n%s: %s\n  remedy: %s\n", f.Key(), f.Message, f.Remedy)
	}
}
