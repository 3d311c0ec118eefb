// Package fleet starts the simulated BMC fleets the benchmarks measure
// against: `lightsout sim` processes — one, or several shards of a fleet
// too large for one process's RLIMIT_NOFILE (one UDP socket per BMC) —
// each in its own process group, waited for until ready and stopped by
// PID; and reads their control API: every BMC's counters, power state and
// System GUID.
package fleet

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/bench/internal/proc"
	"github.com/lightsout/lightsout/bench/internal/progress"
)

// Options are a simulator process's command line and surroundings.
type Options struct {
	Bin          string // the lightsout binary
	Dir          string // scratch directory: sim.stdout and sim.stderr go here
	Count        int    // --count
	Seed         int    // --seed; 0: the simulator's default
	BaseAddr     string // --base-addr; "": the default (127.1.0.1)
	Inventory    string // --export-inventory
	PasswordFile string // --password-file
	FleetFile    string // --fleet; "": none
	Redfish      bool   // --redfish: every BMC serves Redfish over HTTPS too
	Control      string // --control; "": the default (127.0.0.1:0)
	CPU          string // taskset -c CPU; "": not pinned
	Env          []string
	Procs        *proc.Table // the table the process is registered in
	ReadyTimeout time.Duration
}

// Sim is a running `lightsout sim`.
type Sim struct {
	PID        int
	Count      int
	Inventory  string // the exported inventory
	ControlURL string // http://127.0.0.1:PORT, "" if it printed none
	ReadyLine  string
	Startup    time.Duration // process start to ready line

	child *proc.Child
	name  string // in log lines: "simulator", "simulator shard 2"
	desc  string // in errors: "the simulator", "simulator shard 2"
}

var controlRE = regexp.MustCompile(`control API (http://\S+)`)

// Start starts a fleet's only simulator process and waits (at most
// o.ReadyTimeout) for its ready line and its exported inventory.
func Start(o Options) (*Sim, error) {
	return start(o, -1)
}

// StartShard starts shard index of a fleet split over several simulator
// processes and waits (at most o.ReadyTimeout) for its ready line, its
// control API address and its exported inventory.
func StartShard(index int, o Options) (*Sim, error) {
	return start(o, index)
}

func start(o Options, shard int) (*Sim, error) {
	s := &Sim{Count: o.Count, Inventory: o.Inventory, name: "simulator", desc: "the simulator"}
	if shard >= 0 {
		s.name = fmt.Sprintf("simulator shard %d", shard)
		s.desc = s.name
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	argv := []string{o.Bin, "sim", "--count", strconv.Itoa(o.Count)}
	if o.Seed != 0 {
		argv = append(argv, "--seed", strconv.Itoa(o.Seed))
	}
	if o.BaseAddr != "" {
		argv = append(argv, "--base-addr", o.BaseAddr)
	}
	argv = append(argv, "--export-inventory", o.Inventory, "--password-file", o.PasswordFile)
	if o.FleetFile != "" {
		argv = append(argv, "--fleet", o.FleetFile)
	}
	if o.Redfish {
		argv = append(argv, "--redfish")
	}
	if o.Control != "" {
		argv = append(argv, "--control", o.Control)
	}
	progress.Logf("starting %s: %s", s.name, strings.Join(argv[1:], " "))
	c, err := o.Procs.Start(proc.Spec{
		Argv: proc.Pinned(o.CPU, argv), Env: o.Env,
		Name: "lightsout sim", Desc: "the simulator",
		Stdout: filepath.Join(o.Dir, "sim.stdout"), Stderr: filepath.Join(o.Dir, "sim.stderr"),
		Ready: "BMCs ready",
	})
	if err != nil {
		return nil, err
	}
	s.child, s.PID = c, c.PID
	line, err := c.WaitReady(o.ReadyTimeout, s.desc, s.Stop)
	if err != nil {
		return nil, err
	}
	s.ReadyLine = line
	s.Startup = time.Since(c.Started)
	if m := controlRE.FindStringSubmatch(line); m != nil {
		s.ControlURL = strings.TrimRight(m[1], ".;,")
	}
	if shard >= 0 && s.ControlURL == "" {
		s.Stop()
		return nil, fmt.Errorf("%s printed no control API address: %q", s.desc, s.ReadyLine)
	}
	// The inventory is written before the ready line; make sure it is there.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := os.Stat(o.Inventory); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("%s is ready but wrote no inventory", s.desc)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ready := strings.TrimPrefix(s.ReadyLine, "lightsout sim: ")
	if shard >= 0 {
		progress.Logf("%s ready in %v (pid %d): %s", s.name, s.Startup.Round(time.Millisecond), s.PID, ready)
	} else {
		progress.Logf("%s ready (pid %d): %s", s.name, s.PID, ready)
	}
	return s, nil
}

// Stop sends SIGTERM to the simulator's process group, and SIGKILL if it
// has not exited 15 s later.
func (s *Sim) Stop() {
	if !s.child.Alive() {
		return
	}
	progress.Logf("stopping %s (pid %d)", s.name, s.PID)
	s.child.Stop(15*time.Second, func() {
		progress.Logf("%s (pid %d) ignored SIGTERM: killing its process group", s.name, s.PID)
	})
}

// Alive says whether the simulator is still running.
func (s *Sim) Alive() bool { return s.child.Alive() }

// StderrTail is the end of the simulator's stderr, for an error message.
func (s *Sim) StderrTail() string { return s.child.StderrTail() }

// CPUSeconds is the simulator's CPU time so far (user + system, /proc); 0
// when it cannot be read.
func (s *Sim) CPUSeconds() float64 {
	v, _ := proc.CPUSeconds(s.PID)
	return v
}

// WritePassword writes a new random fleet password to path (mode 0600,
// one line) and returns it: 16 letters and digits, as IPMI 1.5 takes at
// most 16 bytes.
func WritePassword(path string) (string, error) {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	for i := range buf {
		buf[i] = alphabet[int(buf[i])%len(alphabet)]
	}
	if err := os.WriteFile(path, append(buf, '\n'), 0o600); err != nil {
		return "", err
	}
	return string(buf), nil
}
