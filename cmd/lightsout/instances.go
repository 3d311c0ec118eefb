package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api/wire"
)

func newInstancesCmd() *cobra.Command {
	f := &apiFlags{}
	c := &cobra.Command{
		Use:   "instances",
		Short: "List the server instances sharing the database: zones, age, channels, checks/s, heartbeat",
		Long: `instances lists every lightsout server registered in the database
(docs/scale-out.md): its name, the zones it serves, how long it has run, how many
channels it checks (its share of the fleet), its checks a second since it
started, when it last renewed its lease, and whether it is live. An instance
whose lease lapsed is dead: the live instances serving its zones took over its
channels. The instance that answered is marked with *.` + serverHelp,
		Example: `  lightsout instances
  lightsout instances -o json | jq -r 'select(.live|not) | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			got, err := cl.Instances(cmd.Context())
			if err != nil {
				return apiErr(err)
			}
			out := cmd.OutOrStdout()
			if f.json() {
				return jsonLines(out, got.Instances...)
			}
			printInstances(out, got, time.Now())
			return nil
		},
	}
	f.add(c.Flags(), true)
	return c
}

// printInstances prints the instances as a table.
func printInstances(out io.Writer, got wire.Instances, now time.Time) {
	if len(got.Instances) == 0 {
		fmt.Fprintln(out, "no instances registered")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tZONES\tAGE\tCHANNELS\tCHECKS/S\tHEARTBEAT\tPEER")
	for _, in := range got.Instances {
		name := in.Name
		if name == got.Self {
			name += " *"
		}
		st := "live"
		if !in.Live {
			st = "dead"
		}
		age := in.HeartbeatAt.Sub(in.StartedAt)
		rate := 0.0
		if age > 0 {
			rate = float64(in.Checks) / age.Seconds()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%.1f\t%s ago\t%s\n", name, st, strings.Join(in.Zones, ","),
			age.Round(time.Second), in.Channels, rate, now.Sub(in.HeartbeatAt).Round(time.Second), in.PeerAddress)
	}
	tw.Flush()
}
