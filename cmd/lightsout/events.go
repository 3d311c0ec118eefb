package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/store"
)

// parseSince reads --since: a duration back from now (90m, 2h, 7d) or a
// time (RFC 3339, "2006-01-02 15:04", or a date).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if strings.HasSuffix(s, "d") {
		var days int
		if _, err := fmt.Sscanf(s, "%dd", &days); err == nil && days > 0 && fmt.Sprintf("%dd", days) == s {
			return now.Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q: a duration back from now must be positive", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a duration back from now (30m, 2h, 7d) or a time (2025-01-02T15:04:05Z, 2025-01-02 15:04, 2025-01-02)", s)
}

func newEventsCmd() *cobra.Command {
	f := &apiFlags{}
	var since, code, source, severity string
	var limit int
	var follow bool
	c := &cobra.Command{
		Use:   "events [--since D|TIME] [--code C] [--source S] [--severity S] [--limit N] [--follow]",
		Short: "List events (state changes, floods, fleet findings, ...) newest first, or follow them live",
		Long: `events lists what the server noticed: every declared state change
(oob.state_changed), the problem codes (oob.not_responding, oob.auth_refused,
oob.identity_mismatch, oob.degraded, oob.timeout_flood), fleet findings
(fleet.correlated: many BMCs sharing a firmware, enclosure or subnet raise the
same code) and audit findings, with severity, source, how many times it repeated
within its dedup window, and the message (docs/events.md lists every code).

--since takes a duration back from now (30m, 2h, 7d) or a time. --code takes a
code or a family (audit.*), --severity the least severity (info, warning,
critical). --follow keeps the connection open and prints events as they happen,
oldest first (with --since, the stored ones from then first); a repeat of a
deduplicated event is printed again with its new count. Stop with Ctrl-C.` + serverHelp,
		Example: `  lightsout events --since 1h
  lightsout events --code oob.state_changed --limit 20 -o json
  lightsout events --severity warning --follow
  lightsout events --code fleet.correlated --since 7d -o json | jq .data.members`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			t, err := parseSince(since, time.Now())
			if err != nil {
				return usageErr("--since %v", err)
			}
			if limit < 1 || limit > 10000 {
				return usageErr("--limit %d: from 1 to 10000", limit)
			}
			if code != "" && (strings.ContainsAny(code, " \t") || (strings.Contains(code, "*") && !strings.HasSuffix(code, ".*"))) {
				return usageErr("--code %q: want a code (oob.timeout_flood) or a family (audit.*)", code)
			}
			var sev store.Severity
			if severity != "" {
				if sev, err = store.ParseSeverity(severity); err != nil {
					return usageErr("--severity %v", err)
				}
			}
			q := client.EventQuery{Since: t, Code: code, Source: source, Severity: sev, Limit: limit}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if follow {
				return followEvents(cmd, cl, q, f.output)
			}
			evs, err := cl.ListEvents(cmd.Context(), q)
			if err != nil {
				return apiErr(err)
			}
			if f.structured() {
				return emit(f.output, out, evs...)
			}
			// Newest last occurrence first: LAST is the order; -o wide adds
			// the first occurrence.
			tw := newTable(out, f.output, "+ID", "LAST", "+FIRST", "SEVERITY", "CODE", "SOURCE", "COUNT", "MESSAGE")
			for _, e := range evs {
				tw.row(e.ID, stamp(e.LastAt), stamp(e.At), e.Severity, e.Code, e.Source, e.Count, e.Message)
			}
			tw.flush()
			return nil
		},
	}
	f.add(c.Flags(), true)
	c.Flags().StringVar(&since, "since", "", "only events since this long ago (30m, 2h, 7d) or this time")
	c.Flags().StringVar(&code, "code", "", "only events with this code (oob.state_changed) or family (audit.*)")
	c.Flags().StringVar(&source, "source", "", "only events of this source (a machine, an enclosure)")
	c.Flags().StringVar(&severity, "severity", "", "only events at least this severe: info, warning or critical")
	c.Flags().IntVar(&limit, "limit", 100, "at most this many events (not with --follow)")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing events as they happen")
	return c
}

// followEvents prints the event stream until Ctrl-C or the server ends
// it. Table rows are printed one at a time, so columns are fixed-width.
func followEvents(cmd *cobra.Command, cl *client.Client, q client.EventQuery, format string) error {
	out := cmd.OutOrStdout()
	rw := newRecordWriter(format, out)
	if !structuredFormat(format) {
		fmt.Fprintf(out, "%-20s  %-8s  %-26s  %-16s  %5s  %s\n", "LAST", "SEVERITY", "CODE", "SOURCE", "COUNT", "MESSAGE")
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cl.FollowEvents(ctx, q, func(e store.Event) error {
		if structuredFormat(format) {
			return rw.write(e)
		}
		_, err := fmt.Fprintf(out, "%-20s  %-8s  %-26s  %-16s  %5d  %s\n", stamp(e.LastAt), e.Severity, e.Code, e.Source, e.Count, e.Message)
		return err
	}, func(n uint64) {
		fmt.Fprintf(cmd.ErrOrStderr(), "lightsout: this terminal was too slow: %d events not shown so far (see lightsout events)\n", n)
	})
	if err != nil {
		return apiErr(err)
	}
	return nil
}

func newAuditCmd() *cobra.Command {
	f := &apiFlags{}
	var target string
	var limit int
	c := &cobra.Command{
		Use:   "audit [--target T] [--limit N]",
		Short: "Show the audit log: who did what to which machine, and the result",
		Long: `audit lists every operation newest first — power, lifecycle, inventory edits,
imports, token changes and the monitor's own GUID pinning — with the actor
(token name), the target, the result (ok, refused, failed) and the error. Needs
the operator role.` + serverHelp,
		Example: `  lightsout audit --target web-1
  lightsout audit --limit 1000 -o json | jq -r 'select(.result != "ok")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if limit < 1 || limit > 10000 {
				return usageErr("--limit %d: from 1 to 10000", limit)
			}
			return listAPI(cmd, f, func(cl *client.Client, ctx context.Context) ([]store.AuditEntry, error) {
				return cl.Audit(ctx, target, limit)
			}, func(out io.Writer, es []store.AuditEntry) {
				tw := newTable(out, f.output, "+ID", "AT", "ACTOR", "ACTION", "TARGET", "RESULT", "DETAIL")
				for _, e := range es {
					d := e.Detail
					if e.Error != "" {
						d = strings.TrimSpace(d + " " + e.Error)
					}
					tw.row(e.ID, stamp(e.At), e.Actor, e.Action, e.Target, e.Result, d)
				}
				tw.flush()
			})
		},
	}
	f.add(c.Flags(), true)
	c.Flags().StringVar(&target, "target", "", "only entries about this machine or enclosure")
	c.Flags().IntVar(&limit, "limit", 100, "at most this many entries")
	return c
}
