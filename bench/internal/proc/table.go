// Package proc runs and measures the benchmarks' child processes: a table
// of the process groups a benchmark started, so that an error or Ctrl-C
// kills exactly those (by PID) and nothing else; children started in their
// own process group that print a ready line, stopped with SIGTERM and then
// SIGKILL; CPU pinning with taskset; the environment and RLIMIT_NOFILE
// children inherit; this process's own run, cut short by Ctrl-C; and
// readings from /proc (a process's CPU time and memory, the machine's busy
// CPU time and CPU model) and uname(2) (the kernel).
package proc

import (
	"sort"
	"sync"
	"syscall"

	"github.com/lightsout/lightsout/bench/internal/progress"
)

// Table tracks the process groups this program started, so that a
// timeout, an error or Ctrl-C kills exactly those and nothing else.
type Table struct {
	mu     sync.Mutex
	groups map[int]string
	closed bool // after KillAll: whatever starts now is killed at once
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{groups: map[int]string{}}
}

// Add registers the process group of pid (a child started with Setpgid)
// under a name for the log. After KillAll it kills the group instead.
func (t *Table) Add(pid int, what string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return
	}
	t.groups[pid] = what
}

// Remove forgets the process group of pid (its leader has exited).
func (t *Table) Remove(pid int) {
	t.mu.Lock()
	delete(t.groups, pid)
	t.mu.Unlock()
}

// KillAll sends sig to every process group still registered, and makes
// Add kill any process started afterwards. It returns how many it
// signalled.
func (t *Table) KillAll(sig syscall.Signal) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	pids := make([]int, 0, len(t.groups))
	for pid := range t.groups {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	for _, pid := range pids {
		progress.Logf("killing %s (process group %d) with %v", t.groups[pid], pid, sig)
		_ = syscall.Kill(-pid, sig)
	}
	return len(pids)
}
