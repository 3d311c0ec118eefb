package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
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
	var since, code string
	var limit int
	c := &cobra.Command{
		Use:   "events [--since D|TIME] [--code C] [--limit N]",
		Short: "List events (state changes, floods, ...) newest first",
		Long: `events lists what the server noticed: every declared state change
(oob.state_changed) and the other typed events, with severity, source, how many
times it repeated, and the message. --since takes a duration back from now
(30m, 2h, 7d) or a time.` + serverHelp,
		Example: `  lightsout events --since 1h
  lightsout events --code oob.state_changed --limit 20 -o json`,
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
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			evs, err := cl.Events(cmd.Context(), t, code, limit)
			if err != nil {
				return apiErr(err)
			}
			out := cmd.OutOrStdout()
			if f.json() {
				return jsonLines(out, evs...)
			}
			tw := newTabWriter(out, "AT", "SEVERITY", "CODE", "SOURCE", "COUNT", "MESSAGE")
			for _, e := range evs {
				tw.row(stamp(e.At), e.Severity, e.Code, e.Source, e.Count, e.Message)
			}
			tw.flush()
			return nil
		},
	}
	f.add(c.Flags(), true)
	c.Flags().StringVar(&since, "since", "", "only events since this long ago (30m, 2h, 7d) or this time")
	c.Flags().StringVar(&code, "code", "", "only events with this code (e.g. oob.state_changed)")
	c.Flags().IntVar(&limit, "limit", 100, "at most this many events")
	return c
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
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			es, err := cl.Audit(cmd.Context(), target, limit)
			if err != nil {
				return apiErr(err)
			}
			out := cmd.OutOrStdout()
			if f.json() {
				return jsonLines(out, es...)
			}
			tw := newTabWriter(out, "AT", "ACTOR", "ACTION", "TARGET", "RESULT", "DETAIL")
			for _, e := range es {
				d := e.Detail
				if e.Error != "" {
					d = strings.TrimSpace(d + " " + e.Error)
				}
				tw.row(stamp(e.At), e.Actor, e.Action, e.Target, e.Result, d)
			}
			tw.flush()
			return nil
		},
	}
	f.add(c.Flags(), true)
	c.Flags().StringVar(&target, "target", "", "only entries about this machine or enclosure")
	c.Flags().IntVar(&limit, "limit", 100, "at most this many entries")
	return c
}
