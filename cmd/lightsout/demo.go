package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
)

func newDemoCmd() *cobra.Command {
	var (
		count    int
		interval time.Duration
		dir      string
		basePort int
	)
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run a simulated fleet with faults of every kind and watch lightsout classify it",
		Long: `demo starts a simulated fleet on loopback — two enclosures of 8 blades (one
enclosure manager dead), and one BMC per fault kind: silent, port closed, wrong
password, user removed, motherboard swapped (new GUID), two BMCs with swapped
addresses, session slots full, slow, lossy, timing out, malformed replies,
insecure settings — plus two BMCs whose faults come and go. It checks the whole
fleet every --interval and prints what changed.

The fleet's inventory and password file are written to --dir, so you can point
lightsout check, ipmitool or FreeIPMI at it from another terminal while the demo
runs. As root the BMCs get their own addresses (127.20.x.y, port 623); otherwise
they share 127.0.0.1 on consecutive ports from --base-port.

Not there yet: the manager with its SQLite store and the web console (they come
with the manager and console work); this demo runs the checks itself.`,
		Example: `  go run ./cmd/lightsout demo
  lightsout demo --count 500 --interval 10s --dir /tmp/lightsout-demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if count < 40 {
				return usageErr("--count %d: the demo needs at least 40 BMCs", count)
			}
			if interval < time.Second {
				return usageErr("--interval %v: at least 1s", interval)
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), count, interval, dir, basePort)
		},
	}
	c.Flags().IntVar(&count, "count", 200, "BMCs in the simulated fleet")
	c.Flags().DurationVar(&interval, "interval", 15*time.Second, "time between check rounds")
	c.Flags().StringVar(&dir, "dir", "", "where to write the inventory and password (default: a new temporary directory)")
	c.Flags().IntVar(&basePort, "base-port", 30623, "first port when not root (BMCs share 127.0.0.1)")
	return c
}

// demoFaults is one BMC per fault kind, after the 16 blades.
func demoFaults() map[string]sim.Faults {
	return map[string]sim.Faults{
		"bmc-00020": {Silent: true},
		"bmc-00021": {PortClosed: true},
		"bmc-00022": {WrongPassword: true},
		"bmc-00023": {UserRemoved: true},
		"bmc-00024": {GUIDReplaced: true},
		"bmc-00025": {SlotsFull: true},
		"bmc-00026": {Slow: sim.Duration(400 * time.Millisecond)},
		"bmc-00027": {Lossy: 0.3},
		"bmc-00028": {TimeoutRate: 0.3},
		"bmc-00029": {Malformed: 0.5},
		"bmc-00030": {Insecure: true},
		"enc-b":     {},
	}
}

func runDemo(parent context.Context, out io.Writer, count int, interval time.Duration, dir string, basePort int) error {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir == "" {
		d, err := os.MkdirTemp("", "lightsout-demo-")
		if err != nil {
			return err
		}
		dir = d
	}
	cfg := sim.Config{
		Count: count, Seed: 2026,
		Enclosures: []sim.EnclosureConfig{{Name: "enc-a", Blades: 8}, {Name: "enc-b", Blades: 8}},
		Faults:     demoFaults(),
		Swaps:      [][]string{{"bmc-00031", "bmc-00032"}},
	}
	if os.Geteuid() == 0 {
		cfg.BaseAddr = "127.20.0.1" // clear of a default `lightsout sim` (127.1.0.1 on)
	} else {
		cfg.BaseAddr, cfg.BasePort = "127.0.0.1", basePort
	}
	fleet, err := sim.New(cfg)
	if err != nil {
		return fmt.Errorf("start the simulated fleet: %w", err)
	}
	defer fleet.Close()
	if err := fleet.SetEnclosureDown("enc-b", true); err != nil {
		return err
	}
	inv, pw := filepath.Join(dir, "fleet.yaml"), filepath.Join(dir, "fleet.password")
	if err := fleet.WritePasswordFile(pw); err != nil {
		return err
	}
	if err := fleet.ExportInventory(inv, pw); err != nil {
		return err
	}
	ctl, err := fleet.ServeControl("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ctl.Close()
	fmt.Fprintf(out, "lightsout demo: %d simulated BMCs on %s; control API %s\n", count, fleet.AddrRange(), ctl.URL())
	fmt.Fprintf(out, "  inventory %s (password in %s)\n", inv, pw)
	fmt.Fprintf(out, "  try, in another terminal:  lightsout check --inventory %s\n", inv)
	fmt.Fprintf(out, "  the web console is not built yet; this demo checks the fleet every %v. Ctrl-C stops.\n\n", interval)

	targets, err := buildTargets(ctx, &checkFlags{inventory: inv, timeout: probe.DefaultTimeout}, ipmi.PrivilegeAdministrator)
	if err != nil {
		return err
	}
	eng, err := ipmi.New(ipmi.Config{})
	if err != nil {
		return err
	}
	defer eng.Close()
	go flapFaults(ctx, fleet, interval)

	last := map[string]string{}
	for round := 1; ; round++ {
		start := time.Now()
		results := make(chan probe.Observation, 256)
		go runProbes(ctx, probe.IPMI(eng), targets, 4096, results)
		var obs []probe.Observation
		counts := map[state.OOB]int{}
		for o := range results {
			obs = append(obs, o)
			counts[o.State]++
		}
		if ctx.Err() != nil {
			fmt.Fprintln(out, "lightsout demo: stopped")
			return nil
		}
		sort.Slice(obs, func(i, j int) bool { return obs[i].Name < obs[j].Name })
		fmt.Fprintf(out, "round %d · %d BMCs in %.1fs · %d Connectable · %d NotResponding · %d NotAuthenticated · %d Invalid\n",
			round, len(obs), time.Since(start).Seconds(), counts[state.Connectable], counts[state.NotResponding],
			counts[state.NotAuthenticated], counts[state.Invalid])
		for _, o := range obs {
			label := string(o.State)
			if o.Reason != "" {
				label += " (" + string(o.Reason) + ")"
			}
			for _, c := range o.Conditions {
				label += " +" + string(c)
			}
			prev, seen := last[o.Name]
			last[o.Name] = label
			switch {
			case !seen && label != string(state.Connectable):
				fmt.Fprintf(out, "  %-10s %s — %s\n", o.Name, label, o.Message)
			case seen && prev != label:
				fmt.Fprintf(out, "  %-10s %s → %s — %s\n", o.Name, prev, label, o.Message)
			}
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "lightsout demo: stopped")
			return nil
		case <-time.After(interval):
		}
	}
}

// flapFaults makes two BMCs come and go, so the demo shows state changes.
func flapFaults(ctx context.Context, fleet *sim.Fleet, interval time.Duration) {
	t := time.NewTicker(2 * interval)
	defer t.Stop()
	on := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		on = !on
		if on {
			_ = fleet.SetFaults("bmc-00040", sim.Faults{Silent: true})
			_ = fleet.SetFaults("bmc-00041", sim.Faults{WrongPassword: true})
		} else {
			_ = fleet.ClearFaults("bmc-00040")
			_ = fleet.ClearFaults("bmc-00041")
		}
	}
}
