package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lightsout/lightsout/internal/api"
	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/power"
)

type staggerFlags struct {
	batch    int
	interval time.Duration
}

func (s *staggerFlags) add(c *cobra.Command) {
	c.Flags().IntVar(&s.batch, "batch", 0, "machines at once (default: all)")
	c.Flags().DurationVar(&s.interval, "interval", 0, "rest between batches, e.g. 10s (with --batch)")
}

func (s *staggerFlags) check() error {
	if s.batch < 0 {
		return usageErr("--batch %d: must be 1 or more", s.batch)
	}
	if s.interval < 0 || s.interval > api.MaxInterval {
		return usageErr("--interval %v: must be from 0s to %v", s.interval, api.MaxInterval)
	}
	if s.interval > 0 && s.batch == 0 {
		return usageErr("--interval needs --batch: how many machines run at once")
	}
	return nil
}

func (s *staggerFlags) intervalString() string {
	if s.interval == 0 {
		return ""
	}
	return s.interval.String()
}

func actionList() string {
	names := make([]string, len(power.Actions))
	for i, a := range power.Actions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// identifyWords turns "identify on|off|status NAME..." into
// "identify-on|off|status NAME...", ipmitool's "chassis identify" words.
func identifyWords(args []string) ([]string, error) {
	if args[0] != "identify" || len(args) < 2 {
		return args, nil
	}
	switch strings.ToLower(args[1]) {
	case "on", "off", "status":
		return append([]string{"identify-" + strings.ToLower(args[1])}, args[2:]...), nil
	}
	return args, nil
}

func newPowerCmd() *cobra.Command {
	f := &apiFlags{}
	s := &staggerFlags{}
	var group string
	var fallback time.Duration
	c := &cobra.Command{
		Use:   "power ACTION (NAME... | --group G) [--batch N --interval D] [--agent-fallback D]",
		Short: "Power machines on, off, soft-off, cycle or reset, read their power state, or blink their ID lamp",
		Long: `power runs ACTION on the named machines (and/or every machine of --group)
through the server, --batch machines at a time with --interval between batches,
and prints each machine's result as it completes, then a summary.

ACTION is one of: on, off, soft (ACPI soft off), cycle, reset, status,
identify-on, identify-off, identify-status; "identify on", "identify off" and
"identify status" are the same. identify-status reads the lamp back (IPMI: Get
Chassis Status; Redfish: LocationIndicatorActive or IndicatorLED) and needs
only the viewer role, as status does.

A machine whose OOB channel is not Connectable is refused without being
touched, and the line says the state, since when, and what to do — never a
raw timeout. The exit status is 0 only if every machine succeeded, 1 if any
was refused or failed, 2 for bad input.

A soft-off only asks: the BMC presses the ACPI power button and the OS
decides. A machine still on right after it says "soft-off requested, power
still on". --agent-fallback D (soft only, 1s to 30m, admin) follows it up:
the server reads the power every 2s; if it still reads on after D (an OS
that ignores the power button), it asks the machine's host agent — the
agent enrolled under the same name as the machine — to run os-shutdown
(its --shutdown-command), then watches for D again. MESSAGE ("detail" in
-o json) says what happened ("off after soft-off (12s)", "soft-off ignored for 2m0s;
agent os-shutdown sent; off after 8s"); a fallback that did not get the
machine off fails with its cause: no agent of that name, the agent not Up
(its state and reason), no shutdown command, the command failed, or still
on after it.

status needs the viewer role, every other action operator, --agent-fallback
admin. Every operation is in the audit log (lightsout audit), the agent's
os-shutdown too (agent.op).` + serverHelp,
		Example: `  lightsout power status web-1 web-2
  lightsout power off --group lab --batch 5 --interval 10s
  lightsout power soft db-1 db-2 --agent-fallback 2m
  lightsout power identify-on blade-7 -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if len(args) == 0 {
				return usageErr("power needs an ACTION (%s) and machines (see 'lightsout power --help')", actionList())
			}
			args, err := identifyWords(args)
			if err != nil {
				return err
			}
			act, err := power.ParseAction(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			names, err := expandNames("machine names", args[1:])
			if err != nil {
				return err
			}
			if len(names) == 0 && group == "" {
				return usageErr("name machines or give --group G")
			}
			if err := s.check(); err != nil {
				return err
			}
			if cmd.Flags().Changed("agent-fallback") {
				if act != power.SoftOff {
					return usageErr("--agent-fallback works only with soft, not %s", act)
				}
				if fallback < api.MinAgentFallback || fallback > manager.MaxAgentFallback {
					return usageErr("--agent-fallback %v: must be from %v to %v", fallback, api.MinAgentFallback, manager.MaxAgentFallback)
				}
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			req := wire.PowerRequest{Action: string(act), Machines: names, Group: group, Batch: s.batch, Interval: s.intervalString()}
			if fallback > 0 {
				req.AgentFallback = fallback.String()
			}
			return runBulk(cmd, f, "power "+string(act), func(ctx context.Context, each func(power.Result)) (wire.PowerSummary, error) {
				return cl.Power(ctx, req, each)
			})
		},
	}
	f.add(c.Flags(), true)
	s.add(c)
	c.Flags().StringVar(&group, "group", "", "every machine in this group")
	c.Flags().DurationVar(&fallback, "agent-fallback", 0, "soft only: if still on after this (e.g. 2m, at most 30m), the host agent named as the machine runs os-shutdown (admin)")
	c.Long += namesHelp
	return c
}

func newAllocateCmd() *cobra.Command {
	f := &apiFlags{}
	s := &staggerFlags{}
	var group string
	c := &cobra.Command{
		Use:   "allocate --group G NAME... [--batch N --interval D]",
		Short: "Assign machines to a group and power them on",
		Long: `allocate is resource allocation: each named machine joins --group (leaving the
spare pool) and is powered on, in batches like lightsout power. A machine
already in another group, or whose OOB channel is not Connectable, is refused
with the reason; the others proceed. Exit 0 only if every machine was
allocated. Needs the operator role.` + serverHelp,
		Example: `  lightsout allocate --group web spare-1 spare-2
  lightsout allocate --group batch node-1 node-2 node-3 --batch 1 --interval 30s`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if group == "" {
				return usageErr("--group is required: the group the machines join")
			}
			if len(args) == 0 {
				return usageErr("name the machines to allocate")
			}
			args, err := expandNames("machine names", args)
			if err != nil {
				return err
			}
			if err := s.check(); err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			req := wire.AllocateRequest{Group: group, Machines: args, Batch: s.batch, Interval: s.intervalString()}
			return runBulk(cmd, f, "allocate", func(ctx context.Context, each func(power.Result)) (wire.PowerSummary, error) {
				return cl.Allocate(ctx, req, each)
			})
		},
	}
	f.add(c.Flags(), true)
	s.add(c)
	c.Flags().StringVar(&group, "group", "", "the group the machines join (required)")
	c.Long += namesHelp
	return c
}

// runBulk streams a bulk operation's results: a table row (or JSON line)
// per machine as it completes, a progress line on a terminal, then the
// summary. Exit 1 if any machine was refused or failed.
func runBulk(cmd *cobra.Command, f *apiFlags, what string, run func(context.Context, func(power.Result)) (wire.PowerSummary, error)) error {
	out := cmd.OutOrStdout()
	progress := isTerminal(os.Stderr) && !f.structured()
	start := time.Now()
	n := 0
	var tw *streamTable
	wide := f.output == formatWide
	rw := newRecordWriter(f.output, out)
	if wide {
		tw = newStreamTable(out, []int{20, 12, 9, 6, 6, 9}, "MACHINE", "ACTION", "RESULT", "POWER", "BATCH", "MS", "MESSAGE")
	} else if !f.structured() {
		tw = newStreamTable(out, []int{20, 9, 6, 6, 9}, "MACHINE", "RESULT", "POWER", "BATCH", "MS", "MESSAGE")
	}
	var sum wire.PowerSummary
	sum, err := run(cmd.Context(), func(r power.Result) {
		n++
		if f.structured() {
			_ = rw.write(r)
			return
		}
		if progress {
			fmt.Fprint(os.Stderr, "\r\033[K")
		}
		msg := r.Message
		switch {
		case r.Detail != "" && msg == "":
			msg = r.Detail
		case r.Cause != "":
			msg = "[" + r.Cause + "] " + msg
		}
		if wide {
			// Wide: the detail too, beside the message.
			if r.Detail != "" && msg != r.Detail {
				msg += " — " + r.Detail
			}
			tw.row(r.Machine, r.Action, r.Result, r.Power, r.Batch, fmt.Sprintf("%.0f", r.ElapsedMS), msg)
		} else {
			tw.row(r.Machine, r.Result, r.Power, r.Batch, fmt.Sprintf("%.0f", r.ElapsedMS), msg)
		}
		if progress {
			fmt.Fprintf(os.Stderr, "%s: %d done, batch %d, %.1fs", what, n, r.Batch, time.Since(start).Seconds())
		}
	})
	if progress {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		if n > 0 && err == client.ErrTruncated {
			return &exitError{code: 1, err: fmt.Errorf("%s: %v (%d results received)", what, err, n)}
		}
		return apiErr(err)
	}
	if f.structured() {
		_ = rw.write(wire.PowerLine{Summary: &sum})
	} else {
		fmt.Fprintf(out, "\n%s: %d ok, %d refused, %d failed in %.1fs\n", what, sum.OK, sum.Refused, sum.Failed, time.Since(start).Seconds())
	}
	if sum.Refused+sum.Failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%s: %d of %d machines refused or failed", what, sum.Refused+sum.Failed, sum.OK+sum.Refused+sum.Failed)}
	}
	return nil
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// streamTable prints rows as they come with fixed column widths (a
// tabwriter would hold them until the end).
type streamTable struct {
	w      io.Writer
	widths []int
	header []any // printed before the first row: a request refused outright prints no empty table
}

func newStreamTable(w io.Writer, widths []int, header ...string) *streamTable {
	t := &streamTable{w: w, widths: widths}
	for _, h := range header {
		t.header = append(t.header, h)
	}
	return t
}

func (t *streamTable) row(cells ...any) {
	if h := t.header; h != nil {
		t.header = nil
		t.row(h...)
	}
	var b strings.Builder
	for i, c := range cells {
		s := fmt.Sprint(c)
		if s == "" {
			s = "-"
		}
		if i < len(t.widths) {
			fmt.Fprintf(&b, "%-*s ", t.widths[i], s)
		} else {
			b.WriteString(s)
		}
	}
	fmt.Fprintln(t.w, strings.TrimRight(b.String(), " "))
}
