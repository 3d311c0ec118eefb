package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lightsout/lightsout/bench/internal/proc"
	"github.com/lightsout/lightsout/bench/internal/progress"
)

// procResult is one measured run of a client: one process, or several
// started together (shards) and counted as one run.
type procResult struct {
	Argvs     [][]string
	Wall      time.Duration // first start to last exit
	User, Sys time.Duration // summed over the processes (rusage of each child)
	MaxRSSKiB int64         // summed peak RSS of the processes (KiB)
	ExitCodes []int
	TimedOut  bool
	Err       error // could not start, or killed by a signal
	Stdouts   []string
	Stderrs   []string
}

func (r procResult) CPU() time.Duration { return r.User + r.Sys }

// running is the table of the process groups this program started, so
// that a timeout, an error or Ctrl-C kills exactly those and nothing else.
var running = proc.NewTable()

// runProcs starts every argv at once (each in its own process group, stdout
// and stderr to files), waits for all, and sums their resource usage. Each
// process is killed (its whole group, by PID) when timeout passes.
func runProcs(argvs [][]string, env []string, outPrefix string, timeout time.Duration) procResult {
	res := procResult{Argvs: argvs, ExitCodes: make([]int, len(argvs))}
	type one struct {
		start, end time.Time
		ru         *syscall.Rusage
		code       int
		timedOut   bool
		err        error
	}
	results := make([]one, len(argvs))
	var wg sync.WaitGroup
	for i, argv := range argvs {
		stdout := fmt.Sprintf("%s.%d.stdout", outPrefix, i)
		stderr := fmt.Sprintf("%s.%d.stderr", outPrefix, i)
		res.Stdouts = append(res.Stdouts, stdout)
		res.Stderrs = append(res.Stderrs, stderr)
		wg.Add(1)
		go func(i int, argv []string) {
			defer wg.Done()
			r := &results[i]
			r.code = -1
			fo, err := os.Create(stdout)
			if err != nil {
				r.err = err
				return
			}
			defer fo.Close()
			fe, err := os.Create(stderr)
			if err != nil {
				r.err = err
				return
			}
			defer fe.Close()
			argv = proc.Pinned(pin.CPU(clientCPU), argv)
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = env
			cmd.Stdin = nil
			cmd.Stdout, cmd.Stderr = fo, fe
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			r.start = time.Now()
			if err := cmd.Start(); err != nil {
				r.err = err
				r.end = time.Now()
				return
			}
			pid := cmd.Process.Pid
			running.Add(pid, shortName(argv[0]))
			var timedOut bool
			var tmu sync.Mutex
			timer := time.AfterFunc(timeout, func() {
				tmu.Lock()
				timedOut = true
				tmu.Unlock()
				progress.Logf("%s (pid %d) still running after %v: killing its process group", shortName(argv[0]), pid, timeout)
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			})
			werr := cmd.Wait()
			r.end = time.Now()
			timer.Stop()
			running.Remove(pid)
			tmu.Lock()
			r.timedOut = timedOut
			tmu.Unlock()
			if ps := cmd.ProcessState; ps != nil {
				if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
					r.ru = ru
				}
				r.code = ps.ExitCode()
				if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					r.err = fmt.Errorf("killed by signal %v", ws.Signal())
				}
			} else if werr != nil {
				r.err = werr
			}
		}(i, argv)
	}
	wg.Wait()
	var first, last time.Time
	for i, r := range results {
		res.ExitCodes[i] = r.code
		if r.timedOut {
			res.TimedOut = true
		}
		if r.err != nil && res.Err == nil {
			res.Err = r.err
		}
		if !r.start.IsZero() && (first.IsZero() || r.start.Before(first)) {
			first = r.start
		}
		if r.end.After(last) {
			last = r.end
		}
		if r.ru != nil {
			res.User += time.Duration(r.ru.Utime.Nano())
			res.Sys += time.Duration(r.ru.Stime.Nano())
			res.MaxRSSKiB += r.ru.Maxrss // KiB on Linux
		}
	}
	if !first.IsZero() {
		res.Wall = last.Sub(first)
	}
	return res
}

// runQuick runs a short helper command (version, probe) with a timeout and
// returns its combined output.
func runQuick(argv []string, env []string, timeout time.Duration) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	var b strings.Builder
	cmd.Stdout, cmd.Stderr = &b, &b
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	pid := cmd.Process.Pid
	running.Add(pid, shortName(argv[0]))
	timer := time.AfterFunc(timeout, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
	err := cmd.Wait()
	timer.Stop()
	running.Remove(pid)
	return b.String(), err
}

func shortName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// pin: run the simulator on simCPU and every client on clientCPU.
var pin proc.Pinning

const (
	simCPU    = "0"
	clientCPU = "1"
)
