package main

import (
	"github.com/lightsout/lightsout/bench/internal/proc"
)

// running is the table of the process groups this program started, so
// that an error or Ctrl-C kills exactly those and nothing else.
var running = proc.NewTable()

// pin: run the simulator on simCPU and the server on serverCPU.
var pin proc.Pinning

const (
	simCPU    = "0"
	serverCPU = "1"
)

// childEnv is our environment without LIGHTSOUT_PASSWORD and
// LIGHTSOUT_CPUPROFILE, plus extra.
func childEnv(extra ...string) []string {
	return proc.Env([]string{"LIGHTSOUT_PASSWORD", "LIGHTSOUT_CPUPROFILE"}, extra...)
}
