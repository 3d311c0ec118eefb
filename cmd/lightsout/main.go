// Command lightsout keeps the management channels of a server fleet alive
// and says why one broke. This file only wires subcommands; the work lives
// in internal/.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// exitError carries a process exit status out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks bad input: the command prints one line and exits 2.
func usageErr(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "lightsout",
		Short: "Keep a fleet's management channels (BMC, agent, host link) alive, and say why one broke",
		Long: `lightsout checks the management channels of physical servers — manager → BMC over
IPMI 2.0 RMCP+ or Redfish (HTTPS; a session or HTTP Basic, as the BMC offers),
manager ↔ host agent over mutual TLS, and each agent's own path to its BMC —
classifies each as Connectable, NotResponding, NotAuthenticated or Invalid, and
says why and what to do.

It runs as a one-shot checker (check) or as a management server (server) that
watches every channel continuously, stores each state change with its evidence,
diagnoses failures (diag), runs power and lifecycle operations, and serves a web
console, a REST API and metrics; most other commands are the server's CLI
(--server, default http://127.0.0.1:8623): incidents lists what is wrong,
grouped by cause, with remedies. Host agents: agent (on each host),
domain status (from the manager). Every command that prints records takes
-o table|wide|json|yaml and --out FILE.

Start with:
  lightsout demo                                           # the manager on a faulty simulated fleet
  lightsout sim --count 50 --export-inventory fleet.yaml   # a simulated fleet on loopback
  lightsout check --inventory fleet.yaml                   # check every BMC in it, once
  lightsout server --data DIR                              # the manager; then: lightsout import, machines, power`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%v (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(newCheckCmd(), newSimCmd(), newDemoCmd(), newServerCmd())
	// Through the management server's API (client.go).
	root.AddCommand(newMachinesCmd(), newAccountsCmd(), newEnclosuresCmd(), newImportCmd(), newExportCmd(),
		newPowerCmd(), newAllocateCmd(), newAdoptCmd(), newAcceptCertCmd(), newReplaceCmd(), newRegisterCmd(),
		newHistoryCmd(), newIncidentsCmd(), newEventsCmd(), newAuditCmd(), newTokenCmd(), newDiagCmd())
	root.AddCommand(newSecurityCmd())
	root.AddCommand(newAgentCmd(), newDomainCmd())
	wireOutFiles(root) // --out FILE on every command that prints records (output.go)
	root.AddCommand(newInstancesCmd())
	return root
}

func main() {
	os.Exit(run())
}

// run executes the command line and returns the exit status. With
// LIGHTSOUT_CPUPROFILE=FILE set, a CPU profile of the run is written there
// (for development: go tool pprof FILE); with LIGHTSOUT_MEMPROFILE=FILE, a
// heap profile at its end (allocations of the whole run: go tool pprof
// -sample_index=alloc_space FILE).
func run() int {
	if path := os.Getenv("LIGHTSOUT_MEMPROFILE"); path != "" {
		runtime.MemProfileRate = 4096
		defer func() {
			runtime.GC() // the profile is as of the last collection
			if f, err := os.Create(path); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if path := os.Getenv("LIGHTSOUT_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	err := newRoot().Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "lightsout:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// cobra's own errors (unknown command, bad args) are usage errors too.
	return 2
}
