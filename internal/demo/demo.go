// Package demo is the scenario `lightsout demo` runs: a simulated fleet
// (internal/sim) with a fault of every kind, the manager on embedded SQLite
// over it, in-process host agents, and a printer of what the manager
// declares. It lives beside the simulator, not in cmd: cmd parses the flags
// and hands over how to start the server.
package demo

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lightsout/lightsout/internal/agent"
	"github.com/lightsout/lightsout/internal/audit"
	"github.com/lightsout/lightsout/internal/events"
	"github.com/lightsout/lightsout/internal/hostlink"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/pki"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// Options is what `lightsout demo`'s flags set.
type Options struct {
	Count    int
	Interval time.Duration
	Dir      string
	BasePort int
	Ports    bool // the BMCs share 127.0.0.1 on ports from BasePort
	Listen   string
	// Start opens the server and serves its API on listen (cmd's, the one
	// `lightsout server` uses).
	Start func(ctx context.Context, cfg ServerConfig, listen string) (Running, error)
}

// ServerConfig is the server the demo asks Start for.
type ServerConfig struct {
	DataDir      string
	Schedule     state.Schedule
	Audit        audit.Config
	Events       events.Config
	AgentListen  string
	OnAgentEvent func(store.Event)      // the agents' events, as the hub records them
	OnChange     func(store.Transition) // every state change the monitor declares
}

// Running is the started server as the demo uses it. Start builds it from
// internal/server's Server: the demo does not import the composition root,
// which would put a floor on the import graph (internal/layers).
type Running struct {
	Manager   *manager.Manager
	Agents    *agent.Hub
	CA        *pki.CA
	AgentAddr net.Addr // nil without an agent listener
	Addr      net.Addr // the API's
	Stop      func()   // the API shut down, the server closed
}

// faults is one BMC per fault kind, after the 16 blades.
func faults() map[string]sim.Faults {
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

// Run runs the demo until ctx ends (or SIGINT, SIGTERM), printing to out.
func Run(parent context.Context, out io.Writer, o Options) error {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "lightsout-demo-")
		if err != nil {
			return err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	cfg := sim.Config{
		Count: o.Count, Seed: 2026,
		Enclosures: []sim.EnclosureConfig{{Name: "enc-a", Blades: 8}, {Name: "enc-b", Blades: 8}},
		Faults:     faults(),
		Swaps:      [][]string{{"bmc-00031", "bmc-00032"}},
	}
	var fleet *sim.Fleet
	var err error
	if o.Ports {
		cfg.BaseAddr, cfg.BasePort = "127.0.0.1", o.BasePort
		fleet, err = sim.New(cfg)
	} else {
		// One address per BMC from 127.20.0.1, clear of a default
		// `lightsout sim` (127.1.0.1 on); another demo's range is skipped.
		for octet := 20; octet < 30; octet++ {
			cfg.BaseAddr = fmt.Sprintf("127.%d.0.1", octet)
			if fleet, err = sim.New(cfg); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
				break
			}
			fmt.Fprintf(out, "%s is in use (another demo or simulator?): trying the next range\n", cfg.BaseAddr)
		}
	}
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

	// The manager, on embedded SQLite in dir, printing what it declares.
	changes := make(chan store.Transition, 1024)
	agentNews := make(chan store.Event, 256)
	sch := state.DefaultSchedule
	sch.Interval = o.Interval
	sch.AuthRetry = max(10*o.Interval, time.Minute)
	data := filepath.Join(dir, "data")
	// The security audit runs within the first minute (FirstSpread), so the
	// insecure BMC shows its findings soon.
	srv, err := o.Start(ctx, ServerConfig{DataDir: data, Schedule: sch,
		Audit: audit.Config{Every: 24 * time.Hour, FirstSpread: time.Minute},
		// Timeout floods measured over a minute, not the default five, so
		// the demo's flood (host-c's link, bmc-00028) shows within about
		// half a minute; the threshold is the default.
		Events:      events.Config{Flood: events.FloodConfig{Window: time.Minute}},
		AgentListen: "127.0.0.1:0",
		// What the agents report about their host links, printed below.
		OnAgentEvent: func(e store.Event) {
			switch e.Code {
			case agent.EvLinkPath, agent.EvLinkState:
				select {
				case agentNews <- e:
				default:
				}
			}
		},
		OnChange: func(t store.Transition) {
			select {
			case changes <- t:
			default: // the printer is behind; the store has it all
			}
		}}, o.Listen)
	if err != nil {
		return err
	}
	defer srv.Stop()
	if n, err := importFleet(ctx, srv, fleet); err != nil {
		return fmt.Errorf("import the demo fleet: %w", err)
	} else {
		fmt.Fprintf(out, "lightsout demo: %d simulated BMCs on %s (fault control API %s)\n", n, fleet.AddrRange(), ctl.URL())
	}
	api := "http://" + srv.Addr.String()
	tok := filepath.Join(data, "admin.token")
	fmt.Fprintf(out, "  manager: API %s/api/v1 (OpenAPI %s/api/v1/openapi.json), metrics %s/metrics\n", api, api, api)
	fmt.Fprintf(out, "  data: %s (SQLite, key, admin token %s)\n", data, tok)
	fmt.Fprintf(out, "  console: %s/ — log in by pasting the admin token from %s\n", api, tok)
	fmt.Fprintf(out, "  try:  lightsout machines list --server %s --token-file %s\n", api, tok)
	fmt.Fprintf(out, "        lightsout power status bmc-00001 --server %s --token-file %s\n", api, tok)
	fmt.Fprintf(out, "  each BMC is checked every %v; state changes follow. Ctrl-C stops.\n\n", o.Interval)
	go flapFaults(ctx, fleet, o.Interval)
	if srv.AgentAddr != nil {
		n := startAgents(ctx, srv, filepath.Join(dir, "agents"))
		fmt.Fprintf(out, "  agents: %d host agents enrolled (one stops after a minute): lightsout domain status --server %s --token-file %s\n", n, api, tok)
		fmt.Fprintf(out, "  agent listener: %s (a join token: lightsout agent token create --out FILE; then on a host: lightsout agent run --manager %s --data DIR --join-token-file FILE; docs/agent.md)\n\n", srv.AgentAddr, srv.AgentAddr)
	}

	lastIncidents := ""
	tick := time.NewTicker(max(o.Interval, 5*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "lightsout demo: stopped")
			return nil
		case e := <-agentNews:
			fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05"), e.Message)
		case t := <-changes:
			if t.From == state.Unknown && t.To == state.Connectable && len(t.Conditions) == 0 {
				continue // the healthy majority: the summary line counts them
			}
			label := string(t.To)
			if t.Reason != "" {
				label += " (" + string(t.Reason) + ")"
			}
			for _, c := range t.Conditions {
				label += " +" + string(c)
			}
			// Stamped when declared: the observation's own time is when its
			// check began, and slow checks (timeouts) end after quick ones.
			fmt.Fprintf(out, "%s  %-10s %s → %s — %s\n", time.Now().Format("15:04:05"), t.Machine, t.From, label, t.Message)
		case <-tick.C:
			sum, err := srv.Manager.Summarize(ctx)
			if err == nil {
				fmt.Fprintf(out, "%s  fleet: %d Connectable · %d NotResponding · %d NotAuthenticated · %d Invalid · %d Unknown\n",
					time.Now().Format("15:04:05"), sum.OOB[state.Connectable], sum.OOB[state.NotResponding],
					sum.OOB[state.NotAuthenticated], sum.OOB[state.Invalid], sum.OOB[state.Unknown])
			}
			// The incidents, when they changed: what the console's
			// overview leads with.
			if incs, err := srv.Manager.Incidents(ctx); err == nil {
				var ids, lines []string
				for _, inc := range incs {
					ids = append(ids, inc.ID)
					lines = append(lines, fmt.Sprintf("    %-8s %s", inc.Severity, inc.Title))
				}
				if k := strings.Join(ids, "\n"); k != lastIncidents {
					lastIncidents = k
					fmt.Fprintf(out, "%s  incidents: %d (lightsout incidents; the console's overview)\n%s\n", time.Now().Format("15:04:05"), len(incs), strings.Join(lines, "\n"))
				}
			}
		}
	}
}

// importFleet imports the fleet's inventory into the manager, as an admin.
func importFleet(ctx context.Context, srv Running, fleet *sim.Fleet) (int, error) {
	inv := fleet.Inventory("")
	pw := map[string][]byte{}
	for _, m := range inv.Machines {
		pw[m.Name] = []byte(fleet.Password())
	}
	epw := map[string][]byte{}
	for _, e := range inv.Enclosures {
		epw[e.Name] = []byte(fleet.Password())
	}
	return srv.Manager.Import(ctx, manager.Actor{Name: "demo", Role: store.RoleAdmin}, inv, pw, epw, false)
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

// startAgents enrolls a few host agents with one-time join tokens and
// runs them in-process against the manager's agent listener, each with a
// host link to a simulated BMC link endpoint on loopback:
//
//	host-a  link Up over IPv4
//	host-b  IPv4 refused: link Up over the IPv6 fallback (Down without ::1); an older agent version
//	host-c  the BMC's link never answers: timeouts counted, a timeout flood
//	host-d  the BMC trusts another CA: link NotTrusted; the agent stops after a minute (Down)
func startAgents(ctx context.Context, srv Running, dir string) int {
	started := 0
	endpoint := func(addr string, cas *x509.CertPool) *hostlink.Endpoint {
		cert, err := hostlink.SelfSigned([]string{"127.0.0.1", "::1"}, time.Now(), 10*365*24*time.Hour)
		if err != nil {
			return nil
		}
		ep, err := hostlink.NewEndpoint(hostlink.EndpointConfig{Addr: addr, Cert: cert, ClientCAs: cas,
			UUID: fmt.Sprintf("4c4c4544-0000-1000-8000-%012d", started+1), Firmware: "7.00.00"})
		if err != nil {
			return nil
		}
		context.AfterFunc(ctx, func() { ep.Close() })
		return ep
	}
	closedPort := func() string { // an address nothing listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "127.0.0.1:9"
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	var otherCA *pki.CA // a CA the agents do not hold certificates of
	if err := os.MkdirAll(filepath.Join(dir, "other-ca"), 0o700); err == nil {
		otherCA, _ = pki.LoadOrCreateCA(filepath.Join(dir, "other-ca"))
	}
	for _, name := range []string{"host-a", "host-b", "host-c", "host-d"} {
		tok, _, err := srv.Agents.CreateJoinToken(ctx, 0)
		if err != nil {
			continue
		}
		link := &hostlink.Config{DisableInBand: true, DisableIPv6: true, Timeout: 2 * time.Second}
		cfg := agent.Config{Manager: srv.AgentAddr.String(), DataDir: filepath.Join(dir, name), JoinToken: tok, Name: name,
			Link: link, LinkInterval: 30 * time.Second}
		actx := ctx
		switch name {
		case "host-a":
			if ep := endpoint("127.0.0.1:0", srv.CA.Pool()); ep != nil {
				link.IPv4 = ep.Addr()
			}
		case "host-b":
			link.IPv4 = closedPort()
			if ep := endpoint("[::1]:0", srv.CA.Pool()); ep != nil {
				link.IPv6, link.DisableIPv6 = ep.Addr(), false
			}
			cfg.Version = "0.4.0"
		case "host-c":
			if ep := endpoint("127.0.0.1:0", srv.CA.Pool()); ep != nil {
				ep.SetFault(hostlink.FaultSilent)
				link.IPv4 = ep.Addr()
			}
			link.Timeout, link.Retries, cfg.LinkInterval = 300*time.Millisecond, 2, 5*time.Second
		case "host-d":
			if otherCA != nil {
				if ep := endpoint("127.0.0.1:0", otherCA.Pool()); ep != nil {
					link.IPv4 = ep.Addr()
				}
			}
			var cancel context.CancelFunc
			actx, cancel = context.WithTimeout(ctx, time.Minute)
			_ = cancel // ends with the timeout or the demo
		}
		if link.IPv4 == "" {
			link.IPv4 = closedPort()
		}
		go func() { _ = agent.Run(actx, cfg) }()
		started++
	}
	return started
}
