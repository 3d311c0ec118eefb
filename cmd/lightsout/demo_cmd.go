package main

import (
	"context"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/demo"
	"github.com/lightsout/lightsout/internal/server"
)

func newDemoCmd() *cobra.Command {
	var (
		count    int
		interval time.Duration
		dir      string
		basePort int
		listen   string
	)
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run the manager on a simulated fleet with faults of every kind, on embedded SQLite",
		Long: `demo starts a simulated fleet on loopback — two enclosures of 8 blades (one
enclosure manager dead), and one BMC per fault kind: silent, port closed, wrong
password, user removed, motherboard swapped (new GUID), two BMCs with swapped
addresses, session slots full, slow, lossy, timing out, malformed replies,
insecure settings — plus two BMCs whose faults come and go. It then starts the
manager (lightsout server) on embedded SQLite in --dir, imports the fleet, and
prints every state change the monitor declares and, as they change, the
incidents (lightsout incidents; the console's overview). Timeout floods are
measured over one minute here (the server's default is five), so the demo's
flood shows within about half a minute.

While it runs, use the API and the CLI from another terminal with the admin
token it prints (lightsout machines list, lightsout power status NAME, ...).
The fleet's inventory and password file are in --dir too, for lightsout check,
ipmitool or FreeIPMI. As root the BMCs get their own addresses (127.20.x.y,
port 623; when another demo holds them, the next free range, 127.21 on, and
the demo says which); otherwise, or with --base-port, they share 127.0.0.1 on
consecutive ports from --base-port.

The web console is at http://ADDRESS/ (the --listen address): log in by pasting
the admin token (the file it prints) or any API token; roles are the API's.`,
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
			ports := os.Geteuid() != 0 || cmd.Flags().Changed("base-port")
			return demo.Run(cmd.Context(), cmd.OutOrStdout(), demo.Options{Count: count, Interval: interval, Dir: dir, BasePort: basePort, Ports: ports, Listen: listen, Start: startDemoServer})
		},
	}
	c.Flags().IntVar(&count, "count", 200, "BMCs in the simulated fleet")
	c.Flags().DurationVar(&interval, "interval", 15*time.Second, "check interval per BMC")
	c.Flags().StringVar(&dir, "dir", "", "data directory: database, key, admin token, inventory (default: a new temporary directory)")
	c.Flags().IntVar(&basePort, "base-port", 30623, "first port, the BMCs sharing 127.0.0.1 (the default when not root; as root given explicitly)")
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8623", "API listen address")
	return c
}

// startDemoServer starts the demo's server as `lightsout server` does
// (startServer) and hands the demo what it uses of it.
func startDemoServer(ctx context.Context, c demo.ServerConfig, listen string) (demo.Running, error) {
	srv, httpSrv, ln, err := startServer(ctx, server.Config{DataDir: c.DataDir, Schedule: c.Schedule, Audit: c.Audit, Events: c.Events,
		AgentListen: c.AgentListen, Agents: agent.HubConfig{OnEvent: c.OnAgentEvent}, OnChange: c.OnChange}, listen)
	if err != nil {
		return demo.Running{}, err
	}
	return demo.Running{Manager: srv.Manager, Agents: srv.Agents, CA: srv.CA, AgentAddr: srv.AgentAddr, Addr: ln.Addr(), Stop: func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(sctx)
		srv.Close()
	}}, nil
}
