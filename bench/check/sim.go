package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// simProc is a running `lightsout sim`, a separate process in its own
// process group.
type simProc struct {
	cmd        *exec.Cmd
	pid        int
	controlURL string
	readyLine  string
	exited     chan struct{}
	errPath    string
}

var controlRE = regexp.MustCompile(`control API (http://\S+)`)

// startSim starts `lightsout sim` and waits (at most readyTimeout) for its
// ready line.
func startSim(bin, dir string, count int, fleetFile string, readyTimeout time.Duration) (*simProc, error) {
	argv := []string{bin, "sim", "--count", strconv.Itoa(count),
		"--export-inventory", dir + "/fleet.yaml", "--password-file", dir + "/pw"}
	if fleetFile != "" {
		argv = append(argv, "--fleet", fleetFile)
	}
	logf("starting simulator: %s", strings.Join(argv[1:], " "))
	argv = pinned(simCPU, argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = childEnv(nil)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &simProc{cmd: cmd, exited: make(chan struct{}), errPath: dir + "/sim.stderr"}
	fe, err := os.Create(s.errPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = fe
	if err := cmd.Start(); err != nil {
		fe.Close()
		return nil, fmt.Errorf("starting the simulator: %v", err)
	}
	fe.Close()
	s.pid = cmd.Process.Pid
	running.add(s.pid, "lightsout sim")
	ready := make(chan string, 1)
	log, _ := os.Create(dir + "/sim.stdout")
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if log != nil {
				fmt.Fprintln(log, line)
			}
			if strings.Contains(line, "BMCs ready") {
				select {
				case ready <- line:
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
		running.remove(s.pid)
		close(s.exited)
	}()
	select {
	case line := <-ready:
		s.readyLine = line
		if m := controlRE.FindStringSubmatch(line); m != nil {
			s.controlURL = strings.TrimRight(m[1], ".;,")
		}
	case <-s.exited:
		return nil, fmt.Errorf("the simulator exited before it was ready (%v): %s", cmd.ProcessState, s.stderrTail())
	case <-time.After(readyTimeout):
		s.stop()
		return nil, fmt.Errorf("the simulator was not ready after %v: %s", readyTimeout, s.stderrTail())
	}
	// The inventory is written before the ready line; make sure it is there.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := os.Stat(dir + "/fleet.yaml"); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("the simulator is ready but wrote no inventory")
		}
		time.Sleep(50 * time.Millisecond)
	}
	logf("simulator ready (pid %d): %s", s.pid, strings.TrimPrefix(s.readyLine, "lightsout sim: "))
	return s, nil
}

func (s *simProc) stderrTail() string {
	b, _ := os.ReadFile(s.errPath)
	t := strings.TrimSpace(string(b))
	if len(t) > 2000 {
		t = "…" + t[len(t)-2000:]
	}
	if t == "" {
		t = "(no output on stderr)"
	}
	return t
}

// stop sends SIGTERM to the simulator's process group, and SIGKILL if it
// has not exited 15 s later.
func (s *simProc) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	logf("stopping simulator (pid %d)", s.pid)
	_ = syscall.Kill(-s.pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		logf("simulator (pid %d) ignored SIGTERM: killing its process group", s.pid)
		_ = syscall.Kill(-s.pid, syscall.SIGKILL)
		<-s.exited
	}
}

func (s *simProc) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// cpuSeconds is the simulator's CPU time so far (user+system, /proc).
func (s *simProc) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses).
	str := string(b)
	i := strings.LastIndexByte(str, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(str[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// simCounters are the sums of the per-BMC counters of the control API.
type simCounters struct {
	PacketsIn       int64
	SessionsOpened  int64
	SessionsOpen    int64
	SessionsRefused int64
	AuthAttempts    int64
	AuthFailures    int64
}

func (a simCounters) sub(b simCounters) simCounters {
	return simCounters{
		PacketsIn:       a.PacketsIn - b.PacketsIn,
		SessionsOpened:  a.SessionsOpened - b.SessionsOpened,
		SessionsOpen:    a.SessionsOpen, // a level, not a count
		SessionsRefused: a.SessionsRefused - b.SessionsRefused,
		AuthAttempts:    a.AuthAttempts - b.AuthAttempts,
		AuthFailures:    a.AuthFailures - b.AuthFailures,
	}
}

// counters sums the counters of every BMC (GET /v1/bmcs?kind=bmc).
func (s *simProc) counters() (simCounters, error) {
	var c simCounters
	if s.controlURL == "" {
		return c, errors.New("no control API")
	}
	cl := &http.Client{Timeout: 60 * time.Second}
	resp, err := cl.Get(s.controlURL + "/v1/bmcs?kind=bmc")
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("GET /v1/bmcs: %s", resp.Status)
	}
	var body struct {
		BMCs []struct {
			Counters struct {
				PacketsIn       int64 `json:"packets_in"`
				SessionsOpened  int64 `json:"sessions_opened"`
				SessionsOpen    int64 `json:"sessions_open"`
				SessionsRefused int64 `json:"sessions_refused"`
				AuthAttempts    int64 `json:"auth_attempts"`
				AuthFailures    int64 `json:"auth_failures"`
			} `json:"counters"`
		} `json:"bmcs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return c, err
	}
	for _, b := range body.BMCs {
		k := b.Counters
		c.PacketsIn += k.PacketsIn
		c.SessionsOpened += k.SessionsOpened
		c.SessionsOpen += k.SessionsOpen
		c.SessionsRefused += k.SessionsRefused
		c.AuthAttempts += k.AuthAttempts
		c.AuthFailures += k.AuthFailures
	}
	return c, nil
}
