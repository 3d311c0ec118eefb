package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/sim"
)

type simFlags struct {
	count        int
	fleet        string
	baseAddr     string
	basePort     int
	passwordFile string
	export       string
	exportProto  string
	control      string
	seed         uint64
	slots        int
	redfish      bool
}

func newSimCmd() *cobra.Command {
	f := &simFlags{}
	c := &cobra.Command{
		Use:   "sim [--count N | --fleet FILE] [--export-inventory FILE]",
		Short: "Run a simulated fleet of IPMI 2.0 BMCs and enclosure managers on loopback, with fault injection",
		Long: `sim runs N simulated BMCs in one process, each a real IPMI endpoint over UDP
(RMCP+ and IPMI 1.5: ipmitool, FreeIPMI and lightsout check talk to it like to a
real BMC). Each has its own System GUID, admin account, chassis power, identify
LED, a few sensors and SEL entries, a vendor and firmware revision, and a
session table (4 slots by default).

Addresses: by default one loopback address per BMC on port 623 — 127.1.0.1,
127.1.0.2, ... (host parts .0 and .255 skipped) — which needs root. Without
root use --base-port: every BMC on 127.0.0.1 (or --base-addr) with consecutive
ports.

Enclosures, vendors, start-time faults and address swaps come from a fleet
file (--fleet; docs/simulator.md). Faults are injected at run time through the
control API (loopback HTTP, JSON):

  GET    /v1/bmcs, /v1/bmcs/{name}, /v1/enclosures, /v1/fleet
  PUT    /v1/bmcs/{name}/faults   {"silent":true} {"port_closed":true} {"wrong_password":true}
                                  {"user_removed":true} {"guid_replaced":true} {"slots_full":true}
                                  {"insecure":true} {"cipher0":true} {"anonymous":true}
                                  {"weak_auth":true} {"default_password":true} {"slow":"2s"} {"lossy":0.3}
                                  {"timeout_rate":0.2} {"malformed":0.1} {"session_hang":true}
                                  Redfish: {"cert_replaced":true} {"busy_503":true}
                                  {"redfish_no_sessions":true} {"redfish_no_basic":true}
                                  {"redfish_session_limit":3} {"redfish_tls_legacy":true}
                                  {"quirk":["no_ping","suite3_only","opensess_0x01","guid_0xd4"]} (real
                                  BMCs' deviations: no presence pong; pyghmi's suite 3 to any proposal;
                                  Intel M50CYP's 0x01 for any suite but 17; Supermicro's 0xD4 to Get
                                  System GUID — docs/interop.md)
  DELETE /v1/bmcs/{name}/faults
  POST   /v1/swap                 {"a":"bmc-00001","b":"bmc-00002"}
  PUT    /v1/enclosures/{name}    {"down":true}

Every account (admin; operator and user when the fleet file asks) has the
fleet password: --password-file, the fleet file, or a random one written next
to the exported inventory (NAME.password, mode 0600). Passwords are never
printed. The exported inventory pins each BMC's registered GUID, so faults show
up in 'lightsout check' as the right state.

sim runs until interrupted (Ctrl-C, SIGTERM).`,
		Example: `  # 50 BMCs on 127.1.0.1-127.1.0.50:623 (root), inventory for lightsout check
  lightsout sim --count 50 --export-inventory fleet.yaml
  lightsout check --inventory fleet.yaml

  # without root: 127.0.0.1 ports 16230..16329, fixed control port
  lightsout sim --count 100 --base-port 16230 --control 127.0.0.1:8623 --export-inventory fleet.csv

  # then, from another terminal
  curl -s -X PUT -d '{"wrong_password":true}' http://127.0.0.1:8623/v1/bmcs/bmc-00007/faults
  curl -s -X PUT -d '{"down":true}' http://127.0.0.1:8623/v1/enclosures/enc-01`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSim(cmd, f) },
	}
	fl := c.Flags()
	fl.IntVar(&f.count, "count", sim.DefaultCount, "number of BMCs (blades included)")
	fl.StringVar(&f.fleet, "fleet", "", "fleet file (YAML): count, seed, vendors, enclosures, faults, ... (flags given explicitly override it)")
	fl.StringVar(&f.baseAddr, "base-addr", sim.DefaultBaseAddr, "first BMC's loopback address (with --base-port: the one address every BMC shares; default then 127.0.0.1)")
	fl.IntVar(&f.basePort, "base-port", 0, "put every BMC on one address with consecutive ports from this one (no root needed); 0: one address per BMC on port 623")
	fl.StringVar(&f.passwordFile, "password-file", "", "file holding the fleet password (first line); default: a random password, written next to the exported inventory")
	fl.StringVar(&f.export, "export-inventory", "", "write the fleet's inventory here (.yaml, .yml or .csv) for lightsout check")
	fl.StringVar(&f.control, "control", "127.0.0.1:0", "control API address (loopback only; port 0 picks a free port, printed when ready; \"\" disables it)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed for GUIDs, vendors, sensors, SEL and the random faults (same seed, same fleet)")
	fl.IntVar(&f.slots, "session-slots", sim.DefaultSessionSlots, "session slots per BMC")
	fl.BoolVar(&f.redfish, "redfish", false, "every BMC also serves Redfish over HTTPS (port 443 per address, or the TCP port numbered like its IPMI port); the exported inventory then has redfish accounts (--export-protocol ipmi for the IPMI ones)")
	fl.StringVar(&f.exportProto, "export-protocol", "", "the exported accounts' protocol: ipmi, or redfish (with --redfish); default redfish with --redfish, else ipmi")
	return c
}

func runSim(cmd *cobra.Command, f *simFlags) error {
	// The simulator allocates per datagram (go-ipmi's server) and lives
	// with a fixed working set: collect less often, keep CPU for serving.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	var cfg sim.Config
	if f.fleet != "" {
		var err error
		if cfg, err = sim.LoadConfig(f.fleet); err != nil {
			return usageErr("%v", err)
		}
	}
	changed := cmd.Flags().Changed
	if changed("count") || cfg.Count == 0 {
		cfg.Count = f.count
	}
	if changed("seed") || f.fleet == "" {
		cfg.Seed = f.seed
	}
	if changed("base-port") {
		cfg.BasePort = f.basePort
	}
	switch {
	case changed("base-addr"):
		cfg.BaseAddr = f.baseAddr
	case cfg.BaseAddr == "" && cfg.BasePort == 0:
		cfg.BaseAddr = f.baseAddr
	}
	if changed("redfish") {
		cfg.Redfish = f.redfish
	}
	if changed("session-slots") || cfg.SessionSlots == 0 {
		cfg.SessionSlots = f.slots
	}
	if f.passwordFile != "" {
		cfg.PasswordFile, cfg.Password = f.passwordFile, ""
	}
	if f.count < 1 && changed("count") {
		return usageErr("--count: must be at least 1, got %d", f.count)
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := sim.Run(ctx, cfg, sim.RunOptions{ExportInventory: f.export, ExportProtocol: strings.ToLower(f.exportProto), ControlAddr: f.control}, cmd.OutOrStdout())
	var fe *sim.FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return usageErr("%v", flagName(fe, f.fleet != ""))
	case errors.Is(err, context.Canceled):
		return nil
	}
	return &exitError{code: 1, err: err}
}

// flagName words a config error in terms of the flag that set the field,
// when a flag did.
func flagName(fe *sim.FieldError, fromFile bool) error {
	flags := map[string]string{
		"count": "--count", "base_addr": "--base-addr", "base_port": "--base-port",
		"password_file": "--password-file", "session_slots": "--session-slots",
		"control": "--control", "export-inventory": "--export-inventory", "export-protocol": "--export-protocol",
	}
	if fl, ok := flags[fe.Field]; ok && (fe.Line == 0 || !fromFile) {
		return errors.New(fl + ": " + fe.Reason)
	}
	return fe
}
