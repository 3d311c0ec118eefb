package proc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Spec says how to start a long-running child that announces on stdout
// that it is ready (a simulator, a server).
type Spec struct {
	Argv   []string // the command, taskset prefix included
	Env    []string
	Name   string // in the process table and its log lines ("lightsout sim")
	Desc   string // in the error when it cannot start ("the simulator")
	Stdout string // file the child's stdout is copied to
	Stderr string // file the child's stderr goes to
	Ready  string // a stdout line containing this says the child is ready
}

// Child is a running child process, in its own process group and
// registered in the Table that started it until it exits.
type Child struct {
	PID     int
	Started time.Time // just before the process was started

	cmd        *exec.Cmd
	stderr     string
	ready      chan string
	exited     chan struct{}
	exitStatus string
}

// Start starts the child in its own process group, registers it, copies
// its stdout to spec.Stdout and watches it for the ready line.
func (t *Table) Start(spec Spec) (*Child, error) {
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Env = spec.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &Child{cmd: cmd, stderr: spec.Stderr, ready: make(chan string, 1), exited: make(chan struct{})}
	fe, err := os.Create(spec.Stderr)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = fe
	c.Started = time.Now()
	if err := cmd.Start(); err != nil {
		fe.Close()
		return nil, fmt.Errorf("starting %s: %v", spec.Desc, err)
	}
	fe.Close()
	c.PID = cmd.Process.Pid
	t.Add(c.PID, spec.Name)
	log, _ := os.Create(spec.Stdout)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if log != nil {
				fmt.Fprintln(log, line)
			}
			if strings.Contains(line, spec.Ready) {
				select {
				case c.ready <- line:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		if log != nil {
			log.Close()
		}
	}()
	go func() {
		_ = cmd.Wait()
		if cmd.ProcessState != nil {
			c.exitStatus = cmd.ProcessState.String()
		}
		t.Remove(c.PID)
		close(c.exited)
	}()
	return c, nil
}

// WaitReady waits at most timeout for the ready line and returns it. When
// the child exits first, or the time runs out (then stop is called first),
// the error says so, naming the child desc ("the server") and quoting the
// end of its stderr.
func (c *Child) WaitReady(timeout time.Duration, desc string, stop func()) (string, error) {
	select {
	case line := <-c.ready:
		return line, nil
	case <-c.exited:
		return "", fmt.Errorf("%s exited before it was ready (%v): %s", desc, c.cmd.ProcessState, c.StderrTail())
	case <-time.After(timeout):
		stop()
		return "", fmt.Errorf("%s was not ready after %v: %s", desc, timeout, c.StderrTail())
	}
}

// Alive says whether the child is still running.
func (c *Child) Alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// ExitStatus is how the child ended ("exit status 0", "signal: killed");
// "" while it runs.
func (c *Child) ExitStatus() string {
	if c.Alive() {
		return ""
	}
	return c.exitStatus
}

// Stop sends SIGTERM to the child's process group and waits for it to
// exit; if it has not after grace, it calls beforeKill (to say so), sends
// SIGKILL to the group and waits. A child that already exited is left
// alone.
func (c *Child) Stop(grace time.Duration, beforeKill func()) {
	if !c.Alive() {
		return
	}
	_ = syscall.Kill(-c.PID, syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(grace):
		beforeKill()
		_ = syscall.Kill(-c.PID, syscall.SIGKILL)
		<-c.exited
	}
}

// StderrTail is the end of what the child wrote on stderr, for an error
// message.
func (c *Child) StderrTail() string {
	return Tail(c.stderr)
}

// Tail is the last 2,000 bytes of a log file, trimmed, or "(no output on
// stderr)".
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	t := strings.TrimSpace(string(b))
	if len(t) > 2000 {
		t = "…" + t[len(t)-2000:]
	}
	if t == "" {
		t = "(no output on stderr)"
	}
	return t
}

// Kill sends SIGKILL to the child's process group (kill -9: no last
// words) and waits for it to exit.
func (c *Child) Kill() {
	if !c.Alive() {
		return
	}
	_ = syscall.Kill(-c.PID, syscall.SIGKILL)
	<-c.exited
}
