package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	simfleet "github.com/lightsout/lightsout/bench/internal/fleet"
	"github.com/lightsout/lightsout/bench/internal/proc"
	"github.com/lightsout/lightsout/bench/internal/progress"
	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/ipmi"
)

// server is what a benchmark run needs of the BMCs it checks: our
// simulator (simfleet.Sim) or a fleet of third-party ipmi_sim processes.
type server interface {
	Alive() bool
	StderrTail() string
	// CPUSeconds is the server side's CPU time so far (all its processes).
	// ipmi_sim's is time on a CPU from schedstat: each of hundreds of
	// processes runs for less than the 10 ms tick /proc/PID/stat counts in.
	CPUSeconds() float64
	// Totals are the server's session counters; an error where it keeps
	// none.
	Totals(timeout time.Duration) (simfleet.Totals, error)
	Stop()
}

// ipmiSimFleet is n OpenIPMI ipmi_sim processes, one BMC each, on
// 127.2.x.y port 623: BMCs nobody here wrote, so that lightsout's rate and
// CPU per host are measured against a server whose cost is not ours.
type ipmiSimFleet struct {
	procs []*exec.Cmd
	wg    sync.WaitGroup // one per process, done when it has exited
	dir   string
	mu    sync.Mutex
	dead  []string // "pid N: status" of processes that exited early
}

var errNoCounters = errors.New("ipmi_sim keeps no session counters the benchmark can read")

// ipmiSimAddr is BMC i's address (i from 0): 127.2.0.1 … , 250 per /24.
func ipmiSimAddr(i int) string { return fmt.Sprintf("127.2.%d.%d", i/250, i%250+1) }

// startIPMISimFleet writes each BMC's configuration (RMCP+ with the
// default cipher suites, one admin user, its own GUID) under dir, starts
// them all on CPU simCPU, waits until every one answers a presence ping,
// and writes dir/fleet.yaml and the password file like `lightsout sim
// --export-inventory` does.
func startIPMISimFleet(bin, dir string, n int, readyTimeout time.Duration) (*ipmiSimFleet, error) {
	pw, err := simfleet.WritePassword(filepath.Join(dir, "pw"))
	if err != nil {
		return nil, err
	}
	f := &ipmiSimFleet{dir: dir}
	inv := &inventory.Inventory{}
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n"
	if err := os.WriteFile(filepath.Join(dir, "sim.emu"), []byte(emu), 0o600); err != nil {
		return nil, err
	}
	progress.Logf("starting %d ipmi_sim processes on 127.2.x.y:623", n)
	addrs := make([]netip.AddrPort, n)
	for i := 0; i < n; i++ {
		var g guid.GUID
		_, _ = rand.Read(g[:])
		addr := ipmiSimAddr(i)
		addrs[i] = netip.AddrPortFrom(netip.MustParseAddr(addr), 623)
		bdir := filepath.Join(dir, fmt.Sprintf("bmc-%05d", i+1))
		if err := os.MkdirAll(filepath.Join(bdir, "state"), 0o700); err != nil {
			return f, err
		}
		conf := fmt.Sprintf(`name "bmc-%05d"
set_working_mc 0x20
  startlan 1
    addr %s 623
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid %s
  endlan
  user 2 true "admin" "%s" admin 10 md5
`, i+1, addr, g.Hex(), pw)
		if err := os.WriteFile(filepath.Join(bdir, "lan.conf"), []byte(conf), 0o600); err != nil {
			return f, err
		}
		argv := proc.Pinned(pin.CPU(simCPU), []string{bin, "-n", "-c", "lan.conf", "-f", "../sim.emu", "-s", "state"})
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = bdir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if se, err := os.Create(filepath.Join(bdir, "stderr")); err == nil {
			cmd.Stderr = se
			defer se.Close()
		}
		if err := cmd.Start(); err != nil {
			return f, fmt.Errorf("starting ipmi_sim: %v", err)
		}
		running.Add(cmd.Process.Pid, "ipmi_sim")
		f.procs = append(f.procs, cmd)
		f.wg.Add(1)
		go func(c *exec.Cmd) {
			defer f.wg.Done()
			err := c.Wait()
			running.Remove(c.Process.Pid)
			f.mu.Lock()
			f.dead = append(f.dead, fmt.Sprintf("pid %d: %v", c.Process.Pid, err))
			f.mu.Unlock()
		}(cmd)
		inv.Machines = append(inv.Machines, inventory.Machine{
			Name: fmt.Sprintf("bmc-%05d", i+1), GUID: g.RFC4122(), Address: addr, Port: 623,
			User: "admin", PasswordFile: filepath.Join(dir, "pw"),
		})
	}
	if err := inventory.Save(filepath.Join(dir, "fleet.yaml"), inv); err != nil {
		return f, err
	}
	// Ready: every BMC answers a presence ping (bounded by readyTimeout).
	eng, err := ipmi.New(ipmi.Config{})
	if err != nil {
		return f, err
	}
	defer eng.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var missing []string
	sem := make(chan struct{}, 256)
	for _, a := range addrs {
		wg.Add(1)
		sem <- struct{}{}
		go func(a netip.AddrPort) {
			defer func() { <-sem; wg.Done() }()
			for ctx.Err() == nil {
				pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				_, err := eng.Ping(pctx, a)
				pcancel()
				if err == nil {
					return
				}
			}
			mu.Lock()
			missing = append(missing, a.Addr().String())
			mu.Unlock()
		}(a)
	}
	wg.Wait()
	if len(missing) > 0 {
		return f, fmt.Errorf("%d of %d ipmi_sim BMCs did not answer a presence ping within %v (first: %s; %s)",
			len(missing), n, readyTimeout, missing[0], f.StderrTail())
	}
	progress.Logf("%d ipmi_sim BMCs ready", n)
	return f, nil
}

func (f *ipmiSimFleet) Alive() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dead) == 0
}

func (f *ipmiSimFleet) StderrTail() string {
	f.mu.Lock()
	dead := strings.Join(f.dead, "; ")
	f.mu.Unlock()
	if dead != "" {
		return "ipmi_sim exited: " + dead
	}
	return ""
}

func (f *ipmiSimFleet) CPUSeconds() float64 {
	var s float64
	for _, c := range f.procs {
		v, _ := proc.RunSeconds(c.Process.Pid)
		s += v
	}
	return s
}

func (f *ipmiSimFleet) Totals(time.Duration) (simfleet.Totals, error) {
	return simfleet.Totals{}, errNoCounters
}

// Stop ends every ipmi_sim this fleet started, by PID, and waits for them.
func (f *ipmiSimFleet) Stop() {
	if len(f.procs) == 0 {
		return
	}
	progress.Logf("stopping %d ipmi_sim processes", len(f.procs))
	for _, c := range f.procs {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	f.wg.Wait()
	f.procs = nil
}
