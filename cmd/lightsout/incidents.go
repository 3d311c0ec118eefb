package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/incident"
)

func newIncidentsCmd() *cobra.Command {
	f := &apiFlags{}
	var members bool
	c := &cobra.Command{
		Use:   "incidents [--members]",
		Short: "List the fleet's problems: broken channels grouped by cause, with remedies",
		Long: `incidents lists what is wrong in the fleet, worst first: broken channels grouped
by cause — a dead enclosure with its blades, one refused user per group, two
machines with swapped addresses, a condition (Busy, Degraded, Insecure) per
group, timeout floods, fleet correlations (firmware, subnet), agents down or
untrusted, host links down. Each incident says since when, its members, the
remedy and the diagnosis to run (docs/incidents.md).

The table names up to 5 members per incident; --members (or -o wide) names
them all, -o json prints one incident per line with every field (-o yaml: one
document per incident), and --out FILE writes the output to a file. Opening
and closing incidents are also events (lightsout events --code 'incident.*').` + serverHelp,
		Example: `  lightsout incidents
  lightsout incidents --members
  lightsout incidents -o json | jq -r 'select(.severity=="critical") | .diagnose'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listAPI(cmd, f, (*client.Client).Incidents, func(out io.Writer, incs []incident.Incident) {
				printIncidents(out, incs, members || f.output == formatWide)
			})
		},
	}
	f.add(c.Flags(), true)
	c.Flags().BoolVar(&members, "members", false, "name every member (default: the first 5, then a count)")
	return c
}

// printIncidents prints incidents as a table, each followed by its
// members, what they share, remedy and diagnosis.
func printIncidents(out io.Writer, incs []incident.Incident, all bool) {
	if len(incs) == 0 {
		fmt.Fprintln(out, "no incidents: every channel is Connectable (or not checked yet)")
		return
	}
	fmt.Fprintf(out, "%d %s\n", len(incs), map[bool]string{true: "incident", false: "incidents"}[len(incs) == 1])
	for _, inc := range incs {
		fmt.Fprintf(out, "\n%-8s  %s  (since %s)\n", strings.ToUpper(string(inc.Severity)), inc.Title, stamp(inc.Since))
		ms := inc.Members
		more := ""
		if !all && len(ms) > 5 {
			ms, more = ms[:5], fmt.Sprintf(" and %d more", len(inc.Members)-5)
		}
		fmt.Fprintf(out, "  members:  %s%s\n", strings.Join(ms, ", "), more)
		if len(inc.Shares) > 0 {
			fmt.Fprintf(out, "  share:    %s\n", strings.Join(inc.Shares, "; "))
		}
		fmt.Fprintf(out, "  remedy:   %s\n", inc.Remedy)
		fmt.Fprintf(out, "  diagnose: %s\n", inc.Diagnose)
	}
}
