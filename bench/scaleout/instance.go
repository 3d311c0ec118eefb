package main

import (
	"bufio"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/bench/internal/fleet"
	"github.com/lightsout/lightsout/bench/internal/proc"
	"github.com/lightsout/lightsout/bench/internal/progress"
)

// instance is one running `lightsout server` of a leg.
type instance struct {
	*proc.Child
	name   string
	source string // its --source-address
	base   string // http://127.0.0.1:PORT
	ready  time.Time
	// CPU seconds and checks at the window's start and end.
	cpu0, cpu1, checks0, checks1 float64
}

var metricsRE = regexp.MustCompile(`metrics on (http://\S+)/metrics`)

// startInstance starts instance i of a leg of k: its own data directory,
// name s<k>-<i> and source address 127.0.0.<10k+i>, the shared database
// and key.
func startInstance(b *bench, k, i int) (*instance, error) {
	c := b.cfg
	in := &instance{name: fmt.Sprintf("s%d-%d", k, i), source: fmt.Sprintf("127.0.0.%d", 10*k+i)}
	dir := filepath.Join(b.tmp, in.name)
	argv := []string{b.bin, "server", "--data", dir, "--db", b.dsn, "--key-file", b.keyFile, "--name", in.name,
		"--listen", "127.0.0.1:0", "--interval", c.interval.String(), "--timeout", c.timeout.String(),
		"--lease", c.lease.String(), "--source-address", in.source}
	progress.Logf("starting %s: --source-address %s", in.name, in.source)
	var env []string
	if c.profile != "" {
		p, err := filepath.Abs(c.profile)
		if err != nil {
			return nil, err
		}
		ext := filepath.Ext(p)
		env = append(env, "LIGHTSOUT_CPUPROFILE="+strings.TrimSuffix(p, ext)+"-"+in.name+ext)
	}
	ch, err := running.Start(proc.Spec{Argv: proc.Pinned(pin.CPU("1"), argv), Env: proc.Env([]string{"LIGHTSOUT_PASSWORD", "LIGHTSOUT_CPUPROFILE"}, env...),
		Name: "lightsout server " + in.name, Desc: "instance " + in.name,
		Stdout: dir + ".stdout", Stderr: dir + ".stderr", Ready: "metrics on http://"})
	if err != nil {
		return nil, err
	}
	in.Child = ch
	line, err := ch.WaitReady(c.readyTimeout, "instance "+in.name, func() { in.stop(15 * time.Second) })
	if err != nil {
		return nil, err
	}
	in.ready = time.Now()
	m := metricsRE.FindStringSubmatch(line)
	if m == nil {
		in.stop(15 * time.Second)
		return nil, fmt.Errorf("instance %s's ready line names no metrics address: %q", in.name, line)
	}
	in.base = m[1]
	return in, nil
}

func (in *instance) stop(grace time.Duration) {
	if in.Child == nil || !in.Alive() {
		return
	}
	progress.Logf("stopping %s (pid %d)", in.name, in.PID)
	in.Stop(grace, func() { progress.Logf("%s still running %v after SIGTERM: killing it", in.name, grace) })
}

// scrape reads /metrics: samples by their full series name.
func (in *instance) scrape() (map[string]float64, error) {
	cl := &http.Client{Timeout: 30 * time.Second}
	resp, err := cl.Get(in.base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// shard is one simulator process of the fleet.
type shard struct {
	*fleet.Sim
	index, offset, width int
}

// global is the fleet-wide name of the shard's BMC local (each shard
// names its BMCs from bmc-00001).
func (s *shard) global(local string) string {
	i, err := strconv.Atoi(strings.TrimPrefix(local, "bmc-"))
	if err != nil || !strings.HasPrefix(local, "bmc-") {
		return fmt.Sprintf("shard%d/%s", s.index, local)
	}
	return fmt.Sprintf("bmc-%0*d", s.width, s.offset+i)
}

// snapshot is what the fleet's counters say at one moment.
type snapshot struct {
	sessions map[string]map[string]uint64 // BMC → source address → sessions opened
	maxOpen  int64                        // most sessions open at once on one BMC
	overOpen []string                     // BMCs that had more than one open at once
	open     int64                        // sessions open now
}

// bySource reads every BMC of every shard.
func (b *bench) bySource() (*snapshot, error) {
	s := &snapshot{sessions: make(map[string]map[string]uint64, b.cfg.count)}
	for _, sh := range b.shards {
		l, err := sh.List(5 * time.Minute)
		if err != nil {
			return nil, fmt.Errorf("simulator shard %d: %v", sh.index, err)
		}
		if len(l.BMCs) != sh.Count {
			return nil, fmt.Errorf("simulator shard %d lists %d BMCs, %d expected", sh.index, len(l.BMCs), sh.Count)
		}
		for _, bm := range l.BMCs {
			name := sh.global(bm.Name)
			s.sessions[name] = bm.SessionsBySource
			s.maxOpen = max(s.maxOpen, bm.Counters.MaxSessionsOpen)
			s.open += bm.Counters.SessionsOpen
			if bm.Counters.MaxSessionsOpen > 1 {
				s.overOpen = append(s.overOpen, name)
			}
		}
	}
	return s, nil
}
