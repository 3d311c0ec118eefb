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
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// simShard is one running `lightsout sim` process: a slice of the fleet
// with its own address range (127.(firstOctet+index).0.1 upwards), seed and control
// API. One process holds one UDP socket per BMC, so a fleet larger than
// RLIMIT_NOFILE runs as several shards.
type simShard struct {
	index      int
	count      int
	offset     int // global index of its first BMC, minus 1
	baseAddr   string
	dir        string
	inventory  string
	cmd        *exec.Cmd
	pid        int
	controlURL string
	readyLine  string
	startup    time.Duration
	exited     chan struct{}
	errPath    string
}

var controlRE = regexp.MustCompile(`control API (http://\S+)`)

// firstOctet is the second octet of the first shard's addresses: away from
// 127.1.x.y, where `lightsout sim`, the demo and tests put their fleets by
// default, so that nothing else on the machine talks to this fleet (the
// simulator counts sessions per client address, and every local process is
// 127.0.0.1).
const firstOctet = 201

// maxShards keeps every shard inside 127.0.0.0/8.
const maxShards = 254 - firstOctet + 1

// startSim starts shard index of count BMCs and waits (at most
// readyTimeout) for its ready line.
func startSim(bin, tmp string, index, count, offset int, pwFile string, readyTimeout time.Duration) (*simShard, error) {
	s := &simShard{
		index: index, count: count, offset: offset,
		baseAddr: fmt.Sprintf("127.%d.0.1", firstOctet+index),
		dir:      filepath.Join(tmp, fmt.Sprintf("sim-%d", index)),
		exited:   make(chan struct{}),
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	s.inventory = filepath.Join(s.dir, "fleet.yaml")
	s.errPath = filepath.Join(s.dir, "sim.stderr")
	argv := []string{bin, "sim", "--count", strconv.Itoa(count), "--seed", strconv.Itoa(index + 1),
		"--base-addr", s.baseAddr, "--export-inventory", s.inventory, "--password-file", pwFile,
		"--control", "127.0.0.1:0"}
	logf("starting simulator shard %d: %s", index, strings.Join(argv[1:], " "))
	argv = pinned(simCPU, argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	fe, err := os.Create(s.errPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = fe
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fe.Close()
		return nil, fmt.Errorf("starting the simulator: %v", err)
	}
	fe.Close()
	s.cmd = cmd
	s.pid = cmd.Process.Pid
	running.add(s.pid, "lightsout sim")
	ready := make(chan string, 1)
	log, _ := os.Create(filepath.Join(s.dir, "sim.stdout"))
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
		s.startup = time.Since(start)
		if m := controlRE.FindStringSubmatch(line); m != nil {
			s.controlURL = strings.TrimRight(m[1], ".;,")
		}
	case <-s.exited:
		return nil, fmt.Errorf("simulator shard %d exited before it was ready (%v): %s", index, cmd.ProcessState, s.stderrTail())
	case <-time.After(readyTimeout):
		s.stop()
		return nil, fmt.Errorf("simulator shard %d was not ready after %v: %s", index, readyTimeout, s.stderrTail())
	}
	if s.controlURL == "" {
		s.stop()
		return nil, fmt.Errorf("simulator shard %d printed no control API address: %q", index, s.readyLine)
	}
	if st, err := os.Stat(s.inventory); err != nil || st.Size() == 0 {
		s.stop()
		return nil, fmt.Errorf("simulator shard %d is ready but wrote no inventory", index)
	}
	logf("simulator shard %d ready in %v (pid %d): %s", index, s.startup.Round(time.Millisecond), s.pid,
		strings.TrimPrefix(s.readyLine, "lightsout sim: "))
	return s, nil
}

func (s *simShard) stderrTail() string {
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

// stop sends SIGTERM to the shard's process group, and SIGKILL if it has
// not exited 15 s later.
func (s *simShard) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	logf("stopping simulator shard %d (pid %d)", s.index, s.pid)
	_ = syscall.Kill(-s.pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		logf("simulator shard %d (pid %d) ignored SIGTERM: killing its process group", s.index, s.pid)
		_ = syscall.Kill(-s.pid, syscall.SIGKILL)
		<-s.exited
	}
}

func (s *simShard) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// bmcCounters are the per-BMC counters of the control API this bench uses.
type bmcCounters struct {
	PacketsIn            int64 `json:"packets_in"`
	SessionsOpened       int64 `json:"sessions_opened"`
	SessionsClosed       int64 `json:"sessions_closed"`
	SessionsOpen         int64 `json:"sessions_open"`
	MaxSessionsOpen      int64 `json:"max_sessions_open"`
	MaxSessionsPerClient int64 `json:"max_sessions_per_client"`
	SessionsRefused      int64 `json:"sessions_refused"`
	AuthAttempts         int64 `json:"auth_attempts"`
	AuthFailures         int64 `json:"auth_failures"`
	MaxInFlight          int64 `json:"max_in_flight"`
}

type bmcStatus struct {
	Name  string `json:"name"`
	Power string `json:"power"`
	GUID  struct {
		Raw string `json:"raw"` // wire order, what Get System GUID returns
	} `json:"guid"`
	Counters bmcCounters `json:"counters"`
}

// bmcs reads every server BMC of the shard (GET /v1/bmcs?kind=bmc: the
// whole list in one answer, about 1.2 KB per BMC; the API has no paging).
func (s *simShard) bmcs() ([]bmcStatus, error) {
	cl := &http.Client{Timeout: 5 * time.Minute}
	resp, err := cl.Get(s.controlURL + "/v1/bmcs?kind=bmc")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/bmcs: %s", resp.Status)
	}
	var body struct {
		Count int         `json:"count"`
		BMCs  []bmcStatus `json:"bmcs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET /v1/bmcs: %v", err)
	}
	if body.Count != len(body.BMCs) || len(body.BMCs) != s.count {
		return nil, fmt.Errorf("GET /v1/bmcs: count %d, %d BMCs listed, %d expected", body.Count, len(body.BMCs), s.count)
	}
	return body.BMCs, nil
}

// simTotals sums counters over a fleet.
type simTotals struct {
	PacketsIn, SessionsOpened, SessionsClosed, SessionsOpen int64
	SessionsRefused, AuthAttempts, AuthFailures             int64
}

func (t *simTotals) add(c bmcCounters) {
	t.PacketsIn += c.PacketsIn
	t.SessionsOpened += c.SessionsOpened
	t.SessionsClosed += c.SessionsClosed
	t.SessionsOpen += c.SessionsOpen
	t.SessionsRefused += c.SessionsRefused
	t.AuthAttempts += c.AuthAttempts
	t.AuthFailures += c.AuthFailures
}

// totals reads and sums the counters of every shard.
func totals(shards []*simShard) (simTotals, error) {
	var t simTotals
	for _, s := range shards {
		bs, err := s.bmcs()
		if err != nil {
			return t, fmt.Errorf("simulator shard %d: %v", s.index, err)
		}
		for _, b := range bs {
			t.add(b.Counters)
		}
	}
	return t, nil
}

// sessionAudit is what the fleet saw of our sessions.
type sessionAudit struct {
	BMCs               int
	Checked            int // sessions_opened ≥ 1
	Totals             simTotals
	MaxPerClient       int64
	MaxOpen            int64
	MaxInFlight        int64
	OverPerClient      []string // max_sessions_per_client > 1
	OverOpen           []string // max_sessions_open > 1
	OverInFlight       []string // max_in_flight > 1
	StillOpen          []string // sessions_open > 0 after the server stopped
	Unchecked          []string // never a session
	WithAuthFailures   []string
	WithRefusedSession []string
}

// audit reads every BMC of every shard and collects the violations, named
// by the global name the server knows them by.
func audit(shards []*simShard, name func(s *simShard, local string) string) (sessionAudit, error) {
	var a sessionAudit
	for _, s := range shards {
		bs, err := s.bmcs()
		if err != nil {
			return a, fmt.Errorf("simulator shard %d: %v", s.index, err)
		}
		for _, b := range bs {
			c := b.Counters
			n := name(s, b.Name)
			a.BMCs++
			a.Totals.add(c)
			a.MaxPerClient = max(a.MaxPerClient, c.MaxSessionsPerClient)
			a.MaxOpen = max(a.MaxOpen, c.MaxSessionsOpen)
			a.MaxInFlight = max(a.MaxInFlight, c.MaxInFlight)
			if c.SessionsOpened > 0 {
				a.Checked++
			} else {
				a.Unchecked = append(a.Unchecked, n)
			}
			if c.MaxSessionsPerClient > 1 {
				a.OverPerClient = append(a.OverPerClient, n)
			}
			if c.MaxSessionsOpen > 1 {
				a.OverOpen = append(a.OverOpen, n)
			}
			if c.MaxInFlight > 1 {
				a.OverInFlight = append(a.OverInFlight, n)
			}
			if c.SessionsOpen > 0 {
				a.StillOpen = append(a.StillOpen, n)
			}
			if c.AuthFailures > 0 {
				a.WithAuthFailures = append(a.WithAuthFailures, n)
			}
			if c.SessionsRefused > 0 {
				a.WithRefusedSession = append(a.WithRefusedSession, n)
			}
		}
	}
	if a.BMCs == 0 {
		return a, errors.New("the simulator lists no BMCs")
	}
	return a, nil
}

// someNames lists at most k names, and how many more.
func someNames(names []string, k int) string {
	if len(names) <= k {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:k], ", ") + fmt.Sprintf(" and %d more", len(names)-k)
}
