package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/checkrun"
	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/diag/gather"
	"github.com/lightsout/lightsout/internal/manager"
)

func newDiagCmd() *cobra.Command {
	f := &apiFlags{}
	var req wire.DiagRequest
	var agentRef string
	var allRows bool
	c := &cobra.Command{
		Use:   "diag (NAME... | --group G | --all | --agent NAME|ID) [--autocorrect] [--adopt]",
		Short: "Say why a machine's management channel (or a host agent) is broken, and fix what is safe to fix",
		Long: `diag walks the decision tree of each machine's OOB channel state and prints, per
machine, the most likely cause, the evidence for it, the alternatives it ruled
out and the remedy (docs/diagnosis.md is the guide to every tree):

  NotResponding     port closed, no route, hung BMC, an address edit; for a blade
                    the enclosure isolation: EM card ping, the sibling blades, the
                    enclosure manager's view of the blade, then its identify lamp
                    lit through the enclosure manager and read back
  NotAuthenticated  wrong password (changed on the BMC, or in the inventory),
                    unknown user (removed, mistyped, lost with a board swap),
                    privilege too low, locked account, cipher suites
  Invalid           whose GUID answered: swapped addresses, a reused address, a
                    replaced motherboard, or a stranger
  Busy              who holds the BMC's session slots
  Degraded          timeout and retry rates, and whether the enclosure, subnet or
                    firmware is degraded as a whole; then the session census (IPMI
                    session table, Redfish SessionService): other consoles by
                    address and user, this manager's own sessions told apart

It checks each channel afresh (a refused account is not logged in again before
the lockout guard allows it) and asks only for the facts its tree needs.

On a terminal it prints only the channels that are not healthy or have a fix
(--all-rows prints every one), and ends with the counts and the failing
machines by name (the first 20, then how many more).

--autocorrect applies the safe, reversible fixes and prints each as "changed X
from A to B because E" (all are in the audit log): swap back the addresses of
two machines whose BMCs answer with each other's GUID; pin a cipher suite the
BMC offers and that worked; close sessions this host left open under the
account's own user; re-check an account whose credentials were edited after its
refusal. --adopt (admin) also re-pins the System GUID of a machine whose
motherboard was evidently replaced.

--agent NAME|ID diagnoses a host agent instead, from the manager's view of it
(what 'lightsout domain status' lists): its trust and certificates (revoked,
unknown, expired, expiring), its connection (Down, never connected, clock
skew, untrusted address), its host link to its own BMC (down, certificate,
trust, timeout floods, IPv6 fallback), version skew and queued ops. It needs
only the viewer role. With --autocorrect (operator) the agent renews its
certificates, refreshes its trust or restarts its host link, and the manager
restarts its session, each printed as "changed X from A to B because E" and
audited; the agent is then diagnosed again. An agent refused for its
certificate (revoked, unknown, expired) needs a new enrollment: with
--autocorrect an admin gets a one-time join token (valid 1h, shown once) to
write, mode 0600, to the file the agent's --join-token-file names on the
host; the running agent re-reads it and enrolls again under the same node.

Exit 0 when every diagnosed channel (or the agent) is healthy or was
corrected, 1 otherwise, 2 for bad input. Needs the operator role (it sends
packets, and may light an identify lamp); --adopt needs admin.` + serverHelp,
		Example: `  lightsout diag web-1
  lightsout diag --group rack-7 --autocorrect
  lightsout diag --all -o json
  lightsout diag blade-3 --autocorrect --adopt
  lightsout diag --agent web-1
  lightsout diag --agent 3 --autocorrect -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if agentRef != "" {
				switch {
				case len(args) > 0 || req.Group != "" || req.All:
					return usageErr("--agent diagnoses one host agent: give no machine names, --group or --all with it")
				case req.Adopt:
					return usageErr("--adopt is for machines (a replaced motherboard), not agents")
				}
				cl, err := f.client(cmd)
				if err != nil {
					return err
				}
				return runAgentDiag(cmd, f, cl, agentRef, req.Autocorrect)
			}
			args, err := expandNames("machine names", args)
			if err != nil {
				return err
			}
			req.Machines = args
			switch {
			case req.All && (len(args) > 0 || req.Group != ""):
				return usageErr("--all diagnoses every machine: give no names and no --group with it")
			case !req.All && len(args) == 0 && req.Group == "":
				return usageErr("name machines, or give --group G or --all")
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			return runDiag(cmd, f, cl, req, allRows)
		},
	}
	f.add(c.Flags(), true)
	c.Flags().StringVar(&req.Group, "group", "", "every machine in this group")
	c.Flags().BoolVar(&req.All, "all", false, "every machine")
	c.Flags().BoolVar(&req.Autocorrect, "autocorrect", false, "apply the safe, reversible fixes (each printed and audited)")
	c.Flags().BoolVar(&req.Adopt, "adopt", false, "also adopt the new System GUID of a machine whose motherboard was replaced (admin)")
	c.Flags().BoolVar(&allRows, "all-rows", false, "on a terminal, print every diagnosis (default there: only the channels that are not healthy or have a fix; the summary counts all)")
	c.Flags().StringVar(&agentRef, "agent", "", "diagnose this host agent (node ID or name) instead of machines")
	c.Long += namesHelp
	return c
}

func runDiag(cmd *cobra.Command, f *apiFlags, cl *client.Client, req wire.DiagRequest, allRows bool) error {
	out := cmd.OutOrStdout()
	progress := isTerminal(os.Stderr) && !f.structured()
	quiet := !allRows && rowsTerminal(out)
	start := time.Now()
	n, hidden := 0, 0
	rw := newRecordWriter(f.output, out)
	var failing []string
	sum, err := cl.Diag(cmd.Context(), req, func(r manager.DiagResult) {
		n++
		if !r.Corrected && (!r.Healthy || r.Error != "") && !slices.Contains(failing, r.Machine) {
			failing = append(failing, r.Machine)
		}
		if f.structured() {
			_ = rw.write(r)
			return
		}
		if progress {
			fmt.Fprint(os.Stderr, "\r\033[K")
		}
		if quiet && r.Healthy && r.Error == "" && len(r.Changes) == 0 && len(r.Diagnosis.Actions) == 0 {
			hidden++
		} else {
			printDiag(out, r, req)
		}
		if progress {
			fmt.Fprintf(os.Stderr, "diag: %d done, %.1fs", n, time.Since(start).Seconds())
		}
	})
	if progress {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	if err != nil {
		if n > 0 && err == client.ErrTruncated {
			return &exitError{code: 1, err: fmt.Errorf("diag: %v (%d results received)", err, n)}
		}
		return apiErr(err)
	}
	if f.structured() {
		_ = rw.write(wire.DiagLine{Summary: &sum})
	} else {
		fmt.Fprintf(out, "diag: %d diagnosed: %d healthy, %d corrected, %d failing (%.1fs)\n",
			sum.Diagnosed, sum.Healthy, sum.Corrected, sum.Failing, time.Since(start).Seconds())
		if len(failing) > 0 {
			names, more := failing, ""
			if len(names) > checkrun.MaxFailingNamed {
				names, more = names[:checkrun.MaxFailingNamed], fmt.Sprintf(" and %d more", len(failing)-checkrun.MaxFailingNamed)
			}
			fmt.Fprintf(out, "failing (%d): %s%s\n", len(failing), strings.Join(names, ", "), more)
		}
		if hidden > 0 {
			fmt.Fprintf(out, "%d healthy %s not shown (--all-rows shows every diagnosis)\n", hidden, checkrun.Plural(hidden, "channel", "channels"))
		}
	}
	if sum.Failing > 0 {
		return &exitError{code: 1, err: fmt.Errorf("diag: %d of %d channels are not healthy", sum.Failing, sum.Diagnosed)}
	}
	return nil
}

// printDiag prints one channel's diagnosis as a block.
func printDiag(w io.Writer, r manager.DiagResult, req wire.DiagRequest) {
	head := r.Machine
	if r.Address != "" {
		head += " (" + r.Address + ")"
	}
	if r.Error != "" {
		fmt.Fprintf(w, "%s: %s\n\n", head, r.Error)
		return
	}
	st := string(r.State)
	if r.Reason != "" {
		st += "/" + string(r.Reason)
	}
	for _, c := range r.Conditions {
		st += " +" + string(c)
	}
	d := r.Diagnosis
	fmt.Fprintf(w, "%s: %s\n", head, st)
	printDiagnosis(w, d)
	applied := map[string]bool{}
	for _, c := range r.Changes {
		applied[string(c.Kind)] = true
		switch c.Result {
		case "ok":
			fmt.Fprintln(w, "  "+c.Line)
		case "skipped":
			fmt.Fprintf(w, "  not applied (%s): %s\n", c.Error, c.Line)
		default:
			fmt.Fprintf(w, "  FAILED to apply (%s): %s\n", c.Error, c.Line)
		}
	}
	for _, a := range d.Actions {
		if applied[string(a.Kind)] {
			continue
		}
		how := "--autocorrect"
		if a.Kind == diag.ActAdopt {
			how = "--autocorrect --adopt (admin)"
		}
		if a.Kind == diag.ActAdopt && req.Adopt || a.Kind != diag.ActAdopt && req.Autocorrect {
			continue
		}
		fmt.Fprintf(w, "  with %s: would have %s\n", how, a.Line())
	}
	if r.After != nil {
		after := string(r.After.State)
		if r.After.Reason != "" {
			after += "/" + string(r.After.Reason)
		}
		fmt.Fprintln(w, "  now:       "+after)
	}
	fmt.Fprintln(w)
}

// runAgentDiag diagnoses one agent: exit 0 when it is healthy or was
// corrected, 1 otherwise.
func runAgentDiag(cmd *cobra.Command, f *apiFlags, cl *client.Client, ref string, autocorrect bool) error {
	out := cmd.OutOrStdout()
	rep, err := cl.DiagnoseAgent(cmd.Context(), ref, autocorrect)
	if err != nil {
		return apiErr(err)
	}
	if f.structured() {
		_ = emit(f.output, out, rep)
	} else {
		printAgentDiag(out, rep, autocorrect)
	}
	switch {
	case rep.Diagnosis.Healthy():
		return nil
	case rep.After != nil && rep.After.Healthy():
		return nil
	}
	return &exitError{code: 1, err: fmt.Errorf("diag: agent %s is not healthy (%s)", rep.Agent, agentCause(rep))}
}

// agentCause is the cause after autocorrect, when it ran.
func agentCause(rep gather.AgentReport) diag.Cause {
	if rep.After != nil {
		return rep.After.Cause
	}
	return rep.Diagnosis.Cause
}

// printDiagnosis prints a diagnosis's cause, evidence, ruled-out
// alternatives and remedy (the middle of a diag block).
func printDiagnosis(w io.Writer, d diag.Diagnosis) {
	fmt.Fprintf(w, "  cause:     %s (%s confidence): %s\n", d.Cause, d.Confidence, d.Summary)
	if len(d.Evidence) > 0 {
		fmt.Fprintln(w, "  evidence:")
		for _, e := range d.Evidence {
			fmt.Fprintln(w, "    - "+e)
		}
	}
	if len(d.RuledOut) > 0 {
		fmt.Fprintln(w, "  ruled out:")
		for _, e := range d.RuledOut {
			fmt.Fprintln(w, "    - "+e)
		}
	}
	fmt.Fprintln(w, "  remedy:    "+d.Remedy)
}

// printAgentDiag prints an agent's diagnosis as a block, like printDiag.
func printAgentDiag(w io.Writer, rep gather.AgentReport, autocorrect bool) {
	d := rep.Diagnosis
	fmt.Fprintf(w, "agent %s (0x%04x)\n", rep.Agent, rep.ID)
	printDiagnosis(w, d)
	for _, ap := range rep.Applied {
		switch {
		case ap.OK && ap.Error == "":
			fmt.Fprintln(w, "  "+ap.Action.Line())
		case ap.OK:
			fmt.Fprintf(w, "  %s (but: %s)\n", ap.Action.Line(), ap.Error)
		case strings.HasPrefix(ap.Error, "not applied: "), strings.HasPrefix(ap.Error, "not tried: "):
			what, why, _ := strings.Cut(ap.Error, ": ")
			fmt.Fprintf(w, "  %s (%s): %s\n", what, why, ap.Action.Line())
		default:
			fmt.Fprintf(w, "  FAILED to apply (%s): %s\n", ap.Error, ap.Action.Line())
		}
	}
	if !autocorrect {
		for _, a := range d.Actions {
			how := "--autocorrect"
			if a.Kind == diag.ActReEnroll {
				how = "--autocorrect (admin)"
			}
			fmt.Fprintf(w, "  with %s: would have %s\n", how, a.Line())
		}
	}
	if rep.After != nil {
		fmt.Fprintf(w, "  now:       %s: %s\n", rep.After.Cause, rep.After.Summary)
	}
	if rep.Token != "" {
		fmt.Fprintf(w, "  join token (one-time, valid until %s; shown once):\n", rep.TokenExpires.Local().Format(time.DateTime))
		fmt.Fprintln(w, "    "+rep.Token)
		fmt.Fprintln(w, "  on the host, write it to a file of mode 0600 (install -m 0600 /dev/null FILE, then paste it in;")
		fmt.Fprintln(w, "  never as a command-line value): the running agent re-reads the file its --join-token-file names")
		fmt.Fprintln(w, "  when the manager refuses its certificate, and enrolls again with a new key under the same node.")
		if rep.Command != "" {
			fmt.Fprintln(w, "  an agent started without --join-token-file: restart it as")
			fmt.Fprintln(w, "    "+rep.Command)
			fmt.Fprintln(w, "  (DIR: its data directory; FILE: the 0600 token file)")
		}
		fmt.Fprintln(w, "  `lightsout agent status --data DIR` on the host shows the new enrollment.")
	}
	fmt.Fprintln(w)
}
