package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// procTable tracks the process groups this program started, so that an
// error or Ctrl-C kills exactly those and nothing else.
type procTable struct {
	mu     sync.Mutex
	groups map[int]string
	closed bool // after killAll: whatever starts now is killed at once
}

var running = &procTable{groups: map[int]string{}}

func (p *procTable) add(pid int, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return
	}
	p.groups[pid] = what
}

func (p *procTable) remove(pid int) {
	p.mu.Lock()
	delete(p.groups, pid)
	p.mu.Unlock()
}

// killAll sends sig to every process group still registered, and makes add
// kill any process started afterwards. It returns how many it signalled.
func (p *procTable) killAll(sig syscall.Signal) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	pids := make([]int, 0, len(p.groups))
	for pid := range p.groups {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	for _, pid := range pids {
		logf("killing %s (process group %d) with %v", p.groups[pid], pid, sig)
		_ = syscall.Kill(-pid, sig)
	}
	return len(pids)
}

// pinCPUs: run the simulator on simCPU and the server on serverCPU.
var pinCPUs bool

const (
	simCPU    = "0"
	serverCPU = "1"
)

// pinned prefixes argv with taskset when pinning is on. taskset execs the
// program in place, so the PID we get is the program's own.
func pinned(cpu string, argv []string) []string {
	if !pinCPUs {
		return argv
	}
	return append([]string{"taskset", "-c", cpu}, argv...)
}

// cpuSeconds is a process's CPU time so far (user + system, all threads),
// from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which is in parentheses).
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

// memInfo is a process's memory from /proc/PID/status and smaps_rollup, in
// KiB.
type memInfo struct {
	RSS, HWM                   int64 // VmRSS, VmHWM
	RssAnon, RssFile, RssShmem int64 // status
	Threads                    int64
	FDs                        int
}

func readMem(pid int) (memInfo, error) {
	var m memInfo
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSS = n
		case "VmHWM":
			m.HWM = n
		case "RssAnon":
			m.RssAnon = n
		case "RssFile":
			m.RssFile = n
		case "RssShmem":
			m.RssShmem = n
		case "Threads":
			m.Threads = n
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		m.FDs = len(ents)
	}
	return m, sc.Err()
}

// raiseNofile sets the soft RLIMIT_NOFILE to the hard limit, and tries to
// raise the hard limit to want first (that needs CAP_SYS_RESOURCE). Calling
// Setrlimit ourselves also makes Go pass the raised limit on to children (it
// otherwise restores the original soft limit in every child). It returns
// the soft limit now in force.
func raiseNofile(want uint64) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if want > rl.Max {
		up := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up); err == nil {
			return want
		} else {
			logf("cannot raise the hard RLIMIT_NOFILE from %d to %d: %v (no CAP_SYS_RESOURCE here?)", rl.Max, want, err)
		}
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		logf("warning: raising RLIMIT_NOFILE: %v", err)
	}
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// childEnv is our environment without LIGHTSOUT_PASSWORD and
// LIGHTSOUT_CPUPROFILE, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LIGHTSOUT_PASSWORD=") || strings.HasPrefix(kv, "LIGHTSOUT_CPUPROFILE=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// machineBusy is the CPU time every CPU spent busy so far (user, nice,
// system, irq, softirq, steal; not idle or iowait), in seconds, from
// /proc/stat.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		v, _ := strconv.ParseFloat(f[i], 64)
		busy += v
	}
	return busy / 100 // USER_HZ
}
