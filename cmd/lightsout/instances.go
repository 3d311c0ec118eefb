package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api/client"
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
			got, err := fetch(cmd, f, (*client.Client).Instances)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.structured() {
				return emit(f.output, out, got.Instances...)
			}
			printInstances(out, f.output, got, time.Now())
			return nil
		},
	}
	f.add(c.Flags(), true)
	return c
}

// printInstances prints the instances as a table.
func printInstances(out io.Writer, format string, got wire.Instances, now time.Time) {
	if len(got.Instances) == 0 {
		fmt.Fprintln(out, "no instances registered")
		return
	}
	tw := newTable(out, format, "NAME", "STATE", "ZONES", "AGE", "CHANNELS", "CHECKS/S", "HEARTBEAT", "+PEER")
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
		tw.row(name, st, strings.Join(in.Zones, ","), age.Round(time.Second), in.Channels, fmt.Sprintf("%.1f", rate),
			now.Sub(in.HeartbeatAt).Round(time.Second).String()+" ago", in.PeerAddress)
	}
	tw.flush()
}
